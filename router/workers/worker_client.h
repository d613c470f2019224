// The seam between the router's engine and the workers that run its steps:
// WorkerGroup drives real worker processes over gRPC; tests and benchmarks
// put a fake behind the same interface.
//
// Thread-compatible: the engine's step thread is the only caller.
#ifndef DUET_ROUTER_WORKERS_WORKER_CLIENT_H_
#define DUET_ROUTER_WORKERS_WORKER_CLIENT_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "duet/worker/v1/worker.pb.h"

namespace duet::router {

class WorkerClient {
 public:
  virtual ~WorkerClient() = default;

  // Runs one step on every rank and returns rank 0's result.
  // InvalidArgument: the request was rejected as a whole and nothing ran.
  // Unavailable: a rank failed; every sequence the workers held is gone
  // until Reinitialize succeeds.
  virtual absl::StatusOr<worker::v1::StepResult> Step(const worker::v1::StepRequest& request) = 0;

  // Forms the group again after a failure; workers start with no sequences.
  virtual absl::Status Reinitialize() = 0;
};

}  // namespace duet::router

#endif  // DUET_ROUTER_WORKERS_WORKER_CLIENT_H_
