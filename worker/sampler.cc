#include "worker/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string_view>

#include "common/str_cat.h"
#include "glog/logging.h"

namespace duet::worker {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

absl::Status OutOfRange(std::string_view field, std::string_view range, double value) {
  return absl::InvalidArgumentError(StrCat(field, " must be ", range, ", got ", value));
}

// A logit as it was before steps 2-5, for the ids those steps touch.
struct RawLogit {
  int32_t id;
  float value;
};

// Records the raw value of every id steps 2-5 will touch (an id recorded
// twice has the same value both times), so logprobs and the all -inf fallback
// still see the raw logits without a copy of the whole row.
void SaveTouched(const float* row, const SequenceSampling& sampling, const TokenHistory& history,
                 bool ban_active, std::vector<RawLogit>* saved) {
  for (const auto& [id, bias] : sampling.logit_bias) saved->push_back({id, row[id]});
  if (ban_active) {
    for (int32_t id : sampling.min_tokens_banned_ids) saved->push_back({id, row[id]});
  }
  if (sampling.repetition_penalty != 1.0f) {
    for (int32_t id : history.prompt_ids()) saved->push_back({id, row[id]});
  }
  for (const auto& [id, count] : history.output_counts()) saved->push_back({id, row[id]});
}

// Steps 2-5 of sampler.h on one row; touches only the ids they concern.
void ProcessLogits(float* row, const SequenceSampling& sampling, const TokenHistory& history,
                   bool ban_active) {
  for (const auto& [id, bias] : sampling.logit_bias) row[id] += bias;
  if (ban_active) {
    for (int32_t id : sampling.min_tokens_banned_ids) row[id] = kNegInf;
  }
  const float penalty = sampling.repetition_penalty;
  if (penalty != 1.0f) {
    const auto apply = [row, penalty](int32_t id) {
      row[id] = row[id] > 0 ? row[id] / penalty : row[id] * penalty;
    };
    for (int32_t id : history.prompt_ids()) apply(id);
    // An id in both the prompt and the output is penalised once.
    for (const auto& [id, count] : history.output_counts()) {
      if (!history.InPrompt(id)) apply(id);
    }
  }
  if (sampling.presence_penalty != 0.0f || sampling.frequency_penalty != 0.0f) {
    for (const auto& [id, count] : history.output_counts()) {
      row[id] -= sampling.presence_penalty + sampling.frequency_penalty * count;
    }
  }
}

// The raw logit of `id`: saved if steps 2-5 touched it, else still in `row`.
float RawValue(const float* row, const std::vector<RawLogit>& saved, int32_t id) {
  for (const RawLogit& raw : saved) {
    if (raw.id == id) return raw.value;
  }
  return row[id];
}

bool MaskAllows(std::string_view mask, int64_t id) {
  return mask.empty() ||
         (id / 8 < static_cast<int64_t>(mask.size()) && ((static_cast<uint8_t>(mask[id / 8]) >> (id % 8)) & 1));
}

// Step 1b: -inf for every id the mask leaves out.
void ApplyMask(float* row, int64_t vocab, std::string_view mask) {
  const int64_t covered = std::min<int64_t>(vocab, static_cast<int64_t>(mask.size()) * 8);
  for (int64_t byte = 0; byte * 8 < covered; ++byte) {
    const uint8_t bits = static_cast<uint8_t>(mask[byte]);
    if (bits == 0xFF) continue;
    const int64_t last = std::min<int64_t>(covered, byte * 8 + 8);
    for (int64_t id = byte * 8; id < last; ++id) {
      if (!((bits >> (id - byte * 8)) & 1)) row[id] = kNegInf;
    }
  }
  std::fill(row + covered, row + vocab, kNegInf);
}

// The argmax of the raw logits (lowest id on ties) among the ids the mask
// allows, of a row that steps 2-5 left all -inf: every allowed id they did
// not touch is still raw, hence -inf, so only a saved id can beat the first
// allowed one.
int32_t RawArgmaxOfDeadRow(const std::vector<RawLogit>& saved, std::string_view mask, int64_t vocab) {
  int32_t best_id = 0;
  while (best_id + 1 < vocab && !MaskAllows(mask, best_id)) ++best_id;
  float best = kNegInf;
  for (const RawLogit& raw : saved) {
    if (!MaskAllows(mask, raw.id)) continue;
    if (raw.value > best || (raw.value == best && raw.id < best_id)) {
      best = raw.value;
      best_id = raw.id;
    }
  }
  return best_id;
}

// Log-softmax of a row of raw logits, evaluated per token.
struct LogSoftmax {
  double log_normaliser;  // max + log Σ exp(x - max)

