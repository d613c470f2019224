#include "router/engine/request.h"

#include <cmath>

#include "common/status_macros.h"
#include "common/str_cat.h"

namespace duet::engine {
namespace {

absl::Status Invalid(std::string message) { return absl::InvalidArgumentError(std::move(message)); }

bool Finite(float value) { return std::isfinite(value); }

absl::Status ValidateSampling(const SamplingOptions& sampling, const RequestLimits& limits) {
  if (!Finite(sampling.temperature) || sampling.temperature < 0) {
    return Invalid(StrCat("temperature must be >= 0, got ", sampling.temperature));
  }
  if (sampling.top_p && (!Finite(*sampling.top_p) || *sampling.top_p <= 0 || *sampling.top_p > 1)) {
    return Invalid(StrCat("top_p must be in (0, 1], got ", *sampling.top_p));
  }
  if (sampling.top_k && *sampling.top_k < -1) {
    return Invalid(StrCat("top_k must be >= 1 (0 or -1: off), got ", *sampling.top_k));
  }
  if (sampling.min_p && (!Finite(*sampling.min_p) || *sampling.min_p < 0 || *sampling.min_p > 1)) {
    return Invalid(StrCat("min_p must be in [0, 1], got ", *sampling.min_p));
  }
  if (!Finite(sampling.presence_penalty) || std::fabs(sampling.presence_penalty) > 2) {
    return Invalid(StrCat("presence_penalty must be in [-2, 2], got ", sampling.presence_penalty));
  }
  if (!Finite(sampling.frequency_penalty) || std::fabs(sampling.frequency_penalty) > 2) {
    return Invalid(StrCat("frequency_penalty must be in [-2, 2], got ", sampling.frequency_penalty));
  }
  if (sampling.repetition_penalty &&
      (!Finite(*sampling.repetition_penalty) || *sampling.repetition_penalty <= 0)) {
    return Invalid(StrCat("repetition_penalty must be > 0, got ", *sampling.repetition_penalty));
  }
  for (const auto& [id, bias] : sampling.logit_bias) {
    if (id < 0 || id >= limits.vocab_size) {
      return Invalid(StrCat("logit_bias names token id ", id, ", outside the vocabulary [0, ",
                            limits.vocab_size, ")"));
    }
    if (!Finite(bias) || std::fabs(bias) > 100) {
      return Invalid(StrCat("logit_bias values must be in [-100, 100], got ", bias, " for token ", id));
    }
  }
  if (sampling.top_logprobs &&
      (*sampling.top_logprobs < 0 || *sampling.top_logprobs > limits.max_top_logprobs)) {
    return Invalid(StrCat("top_logprobs must be in [0, ", limits.max_top_logprobs, "], got ",
                          *sampling.top_logprobs));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ValidatedRequest> ValidateRequest(GenerateRequest request, const RequestLimits& limits) {
  const int32_t num_prompt_tokens = static_cast<int32_t>(request.prompt_token_ids.size());
  if (num_prompt_tokens == 0) return Invalid("the prompt is empty");
  for (size_t i = 0; i < request.prompt_token_ids.size(); ++i) {
    const int32_t id = request.prompt_token_ids[i];
    if (id < 0 || id >= limits.vocab_size) {
      return Invalid(StrCat("prompt token id ", id, " at position ", i,
                            " is outside the vocabulary [0, ", limits.vocab_size, ")"));
    }
  }
  if (num_prompt_tokens >= limits.max_model_len) {
    return Invalid(StrCat("the prompt has ", num_prompt_tokens,
                          " tokens, which leaves no room in the model's context length of ",
                          limits.max_model_len, " tokens"));
  }
  DUET_RETURN_IF_ERROR(ValidateSampling(request.sampling, limits));
  if (request.grammar_after_reasoning.has_value()) {
    const GenerateRequest::GrammarAfterReasoning& reasoning = *request.grammar_after_reasoning;
    if (request.grammar == nullptr) return Invalid("grammar_after_reasoning without a grammar");
    for (int32_t id : {reasoning.start_token, reasoning.end_token}) {
      if (id < 0 || id >= limits.vocab_size) {
        return Invalid(StrCat("reasoning token id ", id, " is outside the vocabulary [0, ", limits.vocab_size, ")"));
      }
    }
  }
  const int32_t room = limits.max_model_len - num_prompt_tokens;
  int32_t max_tokens = room;
  if (request.max_tokens) {
    if (*request.max_tokens < 1) return Invalid(StrCat("max_tokens must be >= 1, got ", *request.max_tokens));
    if (*request.max_tokens > room) {
      return Invalid(StrCat("max_tokens is ", *request.max_tokens, " but the prompt has ",
                            num_prompt_tokens, " tokens and the context length is ",
                            limits.max_model_len, ": at most ", room, " tokens can be generated"));
    }
    max_tokens = *request.max_tokens;
  }
  if (request.min_tokens < 0) return Invalid(StrCat("min_tokens must be >= 0, got ", request.min_tokens));
  if (request.min_tokens > max_tokens) {
    return Invalid(StrCat("min_tokens (", request.min_tokens, ") must not exceed max_tokens (",
                          max_tokens, ")"));
  }
  if (request.n < 1 || request.n > limits.max_n) {
    return Invalid(StrCat("n must be in [1, ", limits.max_n, "], got ", request.n));
  }
  if (static_cast<int32_t>(request.stop.size()) > limits.max_stop_strings) {
    return Invalid(StrCat("at most ", limits.max_stop_strings, " stop strings are allowed, got ",
                          request.stop.size()));
  }
  for (const std::string& stop : request.stop) {
    if (stop.empty()) return Invalid("stop strings must not be empty");
    if (static_cast<int32_t>(stop.size()) > limits.max_stop_string_bytes) {
      return Invalid(StrCat("stop strings must be at most ", limits.max_stop_string_bytes,
                            " bytes, got one of ", stop.size()));
    }
  }
  for (int32_t id : request.stop_token_ids) {
    if (id < 0 || id >= limits.vocab_size) {
      return Invalid(StrCat("stop_token_ids names token id ", id, ", outside the vocabulary [0, ",
                            limits.vocab_size, ")"));
    }
  }
  return ValidatedRequest(std::move(request), max_tokens);
}

}  // namespace duet::engine
