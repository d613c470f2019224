#include "router/api/chat_prompt.h"

#include <utility>

#include "absl/status/status.h"
#include "common/status_macros.h"
#include "router/chat_template/chat_context.h"

namespace duet::api {

absl::StatusOr<ChatPrompt> BuildChatPrompt(const ModelAssets& assets, const ChatPromptRequest& request) {
  if (!assets.chat_template.has_value()) {
    return absl::FailedPreconditionError(
        "the model has no chat template (tokenizer_config.json has no chat_template); send text or token ids");
  }
  chat_template::ChatTemplateInputs inputs;
  inputs.messages = request.messages;
  inputs.tools = request.tools;
  inputs.add_generation_prompt = request.add_generation_prompt;
  inputs.bos_token = assets.bos_token;
  inputs.eos_token = assets.eos_token;
  inputs.extra_kwargs = request.template_kwargs;
  // OpenAI clients send tool-call arguments as a JSON string; templates
  // such as Llama 3.x's expect an object.
  inputs.parse_tool_call_arguments = true;
  DUET_ASSIGN_OR_RETURN(const nlohmann::ordered_json context, chat_template::BuildChatTemplateContext(inputs));

  ChatPrompt prompt;
  DUET_ASSIGN_OR_RETURN(prompt.text, assets.chat_template->Render(context));
  DUET_ASSIGN_OR_RETURN(prompt.token_ids, assets.tokenizer->Encode(prompt.text, /*add_special_tokens=*/false));
  return prompt;
}

}  // namespace duet::api
