// A chat request (OpenAI-style messages) turned into a prompt: rendered with
// the model's chat template, then tokenized without adding special tokens
// (the template writes BOS and the turn markers itself). Shared by every
// front end, so it speaks JSON and ids, not any wire format.
//
// Thread-safety: stateless; safe from any number of threads as long as the
// ModelAssets outlive the call.
#ifndef DUET_ROUTER_API_CHAT_PROMPT_H_
#define DUET_ROUTER_API_CHAT_PROMPT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "router/api/model_assets.h"

namespace duet::api {

struct ChatPromptRequest {
  // [{"role": ..., "content": ..., "tool_calls": [...]}, ...]
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  // Tool schemas, or null.
  nlohmann::ordered_json tools = nullptr;
  bool add_generation_prompt = true;
  // Extra template variables (an object), e.g. {"enable_thinking": false}.
  nlohmann::ordered_json template_kwargs = nlohmann::ordered_json::object();
};

struct ChatPrompt {
  std::string text;                // the rendered template
  std::vector<int32_t> token_ids;  // [num_prompt_tokens]
};

// Errors: FailedPrecondition when the model has no chat template;
// InvalidArgument for a malformed request (naming the field, e.g.
// "messages[1].role must be a string"), a template error or
// raise_exception() (its message), or text the tokenizer rejects;
// ResourceExhausted when rendering or tokenizing exceeds its limits.
absl::StatusOr<ChatPrompt> BuildChatPrompt(const ModelAssets& assets, const ChatPromptRequest& request);

}  // namespace duet::api

#endif  // DUET_ROUTER_API_CHAT_PROMPT_H_
