// The router's side of the worker contract (proto/duet/worker/v1): one
// WorkerGroup drives every rank of a model group. It forms the group
// (CreateBootstrap on rank 0, Init on every rank at once), keeps one Step
// stream per rank, sends each StepRequest to every rank and waits for every
// rank's StepResult.
//
// Failure detection: a rank whose stream ends (process killed, connection
// lost) is noticed as soon as gRPC sees it; a rank that stops answering is
// noticed when step_timeout passes. Either way Step returns Unavailable
// naming the rank, the group is broken (every later Step fails at once with
// Unavailable), and every sequence of the failed step — and every sequence
// the workers held — is gone: the caller fails them explicitly, then calls
// Reinitialize once the workers are back.
//
// Thread-compatible: one thread drives Step / Reinitialize / Shutdown.
#ifndef DUET_ROUTER_WORKERS_WORKER_GROUP_H_
#define DUET_ROUTER_WORKERS_WORKER_GROUP_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "duet/worker/v1/worker.grpc.pb.h"
#include "router/workers/worker_client.h"

namespace duet::router {

struct WorkerGroupOptions {
  // host:port of every rank, in rank order; the world size is its length.
  std::vector<std::string> addresses;
  // What every rank loads; rank, world_size and collective_bootstrap are
  // filled in per rank.
  worker::v1::InitRequest init;
  // Init loads weights: allow for a large model read from disk.
  absl::Duration init_timeout = absl::Minutes(30);
  // How long a rank may take to answer one step before it is declared dead.
  absl::Duration step_timeout = absl::Seconds(60);
  // Bootstrap, Health and Shutdown calls; also how long to wait for a worker
  // that is still starting up.
  absl::Duration rpc_timeout = absl::Seconds(30);
};

class WorkerGroup : public WorkerClient {
 public:
  // Connects to every rank, forms the group and opens the Step streams.
  // Errors name the rank and its address; when one rank fails Init, its own
  // error is returned rather than the others' "another rank failed".
  static absl::StatusOr<std::unique_ptr<WorkerGroup>> Start(const WorkerGroupOptions& options);

  ~WorkerGroup() override;
  WorkerGroup(const WorkerGroup&) = delete;
  WorkerGroup& operator=(const WorkerGroup&) = delete;

  // Rank 0's InitResponse with num_kv_blocks the minimum over ranks.
  const worker::v1::InitResponse& info() const { return info_; }
  int world_size() const { return static_cast<int>(options_.addresses.size()); }

  // Sends `request` to every rank; returns rank 0's result. InvalidArgument
  // when the workers rejected the request as a whole (StepResult.error;
  // nothing ran, the group stays usable); Unavailable when a rank failed or
  // timed out (the group is then broken).
  absl::StatusOr<worker::v1::StepResult> Step(const worker::v1::StepRequest& request) override;
  absl::StatusOr<worker::v1::StepResult> StepWithLateMasks(const worker::v1::StepRequest& request,
                                                          const LateMaskFn& late_masks) override;

  bool broken() const { return broken_; }

  // Forms the group again (after a rank failed and came back, or to start
  // over): closes the streams, CreateBootstrap + Init on every rank, new
  // streams. Workers start with no sequences.
  absl::Status Reinitialize() override;

  // Asks every rank to exit; best effort, returns the first error.
  absl::Status Shutdown();

 private:
  class RankStream;  // one rank's Step stream and its reader thread
  struct Mailbox;    // where the reader threads leave results

  explicit WorkerGroup(const WorkerGroupOptions& options);
  absl::Status Form();
  void CloseStreams();
  absl::Status Broken(const absl::Status& why);
  // Sends `request` to every rank (then `late`, when given) and collects
  // the results.
  absl::StatusOr<worker::v1::StepResult> RunStep(const worker::v1::StepRequest& request,
                                                 const LateMaskFn* late_masks);

  WorkerGroupOptions options_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<worker::v1::Worker::Stub>> stubs_;
  std::shared_ptr<Mailbox> mailbox_;
  std::vector<std::unique_ptr<RankStream>> streams_;
  worker::v1::InitResponse info_;
  bool broken_ = true;
  std::string broken_reason_;
};

}  // namespace duet::router

#endif  // DUET_ROUTER_WORKERS_WORKER_GROUP_H_
