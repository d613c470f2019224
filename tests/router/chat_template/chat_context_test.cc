// Building the render context from an OpenAI-style request.
#include "router/chat_template/chat_context.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "router/chat_template/chat_template.h"

namespace duet::chat_template {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::ordered_json;

TEST(ChatContextTest, HasTheVariablesTransformersPasses) {
  ChatTemplateInputs inputs;
  inputs.messages = json::parse(R"([{"role": "user", "content": "hi"}])");
  inputs.bos_token = "<s>";
  inputs.eos_token = "</s>";
  inputs.add_generation_prompt = false;
  inputs.extra_kwargs = {{"enable_thinking", false}};
  absl::StatusOr<json> context = BuildChatTemplateContext(inputs);
  ASSERT_TRUE(context.ok()) << context.status();
  EXPECT_EQ((*context)["messages"], inputs.messages);
  EXPECT_TRUE((*context)["tools"].is_null());
  EXPECT_TRUE((*context)["documents"].is_null());
  EXPECT_EQ((*context)["add_generation_prompt"], false);
  EXPECT_EQ((*context)["bos_token"], "<s>");
  EXPECT_EQ((*context)["eos_token"], "</s>");
  EXPECT_EQ((*context)["enable_thinking"], false);

  absl::StatusOr<ChatTemplate> chat_template = ChatTemplate::Parse(
      "{{ bos_token }}{% for m in messages %}{{ m.role }}:{{ m.content }}{% endfor %}"
      "{% if tools is none %}|no tools{% endif %}{% if enable_thinking is false %}|no thinking{% endif %}");
  ASSERT_TRUE(chat_template.ok());
  EXPECT_EQ(chat_template->Render(*context).value(), "<s>user:hi|no tools|no thinking");
}

TEST(ChatContextTest, ParsesToolCallArgumentsWhenAsked) {
  ChatTemplateInputs inputs;
  inputs.messages = json::parse(R"([{"role": "assistant", "content": null, "tool_calls": [
      {"type": "function", "function": {"name": "f", "arguments": "{\"b\": 1, \"a\": [2]}"}}]}])");
  absl::StatusOr<json> unchanged = BuildChatTemplateContext(inputs);
  ASSERT_TRUE(unchanged.ok());
  EXPECT_TRUE((*unchanged)["messages"][0]["tool_calls"][0]["function"]["arguments"].is_string());
  inputs.parse_tool_call_arguments = true;
  absl::StatusOr<json> parsed = BuildChatTemplateContext(inputs);
  ASSERT_TRUE(parsed.ok());
  const json& arguments = (*parsed)["messages"][0]["tool_calls"][0]["function"]["arguments"];
  ASSERT_TRUE(arguments.is_object());
  EXPECT_EQ(arguments.dump(), R"({"b":1,"a":[2]})");  // key order kept
}

TEST(ChatContextTest, RejectsMalformedInput) {
  ChatTemplateInputs inputs;
  inputs.messages = json::parse(R"([{"role": "user"}, {"content": "no role"}])");
  EXPECT_THAT(BuildChatTemplateContext(inputs).status().message(), HasSubstr("messages[1].role"));
  inputs.messages = json::object();
  EXPECT_FALSE(BuildChatTemplateContext(inputs).ok());
  inputs.messages = json::array();
  inputs.tools = json::object();
  EXPECT_THAT(BuildChatTemplateContext(inputs).status().message(), HasSubstr("tools"));
  inputs.tools = nullptr;
  inputs.extra_kwargs = {{"messages", 1}};
  EXPECT_THAT(BuildChatTemplateContext(inputs).status().message(), HasSubstr("'messages'"));
  inputs.extra_kwargs = json::object();
  inputs.parse_tool_call_arguments = true;
  inputs.messages = json::parse(R"([{"role": "assistant", "tool_calls": [{"function": {"arguments": "{bad"}}]}])");
  EXPECT_THAT(BuildChatTemplateContext(inputs).status().message(), HasSubstr("messages[0].tool_calls[0]"));
}

}  // namespace
}  // namespace duet::chat_template
