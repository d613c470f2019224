// Turns a row of logits into the next token of one sequence: logit bias, the
// min_tokens ban, repetition / presence / frequency penalties, then the
// backend's seeded sampling (kernels/sampling.h), plus logprobs on request.
// Runs on rank 0 over the full-vocabulary logits.
//
// Order, per row (as vLLM applies them):
//   1. logprobs, when asked: log-softmax of the raw logits (before any of the
//      steps below), for the sampled token and the top_logprobs best;
//   1b. ids outside the row's allowed-token mask (structured output) get -inf;
//   2. logit_bias[id] is added;
//   3. while num_output_tokens < min_tokens, banned ids get -inf;
//   4. repetition_penalty (≠ 1) on every id in the prompt or the output:
//      logit > 0 ? logit / penalty : logit * penalty;
//   5. presence / frequency on output ids: logit -= presence + frequency·count;
//   6. kernels::Backend::Sample with (seed, offset = num_output_tokens).
// A row left with every logit -inf (all banned) takes the argmax of its raw
// logits among the ids its mask allows, with a warning. Logits are host memory (a CUDA worker copies the
// gathered logits to the host first); history ids must be < vocab.
#ifndef DUET_WORKER_SAMPLER_H_
#define DUET_WORKER_SAMPLER_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "kernels/ops.h"

namespace duet::worker {

// Validated sampling parameters of one sequence.
struct SequenceSampling {
  float temperature = 1.0f;
  int32_t top_k = 0;   // 0: off
  float top_p = 1.0f;
  float min_p = 0.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  float repetition_penalty = 1.0f;
  std::vector<std::pair<int32_t, float>> logit_bias;  // (token id, bias), ids < vocab
  uint64_t seed = 0;
  uint32_t min_tokens = 0;
  std::vector<int32_t> min_tokens_banned_ids;
  std::optional<uint32_t> top_logprobs;  // absent: no logprobs

  // Which of steps 2-5 change anything (so plain requests skip them).
  bool HasLogitProcessing() const;
};

// Checks ranges (temperature >= 0, top_p in (0, 1], top_k >= 0,
// min_p in [0, 1], repetition_penalty > 0, penalties in [-2, 2], ids in
// [0, vocab), top_logprobs <= kMaxTopLogprobs); InvalidArgument naming the
// field otherwise.
inline constexpr uint32_t kMaxTopLogprobs = 20;
absl::Status ValidateSampling(const SequenceSampling& sampling, int64_t vocab_size);

// The tokens of one sequence that penalties look at. Thread-compatible.
class TokenHistory {
 public:
  explicit TokenHistory(std::span<const int32_t> prompt_token_ids);

  void AddOutputToken(int32_t token_id);

  int64_t num_output_tokens() const { return num_output_tokens_; }
  bool InPrompt(int32_t token_id) const { return prompt_ids_.contains(token_id); }
  // How often token_id occurs in the output so far.
  int32_t OutputCount(int32_t token_id) const;
  const absl::flat_hash_map<int32_t, int32_t>& output_counts() const { return output_counts_; }
  const absl::flat_hash_set<int32_t>& prompt_ids() const { return prompt_ids_; }

 private:
  absl::flat_hash_set<int32_t> prompt_ids_;
  absl::flat_hash_map<int32_t, int32_t> output_counts_;
  int64_t num_output_tokens_ = 0;
};

struct SampledToken {
  int32_t token_id = 0;
  std::optional<float> logprob;                        // when top_logprobs was asked
  std::vector<std::pair<int32_t, float>> top_logprobs;  // best first, ties by lower id
};

// One row to sample: its sampling parameters and history (borrowed).
struct SampleRow {
  const SequenceSampling* sampling;
  const TokenHistory* history;
  // Bitmask of the ids the row may take (bit i % 8 of byte i / 8; ids past
  // its end excluded), or empty for any id. Borrowed.
  std::string_view allowed_token_mask = {};
};

// Samples every row. logits: [rows.size(), vocab], modified in place (steps
// 2-5). Returns one SampledToken per row. The result of a row depends only on
// its logits, its SampleRow and the backend, never on the other rows.
std::vector<SampledToken> SampleTokens(kernels::Backend& backend, float* logits, int64_t vocab,
                                       std::span<const SampleRow> rows);

}  // namespace duet::worker

#endif  // DUET_WORKER_SAMPLER_H_
