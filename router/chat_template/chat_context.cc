#include "router/chat_template/chat_context.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "common/str_cat.h"

namespace duet::chat_template {
namespace {

absl::Status ParseToolCallArguments(nlohmann::ordered_json& message, size_t message_index) {
  if (!message.contains("tool_calls") || !message["tool_calls"].is_array()) return absl::OkStatus();
  auto& calls = message["tool_calls"];
  for (size_t i = 0; i < calls.size(); ++i) {
    auto& call = calls[i];
    if (!call.is_object() || !call.contains("function") || !call["function"].is_object()) continue;
    auto& function = call["function"];
    if (!function.contains("arguments") || !function["arguments"].is_string()) continue;
    nlohmann::ordered_json parsed =
        nlohmann::ordered_json::parse(function["arguments"].get<std::string>(), nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) {
      return absl::InvalidArgumentError(StrCat("messages[", message_index, "].tool_calls[", i,
                                                     "].function.arguments is not valid JSON"));
    }
    if (parsed.is_object()) function["arguments"] = std::move(parsed);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<nlohmann::ordered_json> BuildChatTemplateContext(const ChatTemplateInputs& inputs) {
  if (!inputs.messages.is_array()) return absl::InvalidArgumentError("messages must be an array");
  nlohmann::ordered_json messages = inputs.messages;
  for (size_t i = 0; i < messages.size(); ++i) {
    auto& message = messages[i];
    if (!message.is_object()) return absl::InvalidArgumentError(StrCat("messages[", i, "] must be an object"));
    if (!message.contains("role") || !message["role"].is_string()) {
      return absl::InvalidArgumentError(StrCat("messages[", i, "].role must be a string"));
    }
    if (inputs.parse_tool_call_arguments) {
      absl::Status status = ParseToolCallArguments(message, i);
      if (!status.ok()) return status;
    }
  }
  if (!inputs.tools.is_null() && !inputs.tools.is_array()) {
    return absl::InvalidArgumentError("tools must be an array or null");
  }
  if (!inputs.extra_kwargs.is_object()) return absl::InvalidArgumentError("extra template kwargs must be an object");

  nlohmann::ordered_json context = nlohmann::ordered_json::object();
  context["messages"] = std::move(messages);
  context["tools"] = inputs.tools;
  context["documents"] = nullptr;
  context["add_generation_prompt"] = inputs.add_generation_prompt;
  context["bos_token"] = inputs.bos_token;
  context["eos_token"] = inputs.eos_token;
  for (const auto& [key, value] : inputs.extra_kwargs.items()) {
    if (context.contains(key)) {
      return absl::InvalidArgumentError(StrCat("extra template kwarg '", key, "' would replace a built-in variable"));
    }
    context[key] = value;
  }
  return context;
}

}  // namespace duet::chat_template
