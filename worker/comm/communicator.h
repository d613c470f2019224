// Collectives between the ranks of one model group. Model code calls them at
// the tensor-parallel seams (after o_proj and down, to gather logits); two real
// implementations sit behind this interface: Gloo over TCP for CPU workers
// (gloo_communicator.h) and NCCL for CUDA workers (nccl_communicator.h).
//
// Every rank must call the same collectives in the same order with the same
// sizes. Buffers are memory the implementation can address (host memory for
// Gloo, device memory for NCCL).
//
// Failure model: a collective that cannot complete returns an error and the
// communicator is then broken (every later call fails at once):
//   - Unavailable: a peer went away (connection closed or reset);
//   - DeadlineExceeded: the operation did not finish within the timeout the
//     communicator was created with (a peer that stopped answering).
// Thread-compatible: one thread at a time.
#ifndef DUET_WORKER_COMM_COMMUNICATOR_H_
#define DUET_WORKER_COMM_COMMUNICATOR_H_

#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace duet::worker {

struct CollectiveOptions {
  // How long joining the group may take (every rank must call Connect).
  absl::Duration connect_timeout = absl::Seconds(120);
  // How long one collective may take before it fails with DeadlineExceeded.
  absl::Duration op_timeout = absl::Seconds(60);
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // "gloo", "nccl" or "local".
  virtual std::string_view name() const = 0;

  // data[i] = Σ over ranks of data[i], on every rank. data: [count].
  // Bitwise identical on every rank.
  virtual absl::Status AllReduceSum(float* data, int64_t count) = 0;

  // output[r * count + i] = input of rank r [i], on every rank.
  // input: [count]; output: [world_size, count]; they must not overlap.
  virtual absl::Status AllGather(const float* input, int64_t count, float* output) = 0;

  // Copies `bytes` bytes at `data` on rank `root` into `data` on every rank.
  virtual absl::Status Broadcast(void* data, int64_t bytes, int root) = 0;

  // Returns once every rank has called it.
  virtual absl::Status Barrier() = 0;
};

// World size 1: every collective is the identity (no copies, no threads).
std::unique_ptr<Communicator> MakeLocalCommunicator();

}  // namespace duet::worker

#endif  // DUET_WORKER_COMM_COMMUNICATOR_H_
