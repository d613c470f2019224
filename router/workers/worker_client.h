// The seam between the router's engine and the workers that run its steps:
// WorkerGroup drives real worker processes over gRPC; tests and benchmarks
// put a fake behind the same interface.
//
// Thread-compatible: the engine's step thread is the only caller.
#ifndef DUET_ROUTER_WORKERS_WORKER_CLIENT_H_
#define DUET_ROUTER_WORKERS_WORKER_CLIENT_H_

#include <functional>

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

  // Computes the masks of a request's mask_follows sequences, in request
  // order (LateMasks in worker.proto).
  using LateMaskFn = std::function<worker::v1::LateMasks()>;

  // Step for a request with mask_follows sequences: `late_masks` is called
  // once. WorkerGroup calls it after sending the request, so the masks are
  // computed while the workers run the forward pass, and sends them after.
  // This default, for fakes, computes them first and sends them inside the
  // request: the same step, without the overlap.
  virtual absl::StatusOr<worker::v1::StepResult> StepWithLateMasks(const worker::v1::StepRequest& request,
                                                                  const LateMaskFn& late_masks) {
    worker::v1::StepRequest merged = request;
    const worker::v1::LateMasks masks = late_masks();
    int next = 0;
    for (worker::v1::ScheduledSequence& step : *merged.mutable_scheduled()) {
      if (!step.mask_follows()) continue;
      step.set_mask_follows(false);
      if (next < masks.allowed_token_masks_size()) step.set_allowed_token_mask(masks.allowed_token_masks(next++));
    }
    return Step(merged);
  }

  // Forms the group again after a failure; workers start with no sequences.
  virtual absl::Status Reinitialize() = 0;
};

}  // namespace duet::router

#endif  // DUET_ROUTER_WORKERS_WORKER_CLIENT_H_