  float Of(float raw_logit) const { return static_cast<float>(raw_logit - log_normaliser); }
};

LogSoftmax ComputeLogSoftmax(const float* row, int64_t vocab) {
  const double max = *std::max_element(row, row + vocab);
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(row[i] - max);
  return {max + std::log(sum)};
}

// The `count` largest raw logits, best first, ties by lower id: only a
// strictly greater value displaces an entry, so the earlier (lower) id wins.
std::vector<RawLogit> TopRaw(const float* row, int64_t vocab, int64_t count) {
  std::vector<RawLogit> best;
  if (count == 0) return best;
  best.reserve(count + 1);
  for (int64_t i = 0; i < vocab; ++i) {
    if (static_cast<int64_t>(best.size()) == count && !(row[i] > best.back().value)) continue;
    const auto at = std::upper_bound(best.begin(), best.end(), row[i],
                                     [](float v, const RawLogit& e) { return v > e.value; });
    best.insert(at, {static_cast<int32_t>(i), row[i]});
    if (static_cast<int64_t>(best.size()) > count) best.pop_back();
  }
  return best;
}

}  // namespace

bool SequenceSampling::HasLogitProcessing() const {
  return !logit_bias.empty() || (min_tokens > 0 && !min_tokens_banned_ids.empty()) ||
         repetition_penalty != 1.0f || presence_penalty != 0.0f || frequency_penalty != 0.0f;
}

absl::Status ValidateSampling(const SequenceSampling& sampling, int64_t vocab_size) {
  if (vocab_size <= 0) return OutOfRange("vocab_size", "positive", vocab_size);
  // Every comparison is written so that NaN fails it.
  if (!(sampling.temperature >= 0) || !std::isfinite(sampling.temperature)) {
    return OutOfRange("temperature", "finite and >= 0", sampling.temperature);
  }
  if (sampling.top_k < 0) return OutOfRange("top_k", ">= 0", sampling.top_k);
  if (!(sampling.top_p > 0 && sampling.top_p <= 1)) {
    return OutOfRange("top_p", "in (0, 1]", sampling.top_p);
  }
  if (!(sampling.min_p >= 0 && sampling.min_p <= 1)) {
    return OutOfRange("min_p", "in [0, 1]", sampling.min_p);
  }
  if (!(sampling.presence_penalty >= -2 && sampling.presence_penalty <= 2)) {
    return OutOfRange("presence_penalty", "in [-2, 2]", sampling.presence_penalty);
  }
  if (!(sampling.frequency_penalty >= -2 && sampling.frequency_penalty <= 2)) {
    return OutOfRange("frequency_penalty", "in [-2, 2]", sampling.frequency_penalty);
  }
  if (!(sampling.repetition_penalty > 0) || !std::isfinite(sampling.repetition_penalty)) {
    return OutOfRange("repetition_penalty", "finite and > 0", sampling.repetition_penalty);
  }
  for (const auto& [id, bias] : sampling.logit_bias) {
    if (id < 0 || id >= vocab_size) {
      return absl::InvalidArgumentError(
          StrCat("logit_bias token id must be in [0, ", vocab_size, "), got ", id));
    }
    if (!(bias >= -100 && bias <= 100)) {
      return absl::InvalidArgumentError(
          StrCat("logit_bias value for token ", id, " must be in [-100, 100], got ", bias));
    }
  }
  for (int32_t id : sampling.min_tokens_banned_ids) {
    if (id < 0 || id >= vocab_size) {
      return absl::InvalidArgumentError(
          StrCat("min_tokens_banned_ids must be in [0, ", vocab_size, "), got ", id));
    }
  }
  if (sampling.top_logprobs.has_value() && *sampling.top_logprobs > kMaxTopLogprobs) {
    return absl::InvalidArgumentError(
        StrCat("top_logprobs must be <= ", kMaxTopLogprobs, ", got ", *sampling.top_logprobs));
  }
  return absl::OkStatus();
}

