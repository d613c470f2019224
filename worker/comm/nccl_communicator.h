// Communicator over NCCL, for CUDA workers (built only when DUET_WITH_CUDA).
//
// Forming a group: rank 0 calls CreateNcclBootstrap and hands the bytes to
// every rank; every rank, rank 0 included, calls ConnectNccl with them.
// Buffers are device memory on `device`. Each collective runs on a stream the
// communicator owns and the call returns once it has completed on the GPU, so
// callers need no stream synchronisation of their own (work they queued on
// other streams must be complete before the call).
//
// NCCL finishes each element's sum on one rank and forwards it (ring and tree
// alike), so AllReduceSum gives every rank the same bits.
//
// Failure: past op_timeout, or when NCCL reports an asynchronous error, the
// communicator is aborted (ncclCommAbort) and every later call fails with
// FailedPrecondition.
#ifndef DUET_WORKER_COMM_NCCL_COMMUNICATOR_H_
#define DUET_WORKER_COMM_NCCL_COMMUNICATOR_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "worker/comm/communicator.h"

namespace duet::worker {

// Rank 0: a fresh ncclUniqueId, as its raw bytes (NCCL_UNIQUE_ID_BYTES).
absl::StatusOr<std::string> CreateNcclBootstrap();

// Every rank: joins the group with ncclCommInitRankConfig in non-blocking
// mode. DeadlineExceeded (after aborting) when the group has not formed
// within options.connect_timeout; InvalidArgument for a bootstrap of the
// wrong size or rank outside [0, world_size).
absl::StatusOr<std::unique_ptr<Communicator>> ConnectNccl(std::string_view bootstrap, int rank,
                                                          int world_size, int device,
                                                          const CollectiveOptions& options);

}  // namespace duet::worker

#endif  // DUET_WORKER_COMM_NCCL_COMMUNICATOR_H_
