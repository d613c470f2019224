// What a front end (gRPC, HTTP) asks the engine for, and the one place it is
// checked: ValidateRequest turns a GenerateRequest into a ValidatedRequest,
// and nothing downstream checks again.
#ifndef DUET_ROUTER_ENGINE_REQUEST_H_
#define DUET_ROUTER_ENGINE_REQUEST_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "router/grammar/compiled_grammar.h"

namespace duet::engine {

// Sampling as a client states it; absent optionals mean "off" / the default.
struct SamplingOptions {
  float temperature = 1.0f;                // >= 0; 0 is greedy
  std::optional<float> top_p;              // (0, 1]
  std::optional<int32_t> top_k;            // >= 1 (0 or -1 also mean off)
  std::optional<float> min_p;              // [0, 1]
  float presence_penalty = 0.0f;           // [-2, 2]
  float frequency_penalty = 0.0f;          // [-2, 2]
  std::optional<float> repetition_penalty; // > 0
  std::map<int32_t, float> logit_bias;     // token id -> [-100, 100]
  // Fixes the random draws; absent: the engine picks one per sequence.
  std::optional<uint64_t> seed;
  // Report each sampled token's logprob and this many alternatives (0..20).
  std::optional<int32_t> top_logprobs;
};

struct GenerateRequest {
  // Shown in logs and events; the engine assigns its own numeric id.
  std::string request_id;
  std::vector<int32_t> prompt_token_ids;
  SamplingOptions sampling;
  // Absent: until EOS, a stop, or the context length.
  std::optional<int32_t> max_tokens;
  // No EOS, stop token or stop string ends the sequence before this many
  // tokens were generated (EOS and stop ids are not sampled until then).
  int32_t min_tokens = 0;
  // Generation continues through the model's EOS ids.
  bool ignore_eos = false;
  // A stop string ends the output before its first character; it is never
  // sent to the client.
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;
  // Independent samples of the same prompt; they share the prompt's KV
  // blocks through the prefix cache.
  int32_t n = 1;
  // Special tokens (EOS, <|im_end|>, ...) are left out of the text.
  bool skip_special_tokens = true;
  // Requests with different salts never share prefix-cache blocks.
  std::string cache_salt;
  // Structured output: every sample's tokens are constrained to this grammar
  // (the front end compiled it against the model's vocabulary); the sample
  // ends when the grammar is complete and a stop token is taken.
  std::shared_ptr<grammar::CompiledGrammar> grammar;
  // With a grammar, for a reasoning model: its think block is not
  // constrained; the grammar applies from the token after `end_token`.
  // `open`: the prompt opened the block. Otherwise the first output token
  // may be `start_token` (which opens it) besides what the grammar allows.
  struct GrammarAfterReasoning {
    bool open = false;
    int32_t start_token = -1;
    int32_t end_token = -1;
  };
  std::optional<GrammarAfterReasoning> grammar_after_reasoning;
};

// The model and the engine's limits a request is checked against.
struct RequestLimits {
  int32_t max_model_len = 0;
  int32_t vocab_size = 0;
  int32_t max_n = 16;
  int32_t max_stop_strings = 16;
  int32_t max_stop_string_bytes = 256;
  int32_t max_top_logprobs = 20;
};

// A request that passed ValidateRequest. max_tokens is resolved: the most
// tokens each sample may generate, also bounded by the context length.
class ValidatedRequest {
 public:
  const GenerateRequest& request() const { return request_; }
  int32_t max_tokens() const { return max_tokens_; }
  int32_t num_prompt_tokens() const { return static_cast<int32_t>(request_.prompt_token_ids.size()); }

 private:
  friend absl::StatusOr<ValidatedRequest> ValidateRequest(GenerateRequest request,
                                                          const RequestLimits& limits);
  ValidatedRequest(GenerateRequest request, int32_t max_tokens)
      : request_(std::move(request)), max_tokens_(max_tokens) {}

  GenerateRequest request_;
  int32_t max_tokens_;
};

// InvalidArgument naming the field and the rule, e.g. "top_p must be in
// (0, 1], got 1.5"; a prompt that leaves no room for one output token is
// InvalidArgument too (the message says "context length").
absl::StatusOr<ValidatedRequest> ValidateRequest(GenerateRequest request, const RequestLimits& limits);

}  // namespace duet::engine

#endif  // DUET_ROUTER_ENGINE_REQUEST_H_
