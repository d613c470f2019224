// Executes the router's StepRequests on one rank: keeps every sequence's
// state between steps (block table, sampling parameters, token history),
// turns a request into one ForwardBatch, runs the model shard, and on rank 0
// samples the next tokens. The gRPC layer (worker_service.h) is a thin
// translation around it.
#ifndef DUET_WORKER_STEP_EXECUTOR_H_
#define DUET_WORKER_STEP_EXECUTOR_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "duet/worker/v1/worker.pb.h"
#include "kernels/ops.h"
#include "worker/comm/communicator.h"
#include "worker/kv_cache.h"
#include "worker/models/decoder_model.h"
#include "worker/sampler.h"

namespace duet::worker {

// Converts and validates the wire sampling parameters.
absl::StatusOr<SequenceSampling> SamplingFromProto(const v1::SamplingParams& params,
                                                   int64_t vocab_size);

// Not thread-safe. Borrows everything it is given; all must outlive it.
class StepExecutor {
 public:
  // max_model_len: the longest sequence a request may build.
  StepExecutor(const DecoderModel& model, kernels::Backend& backend, Communicator& comm,
               KvCache& cache, int64_t max_model_len);

  // Runs one step. A request that is invalid as a whole (unknown or
  // duplicate sequence, token id outside the vocabulary, block id outside
  // the pool, positions past the block table or max_model_len) yields a
  // StepResult whose `error` says why; nothing ran and no state changed.
  // Every rank validates identically, so all of them reject it together.
  // A returned error status comes from a collective, or from a request's
  // LateMasks (the stream ended before them, or they are malformed, found
  // only after the forward pass changed the state): the group is broken.
  //
  // When some scheduled sequence has mask_follows, `read_late_masks` reads
  // the message that carries their masks (false: the stream ended). It is
  // called once, after the forward pass (so the router computes the masks
  // while the model runs), and also when the request is rejected, so the
  // stream stays in step.
  using ReadLateMasks = std::function<bool(v1::StepRequest*)>;
  absl::StatusOr<v1::StepResult> Execute(const v1::StepRequest& request,
                                         const ReadLateMasks& read_late_masks = nullptr);

  int64_t num_sequences() const { return static_cast<int64_t>(sequences_.size()); }

 private:
  struct Sequence {
    SequenceSampling sampling;
    int64_t prompt_len = 0;
    TokenHistory history{std::span<const int32_t>()};
    std::vector<int32_t> block_table;
    // Outputs recorded in `history` are the tokens at positions
    // [prompt_len, next_output_position).
    int64_t next_output_position = 0;
  };

  // Checks the whole request against the current state; no side effects.
  absl::Status Validate(const v1::StepRequest& request) const;
  // Checks `late` against the mask_follows sequences of `request`.
  absl::Status ValidateLateMasks(const v1::StepRequest& request, const v1::StepRequest& late) const;
  v1::StepResult Rejected(const v1::StepRequest& request, const absl::Status& why) const;

  const DecoderModel& model_;
  kernels::Backend& backend_;
  Communicator& comm_;
  KvCache& cache_;
  int64_t max_model_len_;
  absl::flat_hash_map<uint64_t, Sequence> sequences_;
};

}  // namespace duet::worker

#endif  // DUET_WORKER_STEP_EXECUTOR_H_
