// Builds the variables a chat template is rendered with from an OpenAI-style
// request, matching what transformers' apply_chat_template passes: messages,
// tools (null when none), documents (null), add_generation_prompt, the
// special tokens and any extra template kwargs (enable_thinking,
// date_string, ...).
#ifndef DUET_ROUTER_CHAT_TEMPLATE_CHAT_CONTEXT_H_
#define DUET_ROUTER_CHAT_TEMPLATE_CHAT_CONTEXT_H_

#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace duet::chat_template {

struct ChatTemplateInputs {
  // [{"role": ..., "content": ..., "tool_calls": [...], ...}, ...]
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  // Tool schemas ([{"type": "function", "function": {...}}]); null: none.
  nlohmann::ordered_json tools = nullptr;
  bool add_generation_prompt = true;
  std::string bos_token;
  std::string eos_token;
  // Extra variables (an object), e.g. {"enable_thinking": false}; they may
  // not replace the variables above.
  nlohmann::ordered_json extra_kwargs = nlohmann::ordered_json::object();
  // OpenAI clients send tool-call arguments as a JSON string; templates such
  // as Llama 3.x expect an object. When set, string arguments that parse as a
  // JSON object are replaced by it.
  bool parse_tool_call_arguments = false;
};

// Validates the shape (messages an array of objects with a string "role";
// tools null or an array; extra_kwargs an object) and returns the context
// object for ChatTemplate::Render. Errors name the offending field, e.g.
// "messages[2].role must be a string".
absl::StatusOr<nlohmann::ordered_json> BuildChatTemplateContext(const ChatTemplateInputs& inputs);

}  // namespace duet::chat_template

#endif  // DUET_ROUTER_CHAT_TEMPLATE_CHAT_CONTEXT_H_