TokenHistory::TokenHistory(std::span<const int32_t> prompt_token_ids)
    : prompt_ids_(prompt_token_ids.begin(), prompt_token_ids.end()) {}

void TokenHistory::AddOutputToken(int32_t token_id) {
  ++output_counts_[token_id];
  ++num_output_tokens_;
}

int32_t TokenHistory::OutputCount(int32_t token_id) const {
  const auto it = output_counts_.find(token_id);
  return it == output_counts_.end() ? 0 : it->second;
}

std::vector<SampledToken> SampleTokens(kernels::Backend& backend, float* logits, int64_t vocab,
                                       std::span<const SampleRow> rows) {
  CHECK_GT(vocab, 0);
  const int64_t num_rows = static_cast<int64_t>(rows.size());
  std::vector<SampledToken> results(num_rows);
  std::vector<kernels::SamplingParams> params(num_rows);
  std::vector<std::vector<RawLogit>> saved(num_rows);
  std::vector<std::optional<LogSoftmax>> log_softmax(num_rows);
  std::vector<std::optional<int32_t>> fallback(num_rows);

  for (int64_t r = 0; r < num_rows; ++r) {
    const SequenceSampling& sampling = *rows[r].sampling;
    const TokenHistory& history = *rows[r].history;
    float* row = logits + r * vocab;

    if (sampling.top_logprobs.has_value()) {  // step 1, on the raw logits
      log_softmax[r] = ComputeLogSoftmax(row, vocab);
      const int64_t count = std::min<int64_t>(*sampling.top_logprobs, vocab);
      for (const RawLogit& top : TopRaw(row, vocab, count)) {
        results[r].top_logprobs.emplace_back(top.id, log_softmax[r]->Of(top.value));
      }
    }

    if (!rows[r].allowed_token_mask.empty()) ApplyMask(row, vocab, rows[r].allowed_token_mask);

    if (sampling.HasLogitProcessing()) {
      const bool ban_active =
          history.num_output_tokens() < static_cast<int64_t>(sampling.min_tokens);
      SaveTouched(row, sampling, history, ban_active, &saved[r]);
      ProcessLogits(row, sampling, history, ban_active);
    }

    // Sampling needs a finite maximum. The scan stops at the first live
    // logit, normally the first one, so ordinary rows pay nothing for it.
    if (std::all_of(row, row + vocab, [](float x) { return x == kNegInf; })) {
      fallback[r] = RawArgmaxOfDeadRow(saved[r], rows[r].allowed_token_mask, vocab);
      LOG(WARNING) << "every logit of a row is -inf after logit processing (the min_tokens "
                      "ban covers the whole vocabulary?); taking the argmax of the raw "
                      "logits, token "
                   << *fallback[r];
    }

    // A dead row goes to the backend as greedy, which is defined on -inf
    // (its answer is then replaced by the fallback).
    params[r] = {.temperature = fallback[r].has_value() ? 0.0f : sampling.temperature,
                 .top_k = sampling.top_k,
                 .top_p = sampling.top_p,
                 .min_p = sampling.min_p,
                 .seed = sampling.seed,
                 .offset = static_cast<uint64_t>(history.num_output_tokens())};
  }

  std::vector<int32_t> tokens(num_rows);
  if (num_rows > 0) backend.Sample(logits, num_rows, vocab, params.data(), tokens.data());

  for (int64_t r = 0; r < num_rows; ++r) {
    SampledToken& result = results[r];
    result.token_id = fallback[r].value_or(tokens[r]);
    if (log_softmax[r].has_value()) {
      result.logprob = log_softmax[r]->Of(RawValue(logits + r * vocab, saved[r], result.token_id));
    }
  }
  return results;
}

}  // namespace duet::worker
