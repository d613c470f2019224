#include "router/engine/step_io.h"

#include <algorithm>

namespace duet::engine {
namespace {

bool Contains(absl::Span<const int32_t> ids, int32_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

worker::v1::SamplingParams ToSamplingParams(const GenerateRequest& request,
                                            absl::Span<const int32_t> eos_token_ids) {
  const SamplingOptions& options = request.sampling;
  worker::v1::SamplingParams params;
  params.set_temperature(options.temperature);
  if (options.top_p) params.set_top_p(*options.top_p);
  if (options.top_k && *options.top_k > 0) params.set_top_k(*options.top_k);
  if (options.min_p) params.set_min_p(*options.min_p);
  params.set_presence_penalty(options.presence_penalty);
  params.set_frequency_penalty(options.frequency_penalty);
  if (options.repetition_penalty) params.set_repetition_penalty(*options.repetition_penalty);
  for (const auto& [id, bias] : options.logit_bias) (*params.mutable_logit_bias())[id] = bias;
  if (options.top_logprobs) params.set_top_logprobs(static_cast<uint32_t>(*options.top_logprobs));
  if (request.min_tokens > 0) {
    params.set_min_tokens(static_cast<uint32_t>(request.min_tokens));
    if (!request.ignore_eos) {
      for (int32_t id : eos_token_ids) params.add_min_tokens_banned_ids(id);
    }
    for (int32_t id : request.stop_token_ids) params.add_min_tokens_banned_ids(id);
  }
  return params;
}

void AddChunk(const ScheduledChunk& chunk, const worker::v1::SamplingParams& sampling,
              worker::v1::StepRequest* step) {
  const Sequence& seq = *chunk.seq;
  if (chunk.new_to_workers) {
    worker::v1::NewSequence* added = step->add_new_sequences();
    added->set_seq_id(seq.seq_id);
    *added->mutable_sampling() = sampling;
    added->mutable_prompt_token_ids()->Add(seq.token_ids.begin(),
                                           seq.token_ids.begin() + seq.num_prompt_tokens);
    // A recomputed sequence's outputs: the last one is run again (it is the
    // input of the next step), the rest may come from the prefix cache.
    added->mutable_output_token_ids()->Add(seq.token_ids.begin() + seq.num_prompt_tokens,
                                           seq.token_ids.end());
  }
  worker::v1::ScheduledSequence* scheduled = step->add_scheduled();
  scheduled->set_seq_id(seq.seq_id);
  const auto first = seq.token_ids.begin() + chunk.start_position;
  scheduled->mutable_token_ids()->Add(first, first + chunk.num_tokens);
  scheduled->set_start_position(static_cast<uint32_t>(chunk.start_position));
  for (int32_t id : chunk.new_block_ids) scheduled->add_new_block_ids(static_cast<uint32_t>(id));
  scheduled->set_sample(chunk.sample);
}

SampledOutput ToSampledOutput(const worker::v1::SampledToken& sampled, const Sequence& seq,
                              const ValidatedRequest& request, absl::Span<const int32_t> eos_token_ids,
                              int32_t max_model_len) {
  const GenerateRequest& raw = request.request();
  SampledOutput out;
  out.token_id = sampled.token_id();
  out.num_prompt_tokens = seq.num_prompt_tokens;
  out.num_cached_prompt_tokens = seq.num_cached_prompt_tokens;
  out.num_output_tokens = seq.num_output_tokens();
  if (raw.sampling.top_logprobs) {
    TokenLogprob logprob;
    logprob.token_id = sampled.token_id();
    logprob.logprob = sampled.logprob();
    for (const worker::v1::TopLogprob& top : sampled.top_logprobs()) {
      logprob.top_logprobs.emplace_back(top.token_id(), top.logprob());
    }
    out.logprob = std::move(logprob);
  }
  const bool may_stop = out.num_output_tokens >= raw.min_tokens;
  if (may_stop && !raw.ignore_eos && Contains(eos_token_ids, out.token_id)) {
    out.finish_reason = FinishReason::kStop;
    out.stop_token_id = out.token_id;
  } else if (may_stop && Contains(raw.stop_token_ids, out.token_id)) {
    out.finish_reason = FinishReason::kStop;
    out.stop_token_id = out.token_id;
  } else if (out.num_output_tokens >= request.max_tokens() || seq.num_tokens() >= max_model_len) {
    out.finish_reason = FinishReason::kLength;
  }
  return out;
}

}  // namespace duet::engine
