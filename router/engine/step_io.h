// What the engine sends the workers for a step and what it makes of their
// answer: the translation between the scheduler's plan and the worker
// contract (proto/duet/worker/v1), and the token-level stop rules.
#ifndef DUET_ROUTER_ENGINE_STEP_IO_H_
#define DUET_ROUTER_ENGINE_STEP_IO_H_

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/types/span.h"
#include "duet/worker/v1/worker.pb.h"
#include "router/engine/engine_event.h"
#include "router/engine/request.h"
#include "router/engine/scheduler.h"
#include "router/engine/sequence.h"

namespace duet::engine {

// The worker's sampling parameters for `request`, seed left at 0. EOS ids
// (unless ignore_eos) and stop ids are banned while min_tokens is not met.
worker::v1::SamplingParams ToSamplingParams(const GenerateRequest& request,
                                            absl::Span<const int32_t> eos_token_ids);

// Appends `chunk` to `step`: its NewSequence (with `sampling`) when the
// workers do not hold the sequence yet, and its ScheduledSequence.
void AddChunk(const ScheduledChunk& chunk, const worker::v1::SamplingParams& sampling,
              worker::v1::StepRequest* step);

// One sampled token and what it means for its sequence.
struct SampledOutput {
  int32_t token_id = 0;
  std::optional<TokenLogprob> logprob;  // when the request asked for logprobs
  // kStop (EOS / stop id) or kLength (max_tokens / context length) when this
  // token ends the sequence; stop strings are found later, in the text.
  FinishReason finish_reason = FinishReason::kNone;
  std::optional<int32_t> stop_token_id;
  int32_t num_prompt_tokens = 0;
  int32_t num_cached_prompt_tokens = 0;
  int32_t num_output_tokens = 0;  // including this one
};

// `seq` already holds the sampled token as its last.
SampledOutput ToSampledOutput(const worker::v1::SampledToken& sampled, const Sequence& seq,
                              const ValidatedRequest& request, absl::Span<const int32_t> eos_token_ids,
                              int32_t max_model_len);

}  // namespace duet::engine

#endif  // DUET_ROUTER_ENGINE_STEP_IO_H_
