// The OpenAI wire format without an engine: request validation (every error
// class with its status, type, param and code), the mapping onto the
// engine's request with its defaults, the response builders, the reasoning
// split and the Prometheus rendering.
#include "router/api/openai_protocol.h"

#include <string>
#include <vector>

#include "common/utf8.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "router/api/metrics.h"
#include "router/api/reasoning_parser.h"
#include "tests/router/engine/engine_test_util.h"

namespace duet::api {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

ProtocolLimits TestLimits() {
  ProtocolLimits limits;
  limits.served_model_name = "duet-test";
  limits.engine.max_model_len = 128;
  limits.engine.vocab_size = 257;
  return limits;
}

// A valid chat body with `extra` merged in.
Json Chat(const Json& extra = Json::object()) {
  Json body = {{"model", "duet-test"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  body.update(extra);
  return body;
}

std::optional<OpenAiError> ChatError(const Json& body, const ProtocolLimits& limits = TestLimits()) {
  ChatCompletionRequest request;
  return ParseChatCompletionRequest(body, limits, &request);
}

std::optional<OpenAiError> CompletionError(const Json& body) {
  CompletionRequest request;
  return ParseCompletionRequest(body, TestLimits(), &request);
}

void ExpectError(const std::optional<OpenAiError>& error, int status, std::string_view param,
                 std::string_view code = "") {
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->status, status);
  EXPECT_EQ(error->param, param);
  EXPECT_EQ(error->code, code);
  EXPECT_EQ(error->type, status == 404 || status == 400 ? "invalid_request_error" : error->type);
  EXPECT_FALSE(error->message.empty());
  EXPECT_THAT(error->message, Not(HasSubstr("SECRET")));
}

TEST(ParseJsonObjectTest, RejectsWhatIsNotAJsonObject) {
  Json body;
  ExpectError(ParseJsonObject("{\"model\": ", &body), 400, "");
  ExpectError(ParseJsonObject("[1, 2]", &body), 400, "");
  ExpectError(ParseJsonObject("\"SECRET\"", &body), 400, "");
  ExpectError(ParseJsonObject("{\"a\": \"\xff\xfe SECRET\"}", &body), 400, "");  // invalid UTF-8
  ExpectError(ParseJsonObject(std::string(100, '[') + std::string(100, ']'), &body), 400, "");
  // Brackets inside strings do not count as nesting.
  EXPECT_FALSE(ParseJsonObject("{\"a\": \"" + std::string(100, '[') + "\\\"\"}", &body).has_value());
  EXPECT_EQ(body["a"], std::string(100, '[') + "\"");
}

TEST(ChatRequestTest, EveryInvalidFieldIsA400NamingIt) {
  ExpectError(ChatError(Json{{"model", "duet-test"}}), 400, "messages");
  ExpectError(ChatError(Chat({{"messages", Json::array()}})), 400, "messages");
  ExpectError(ChatError(Chat({{"messages", "SECRET"}})), 400, "messages");
  ExpectError(ChatError(Chat({{"messages", {{{"content", "SECRET"}}}}})), 400, "messages");
  ExpectError(ChatError(Chat({{"messages", {{{"role", "user"}, {"content", 7}}}}})), 400, "messages");
  ExpectError(ChatError(Chat({{"temperature", "SECRET"}})), 400, "temperature");
  ExpectError(ChatError(Chat({{"temperature", -0.1}})), 400, "temperature");
  ExpectError(ChatError(Chat({{"temperature", 2.01}})), 400, "temperature");
  ExpectError(ChatError(Chat({{"top_p", 0}})), 400, "top_p");
  ExpectError(ChatError(Chat({{"top_p", 1.5}})), 400, "top_p");
  ExpectError(ChatError(Chat({{"n", 0}})), 400, "n");
  ExpectError(ChatError(Chat({{"n", 17}})), 400, "n");
  ExpectError(ChatError(Chat({{"n", 1.5}})), 400, "n");
  ExpectError(ChatError(Chat({{"max_tokens", 0}})), 400, "max_tokens");
  ExpectError(ChatError(Chat({{"max_completion_tokens", "SECRET"}})), 400, "max_completion_tokens");
  ExpectError(ChatError(Chat({{"stop", ""}})), 400, "stop");
  ExpectError(ChatError(Chat({{"stop", Json::array({"a", 1})}})), 400, "stop");
  ExpectError(ChatError(Chat({{"stop", std::vector<std::string>(17, "x")}})), 400, "stop");
  ExpectError(ChatError(Chat({{"presence_penalty", 3}})), 400, "presence_penalty");
  ExpectError(ChatError(Chat({{"frequency_penalty", -3}})), 400, "frequency_penalty");
  ExpectError(ChatError(Chat({{"logit_bias", {{"SECRET", 1}}}})), 400, "logit_bias");
  ExpectError(ChatError(Chat({{"logit_bias", {{"300", 1}}}})), 400, "logit_bias");
  ExpectError(ChatError(Chat({{"logit_bias", {{"3", 101}}}})), 400, "logit_bias");
  ExpectError(ChatError(Chat({{"logprobs", "yes"}})), 400, "logprobs");
  ExpectError(ChatError(Chat({{"top_logprobs", 2}})), 400, "top_logprobs");
  ExpectError(ChatError(Chat({{"logprobs", true}, {"top_logprobs", 21}})), 400, "top_logprobs");
  ExpectError(ChatError(Chat({{"stream", 1}})), 400, "stream");
  ExpectError(ChatError(Chat({{"stream_options", {{"include_usage", true}}}})), 400, "stream_options");
  ExpectError(ChatError(Chat({{"stream", true}, {"stream_options", {{"include_usage", "SECRET"}}}})), 400,
              "stream_options.include_usage");
  ExpectError(ChatError(Chat({{"top_k", -2}})), 400, "top_k");
  ExpectError(ChatError(Chat({{"min_p", 1.5}})), 400, "min_p");
  ExpectError(ChatError(Chat({{"repetition_penalty", 0}})), 400, "repetition_penalty");
  ExpectError(ChatError(Chat({{"min_tokens", -1}})), 400, "min_tokens");
  ExpectError(ChatError(Chat({{"min_tokens", 5}, {"max_tokens", 4}})), 400, "min_tokens");
  ExpectError(ChatError(Chat({{"ignore_eos", "SECRET"}})), 400, "ignore_eos");
  ExpectError(ChatError(Chat({{"seed", "SECRET"}})), 400, "seed");
  ExpectError(ChatError(Chat({{"tools", "SECRET"}})), 400, "tools");
  ExpectError(ChatError(Chat({{"tool_choice", 3}})), 400, "tool_choice");
  ExpectError(ChatError(Chat({{"chat_template_kwargs", Json::array()}})), 400, "chat_template_kwargs");
  ExpectError(ChatError(Chat({{"stop_token_ids", {1, 999}}})), 400, "stop_token_ids");
}

TEST(ChatRequestTest, ToolsAndToolChoice) {
  const Json f = {{"type", "function"},
                  {"function", {{"name", "f"}, {"parameters", {{"type", "object"}}}}}};
  const Json g = {{"type", "function"}, {"function", {{"name", "g"}}}};
  // Malformed tools.
  ExpectError(ChatError(Chat({{"tools", {{{"type", "function"}}}}})), 400, "tools");
  ExpectError(ChatError(Chat({{"tools", {{{"type", "SECRET"}, {"function", {{"name", "f"}}}}}}})), 400, "tools");
  ExpectError(ChatError(Chat({{"tools", {{{"type", "function"}, {"function", {{"name", ""}}}}}}})), 400, "tools");
  ExpectError(ChatError(Chat({{"tools", {{{"type", "function"}, {"function", {{"name", 7}}}}}}})), 400, "tools");
  ExpectError(ChatError(Chat({{"tools", {{{"type", "function"},
                                          {"function", {{"name", "f"}, {"parameters", "SECRET"}}}}}}})),
              400, "tools");
  ExpectError(ChatError(Chat({{"tools", {"SECRET"}}})), 400, "tools");
  // Malformed or impossible tool_choice.
  ExpectError(ChatError(Chat({{"tools", {f}}, {"tool_choice", "SECRET"}})), 400, "tool_choice");
  ExpectError(ChatError(Chat({{"tools", {f}}, {"tool_choice", {{"type", "function"}}}})), 400, "tool_choice");
  ExpectError(ChatError(Chat({{"tools", {f}}, {"tool_choice", {{"type", "SECRET"}, {"function", {{"name", "f"}}}}}})),
              400, "tool_choice");
  ExpectError(ChatError(Chat({{"tools", {f}}, {"tool_choice", {{"type", "function"}, {"function", {{"name", "h"}}}}}})),
              400, "tool_choice");
  ExpectError(ChatError(Chat({{"tool_choice", "required"}})), 400, "tool_choice");
  ExpectError(ChatError(Chat({{"tool_choice", {{"type", "function"}, {"function", {{"name", "f"}}}}}})), 400,
              "tool_choice");
  ExpectError(ChatError(Chat({{"tools", {f}}, {"parallel_tool_calls", "SECRET"}})), 400, "parallel_tool_calls");

  auto parse = [](const Json& body) {
    ChatCompletionRequest request;
    std::optional<OpenAiError> error = ParseChatCompletionRequest(body, TestLimits(), &request);
    EXPECT_FALSE(error.has_value()) << error->message;
    return request.tools;
  };
  EXPECT_EQ(parse(Chat()).choice, ToolSettings::Choice::kNone);
  EXPECT_EQ(parse(Chat({{"tool_choice", "none"}})).choice, ToolSettings::Choice::kNone);
  ToolSettings offered = parse(Chat({{"tools", {f, g}}}));
  EXPECT_EQ(offered.choice, ToolSettings::Choice::kAuto);  // the default with tools, as OpenAI
  EXPECT_TRUE(offered.parallel);
  ASSERT_EQ(offered.functions.size(), 2u);
  EXPECT_EQ(offered.functions[0].name, "f");
  EXPECT_EQ(offered.functions[0].parameters, Json({{"type", "object"}}));
  EXPECT_EQ(offered.functions[1].name, "g");
  EXPECT_EQ(parse(Chat({{"tools", {f}}, {"tool_choice", "required"}})).choice, ToolSettings::Choice::kRequired);
  EXPECT_EQ(parse(Chat({{"tools", {f}}, {"tool_choice", "none"}})).choice, ToolSettings::Choice::kNone);
  ToolSettings named = parse(Chat({{"tools", {f, g}},
                                   {"tool_choice", {{"type", "function"}, {"function", {{"name", "g"}}}}},
                                   {"parallel_tool_calls", false}}));
  EXPECT_EQ(named.choice, ToolSettings::Choice::kNamed);
  EXPECT_EQ(named.function, "g");
  EXPECT_FALSE(named.parallel);
}

TEST(ChatRequestTest, UnknownModelIs404) {
  ExpectError(ChatError(Chat({{"model", "SECRET"}})), 404, "model", "model_not_found");
  ExpectError(ChatError(Chat({{"model", 3}})), 400, "model");
  // Leaving the model out means the served one.
  Json body = Chat();
  body.erase("model");
  EXPECT_FALSE(ChatError(body).has_value());
}

// The output constraint of each spelling: OpenAI's response_format, vLLM's
// guided_* fields and structured_outputs.
grammar::GrammarSpec ConstraintOf(const Json& body) {
  ChatCompletionRequest request;
  const std::optional<OpenAiError> error = ParseChatCompletionRequest(body, TestLimits(), &request);
  EXPECT_FALSE(error.has_value()) << error->message;
  EXPECT_TRUE(request.settings.structured.has_value());
  return request.settings.structured.value_or(grammar::GrammarSpec());
}

TEST(ChatRequestTest, OutputConstraints) {
  using Kind = grammar::GrammarSpec::Kind;
  ChatCompletionRequest plain;
  ASSERT_FALSE(ParseChatCompletionRequest(Chat({{"response_format", {{"type", "text"}}}}), TestLimits(), &plain));
  EXPECT_FALSE(plain.settings.structured.has_value());

  EXPECT_EQ(ConstraintOf(Chat({{"response_format", {{"type", "json_object"}}}})).kind, Kind::kJsonObject);
  const Json schema = {{"type", "object"}, {"properties", {{"a", {{"type", "integer"}}}}}};
  const grammar::GrammarSpec openai = ConstraintOf(
      Chat({{"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "x"}, {"schema", schema}, {"strict", true}}}}}}));
  EXPECT_EQ(openai.kind, Kind::kJsonSchema);
  EXPECT_EQ(openai.schema, schema);
  EXPECT_EQ(ConstraintOf(Chat({{"guided_json", schema.dump()}})).schema, schema);  // JSON text works too
  EXPECT_EQ(ConstraintOf(Chat({{"guided_regex", "[a-z]+"}})).regex, "[a-z]+");
  EXPECT_EQ(ConstraintOf(Chat({{"guided_choice", {"yes", "no"}}})).choices, (std::vector<std::string>{"yes", "no"}));
  EXPECT_EQ(ConstraintOf(Chat({{"structured_outputs", {{"choice", {"a"}}}}})).kind, Kind::kChoice);
  EXPECT_EQ(ConstraintOf(Chat({{"structured_outputs", {{"json_object", true}}}})).kind, Kind::kJsonObject);
  EXPECT_EQ(ConstraintOf(Chat({{"structured_outputs", {{"json", schema}}}})).kind, Kind::kJsonSchema);

  ExpectError(ChatError(Chat({{"response_format", {{"type", "xml"}}}})), 400, "response_format.type");
  ExpectError(ChatError(Chat({{"response_format", {{"type", "json_schema"}}}})), 400, "response_format.json_schema");
  ExpectError(ChatError(Chat({{"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "x"}}}}}})),
              400, "response_format.json_schema.schema");
  ExpectError(ChatError(Chat({{"guided_json", "{not json"}})), 400, "guided_json");
  ExpectError(ChatError(Chat({{"guided_choice", Json::array()}})), 400, "guided_choice");
  ExpectError(ChatError(Chat({{"guided_regex", 3}})), 400, "guided_regex");
  ExpectError(ChatError(Chat({{"guided_grammar", "root ::= \"a\""}})), 400, "guided_grammar");
  ExpectError(ChatError(Chat({{"structured_outputs", {{"grammar", "x"}}}})), 400, "structured_outputs.grammar");
  const std::optional<OpenAiError> both =
      ChatError(Chat({{"response_format", {{"type", "json_object"}}}, {"guided_regex", "a"}}));
  ExpectError(both, 400, "guided_regex");
  EXPECT_THAT(both->message, HasSubstr("only one output constraint"));
}

TEST(ChatRequestTest, DefaultsMapOntoTheEngineRequest) {
  ChatCompletionRequest request;
  ASSERT_FALSE(ParseChatCompletionRequest(Chat(), TestLimits(), &request).has_value());
  const engine::GenerateRequest& out = request.settings.request;
  EXPECT_FLOAT_EQ(out.sampling.temperature, 1.0f);
  EXPECT_FALSE(out.sampling.top_p.has_value());
  EXPECT_FALSE(out.sampling.top_k.has_value());
  EXPECT_FALSE(out.sampling.seed.has_value());
  EXPECT_FALSE(out.sampling.top_logprobs.has_value());
  EXPECT_FALSE(out.max_tokens.has_value());
  EXPECT_EQ(out.n, 1);
  EXPECT_TRUE(out.skip_special_tokens);
  EXPECT_FALSE(out.ignore_eos);
  EXPECT_TRUE(out.stop.empty());
  EXPECT_FALSE(request.settings.stream);
  EXPECT_FALSE(request.settings.include_usage);
  EXPECT_FALSE(request.settings.logprobs.has_value());
  EXPECT_TRUE(request.prompt.add_generation_prompt);
  EXPECT_TRUE(request.prompt.tools.is_null());
  EXPECT_EQ(request.prompt.messages, Json::parse(R"([{"role": "user", "content": "hi"}])"));
}

TEST(ChatRequestTest, GenerationConfigFillsWhatTheRequestLeavesUnset) {
  ProtocolLimits limits = TestLimits();
  limits.generation_defaults.temperature = 0.6;
  limits.generation_defaults.top_p = 0.95;
  limits.generation_defaults.top_k = 20;
  limits.generation_defaults.repetition_penalty = 1.1;
  ChatCompletionRequest defaults;
  ASSERT_FALSE(ParseChatCompletionRequest(Chat(), limits, &defaults).has_value());
  EXPECT_FLOAT_EQ(defaults.settings.request.sampling.temperature, 0.6f);
  EXPECT_FLOAT_EQ(*defaults.settings.request.sampling.top_p, 0.95f);
  EXPECT_EQ(*defaults.settings.request.sampling.top_k, 20);
  EXPECT_FLOAT_EQ(*defaults.settings.request.sampling.repetition_penalty, 1.1f);

  ChatCompletionRequest overridden;
  ASSERT_FALSE(ParseChatCompletionRequest(Chat({{"temperature", 0}, {"top_p", 1}, {"top_k", -1}}), limits,
                                          &overridden)
                   .has_value());
  EXPECT_FLOAT_EQ(overridden.settings.request.sampling.temperature, 0.0f);
  EXPECT_FLOAT_EQ(*overridden.settings.request.sampling.top_p, 1.0f);
  EXPECT_FALSE(overridden.settings.request.sampling.top_k.has_value());
}

TEST(ChatRequestTest, EveryFieldMaps) {
  const Json body = Chat(Json::parse(R"({
    "messages": [{"role": "system", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                 {"role": "assistant", "content": null, "tool_calls": [{"id": "1"}]},
                 {"role": "user", "content": "q", "name": "x"}],
    "max_tokens": 7, "max_completion_tokens": 9, "temperature": 0.5, "top_p": 0.9, "n": 3,
    "stop": "END", "seed": -1, "presence_penalty": 0.5, "frequency_penalty": -0.5,
    "logit_bias": {"65": -100, "66": 2.5}, "logprobs": true, "top_logprobs": 4,
    "stream": true, "stream_options": {"include_usage": true, "continuous_usage_stats": true},
    "user": "u", "top_k": 5, "min_p": 0.1, "repetition_penalty": 1.2, "min_tokens": 2,
    "ignore_eos": true, "skip_special_tokens": false, "stop_token_ids": [10, 11],
    "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "auto",
    "chat_template_kwargs": {"enable_thinking": false}, "add_generation_prompt": false,
    "metadata": {"k": "v"}, "store": false})"));
  ChatCompletionRequest request;
  ASSERT_FALSE(ParseChatCompletionRequest(body, TestLimits(), &request).has_value());
  const engine::GenerateRequest& out = request.settings.request;
  EXPECT_EQ(out.max_tokens, 9);
  EXPECT_EQ(request.settings.max_tokens_param, "max_completion_tokens");
  EXPECT_FLOAT_EQ(out.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(*out.sampling.top_p, 0.9f);
  EXPECT_EQ(out.n, 3);
  EXPECT_THAT(out.stop, ElementsAre("END"));
  EXPECT_EQ(*out.sampling.seed, ~uint64_t{0});
  EXPECT_FLOAT_EQ(out.sampling.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(out.sampling.frequency_penalty, -0.5f);
  EXPECT_EQ(out.sampling.logit_bias, (std::map<int32_t, float>{{65, -100.0f}, {66, 2.5f}}));
  EXPECT_EQ(request.settings.logprobs, 4);
  EXPECT_EQ(out.sampling.top_logprobs, 4);
  EXPECT_TRUE(request.settings.stream);
  EXPECT_TRUE(request.settings.include_usage);
  EXPECT_EQ(*out.sampling.top_k, 5);
  EXPECT_FLOAT_EQ(*out.sampling.min_p, 0.1f);
  EXPECT_FLOAT_EQ(*out.sampling.repetition_penalty, 1.2f);
  EXPECT_EQ(out.min_tokens, 2);
  EXPECT_TRUE(out.ignore_eos);
  EXPECT_FALSE(out.skip_special_tokens);
  EXPECT_THAT(out.stop_token_ids, ElementsAre(10, 11));
  EXPECT_FALSE(request.prompt.add_generation_prompt);
  EXPECT_EQ(request.prompt.tools[0]["function"]["name"], "f");
  EXPECT_EQ(request.prompt.template_kwargs, Json::parse(R"({"enable_thinking": false, "tool_choice": "auto"})"));
  EXPECT_EQ(request.prompt.messages[0]["content"], "a\nb");
  EXPECT_EQ(request.prompt.messages[1]["content"], "");  // null: the empty text, as vLLM renders it
  EXPECT_EQ(request.prompt.messages[1]["tool_calls"][0]["id"], "1");
  EXPECT_EQ(request.prompt.messages[2]["name"], "x");
  EXPECT_THAT(request.settings.unknown_fields,
              ElementsAre("stream_options.continuous_usage_stats", "metadata", "store"));
}

TEST(ChatRequestTest, OnlyTextContentPartsAreAccepted) {
  const Json image = Json::parse(R"([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}])");
  ExpectError(ChatError(Chat({{"messages", image}})), 400, "messages");
}

TEST(CompletionRequestTest, PromptShapes) {
  CompletionRequest text;
  ASSERT_FALSE(ParseCompletionRequest(Json{{"prompt", "abc"}}, TestLimits(), &text).has_value());
  ASSERT_EQ(text.prompts.size(), 1u);
  EXPECT_TRUE(text.prompts[0].is_text);
  EXPECT_EQ(text.prompts[0].text, "abc");

  CompletionRequest texts;
  ASSERT_FALSE(ParseCompletionRequest(Json{{"prompt", Json::array({"a", "b"})}}, TestLimits(), &texts).has_value());
  ASSERT_EQ(texts.prompts.size(), 2u);
  EXPECT_EQ(texts.prompts[1].text, "b");

  CompletionRequest ids;
  ASSERT_FALSE(ParseCompletionRequest(Json{{"prompt", {1, 2, 3}}}, TestLimits(), &ids).has_value());
  ASSERT_EQ(ids.prompts.size(), 1u);
  EXPECT_FALSE(ids.prompts[0].is_text);
  EXPECT_THAT(ids.prompts[0].token_ids, ElementsAre(1, 2, 3));

  CompletionRequest id_lists;
  ASSERT_FALSE(ParseCompletionRequest(Json::parse(R"({"prompt": [[1], [2, 3]]})"), TestLimits(), &id_lists)
                   .has_value());
  ASSERT_EQ(id_lists.prompts.size(), 2u);
  EXPECT_THAT(id_lists.prompts[1].token_ids, ElementsAre(2, 3));

  ExpectError(CompletionError(Json::object()), 400, "prompt");
  ExpectError(CompletionError(Json{{"prompt", Json::array()}}), 400, "prompt");
  ExpectError(CompletionError(Json::parse(R"({"prompt": ["a", 1]})")), 400, "prompt");
  ExpectError(CompletionError(Json::parse(R"({"prompt": [1, "SECRET"]})")), 400, "prompt");
  ExpectError(CompletionError(Json::parse(R"({"prompt": [1, 300]})")), 400, "prompt");
  ExpectError(CompletionError(Json{{"prompt", 5}}), 400, "prompt");
}

TEST(CompletionRequestTest, CompletionFields) {
  CompletionRequest request;
  ASSERT_FALSE(ParseCompletionRequest(Json::parse(R"({"prompt": "a", "logprobs": 3, "echo": false, "best_of": 2,
                                                       "n": 2, "suffix": ""})"),
                                      TestLimits(), &request)
                   .has_value());
  EXPECT_EQ(request.settings.logprobs, 3);
  EXPECT_EQ(request.settings.request.sampling.top_logprobs, 3);
  EXPECT_EQ(request.settings.request.n, 2);

  ExpectError(CompletionError(Json::parse(R"({"prompt": "a", "logprobs": true})")), 400, "logprobs");
  ExpectError(CompletionError(Json::parse(R"({"prompt": "a", "logprobs": 21})")), 400, "logprobs");
  ExpectError(CompletionError(Json::parse(R"({"prompt": "a", "echo": true})")), 400, "echo");
  ExpectError(CompletionError(Json::parse(R"({"prompt": "a", "suffix": "SECRET"})")), 400, "suffix");
  ExpectError(CompletionError(Json::parse(R"({"prompt": "a", "best_of": 3})")), 400, "best_of");
  // max_completion_tokens is a chat field; completions ignore it as unknown.
  CompletionRequest unknown;
  ASSERT_FALSE(ParseCompletionRequest(Json::parse(R"({"prompt": "a", "max_completion_tokens": 0})"), TestLimits(),
                                      &unknown)
                   .has_value());
  EXPECT_THAT(unknown.settings.unknown_fields, ElementsAre("max_completion_tokens"));
}

TEST(TokenizeRequestTest, PromptOrMessages) {
  TokenizeRequest prompt;
  ASSERT_FALSE(ParseTokenizeRequest(Json{{"prompt", "x"}}, &prompt).has_value());
  EXPECT_FALSE(prompt.is_chat);
  EXPECT_TRUE(prompt.add_special_tokens);

  TokenizeRequest chat;
  ASSERT_FALSE(ParseTokenizeRequest(Json::parse(R"({"messages": [{"role": "user", "content": "x"}],
                                                    "return_token_strs": true})"),
                                    &chat)
                   .has_value());
  EXPECT_TRUE(chat.is_chat);
  EXPECT_FALSE(chat.add_special_tokens);
  EXPECT_TRUE(chat.return_token_strs);

  TokenizeRequest missing;
  ExpectError(ParseTokenizeRequest(Json::object(), &missing), 400, "prompt");
  std::vector<int32_t> ids;
  ASSERT_FALSE(ParseDetokenizeRequest(Json{{"tokens", {104, 105}}}, &ids).has_value());
  EXPECT_THAT(ids, ElementsAre(104, 105));
  std::vector<int32_t> bad;
  ExpectError(ParseDetokenizeRequest(Json{{"tokens", "SECRET"}}, &bad), 400, "tokens");
}

TEST(ContextLengthTest, PromptAndMaxTokensMustFit) {
  GenerationSettings settings;
  EXPECT_FALSE(CheckContextLength(127, settings, 128, "messages").has_value());
  ExpectError(CheckContextLength(128, settings, 128, "messages"), 400, "messages", "context_length_exceeded");
  settings.request.max_tokens = 29;
  EXPECT_FALSE(CheckContextLength(99, settings, 128, "prompt").has_value());
  ExpectError(CheckContextLength(100, settings, 128, "prompt"), 400, "max_tokens", "context_length_exceeded");
}

TEST(ResponseTest, ChatCompletionShape) {
  const ResponseHeader header{"chatcmpl-1", 1700000000, "duet-test"};
  ChoiceOutput plain;
  plain.content = "hello";
  plain.finish_reason = engine::FinishReason::kStop;
  ChoiceOutput reasoned;
  reasoned.index = 1;
  reasoned.reasoning = "think";
  reasoned.finish_reason = engine::FinishReason::kLength;
  reasoned.stop_reason = "END";
  const Json json = ChatCompletionJson(header, {plain, reasoned}, UsageCounts{10, 4, 8});
  EXPECT_EQ(json, Json::parse(R"({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "duet-test",
    "choices": [
      {"index": 0, "message": {"role": "assistant", "content": "hello", "tool_calls": []},
       "logprobs": null, "finish_reason": "stop", "stop_reason": null},
      {"index": 1, "message": {"role": "assistant", "content": null, "reasoning_content": "think",
                               "reasoning": "think", "tool_calls": []},
       "logprobs": null, "finish_reason": "length", "stop_reason": "END"}],
    "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14,
              "prompt_tokens_details": {"cached_tokens": 8}}})"));
}

TEST(ResponseTest, ChunksAndErrors) {
  const ResponseHeader header{"cmpl-1", 5, "m"};
  EXPECT_EQ(CompletionChunkJson(header, 2, "ab", nullptr, nullptr, nullptr)["choices"][0],
            Json::parse(R"({"index": 2, "text": "ab", "logprobs": null, "finish_reason": null})"));
  EXPECT_EQ(ChatChunkJson(header, 0, Json::object(), nullptr, "stop", 7)["choices"][0],
            Json::parse(R"({"index": 0, "delta": {}, "logprobs": null, "finish_reason": "stop", "stop_reason": 7})"));
  const Json usage = UsageChunkJson(header, "chat.completion.chunk", UsageCounts{3, 2, 0});
  EXPECT_EQ(usage["choices"], Json::array());
  EXPECT_EQ(usage["usage"]["total_tokens"], 5);
  EXPECT_EQ(ErrorJson(InvalidRequestError("bad", "n")),
            Json::parse(R"({"error": {"message": "bad", "type": "invalid_request_error", "param": "n",
                                      "code": null}})"));
  EXPECT_EQ(SseEvent(Json{{"a", 1}}), "data: {\"a\":1}\n\n");
}

TEST(ResponseTest, InvalidUtf8IsReplacedNotThrown) {
  const std::string dumped = DumpJson(Json{{"text", std::string("a\xff\xc3")}});
  EXPECT_EQ(FindInvalidUtf8(dumped), dumped.size());
  EXPECT_THAT(dumped, HasSubstr("a\xEF\xBF\xBD"));
}

TEST(ResponseTest, StopReasonLeavesOutEos) {
  engine::EngineEvent event;
  event.stop_token_id = 256;
  EXPECT_TRUE(StopReasonJson(event, {256}).is_null());
  EXPECT_EQ(StopReasonJson(event, {2}), 256);
  event.stop_string = "END";
  EXPECT_EQ(StopReasonJson(event, {256}), "END");
}

TEST(LogprobsTest, ChatAndCompletionShapes) {
  const std::unique_ptr<tokenizer::Tokenizer> tokenizer = duet::testing::ByteTokenizer();
  engine::TokenLogprob first{'a', -0.5f, {{'a', -0.5f}, {'b', -1.5f}}};
  engine::TokenLogprob second{0xC3, -std::numeric_limits<float>::infinity(), {}};
  Json chat = Json::array();
  AppendChatLogprobs(*tokenizer, {first, second}, &chat);
  EXPECT_EQ(chat[0], Json::parse(R"({"token": "a", "logprob": -0.5, "bytes": [97],
      "top_logprobs": [{"token": "a", "logprob": -0.5, "bytes": [97]},
                       {"token": "b", "logprob": -1.5, "bytes": [98]}]})"));
  EXPECT_EQ(chat[1]["token"], "\xEF\xBF\xBD");  // half a character
  EXPECT_EQ(chat[1]["bytes"], Json::array({0xC3}));
  EXPECT_EQ(chat[1]["logprob"], -9999.0);

  Json completion = EmptyCompletionLogprobs();
  int64_t offset = 3;
  AppendCompletionLogprobs(*tokenizer, {first, first}, &offset, &completion);
  EXPECT_EQ(completion, Json::parse(R"({"tokens": ["a", "a"], "token_logprobs": [-0.5, -0.5],
      "top_logprobs": [{"a": -0.5, "b": -1.5}, {"a": -0.5, "b": -1.5}], "text_offset": [3, 4]})"));
  EXPECT_EQ(offset, 5);
}

// ---- reasoning_parser -------------------------------------------------------

std::pair<std::string, std::string> Feed(ReasoningParser& parser, const std::vector<std::string>& deltas) {
  std::string reasoning;
  std::string content;
  auto take = [&](const std::vector<ReasoningSegment>& segments) {
    for (const ReasoningSegment& segment : segments) (segment.is_reasoning ? reasoning : content) += segment.text;
  };
  for (const std::string& delta : deltas) take(parser.Add(delta));
  take(parser.Finish());
  return {reasoning, content};
}

TEST(ReasoningParserTest, TagsSplitAcrossDeltas) {
  ReasoningParser parser(/*starts_in_reasoning=*/false);
  EXPECT_TRUE(parser.Add("<th").empty());  // could be the opening tag
  const std::vector<ReasoningSegment> opened = parser.Add("ink>let me");
  ASSERT_EQ(opened.size(), 1u);
  EXPECT_TRUE(opened[0].is_reasoning);
  EXPECT_EQ(opened[0].text, "let me");
  EXPECT_TRUE(parser.in_reasoning());
  const std::vector<ReasoningSegment> held = parser.Add(" see</");
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].text, " see");
  const std::vector<ReasoningSegment> closed = parser.Add("think>\n\nAnswer");
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_FALSE(closed[0].is_reasoning);
  EXPECT_EQ(closed[0].text, "\n\nAnswer");
  EXPECT_TRUE(parser.Finish().empty());
}

TEST(ReasoningParserTest, WholeOutputs) {
  ReasoningParser qwen(false);
  EXPECT_EQ(Feed(qwen, {"<think>\nhm\n</think>\n\nHi"}), std::make_pair(std::string("\nhm\n"), std::string("\n\nHi")));
  ReasoningParser one_char_at_a_time(false);
  std::vector<std::string> chars;
  for (char c : std::string("<think>ab</think>cd")) chars.push_back(std::string(1, c));
  EXPECT_EQ(Feed(one_char_at_a_time, chars), std::make_pair(std::string("ab"), std::string("cd")));
  // The prompt opened the block (DeepSeek-R1 distills): no opening tag.
  ReasoningParser opened(true);
  EXPECT_EQ(Feed(opened, {"step 1", "</think>", "done"}), std::make_pair(std::string("step 1"), std::string("done")));
  // No tags at all: all content; a held-back "<" is released at the end.
  ReasoningParser plain(false);
  EXPECT_EQ(Feed(plain, {"a < b", " <"}), std::make_pair(std::string(), std::string("a < b <")));
  // Output that stops inside the block is reasoning.
  ReasoningParser cut(false);
  EXPECT_EQ(Feed(cut, {"<think>unfinished </thi"}), std::make_pair(std::string("unfinished </thi"), std::string()));
}

TEST(ReasoningParserTest, PromptOpensReasoning) {
  EXPECT_FALSE(PromptOpensReasoning(std::vector<int32_t>{1, 2, 3}, 10, 11));
  EXPECT_TRUE(PromptOpensReasoning(std::vector<int32_t>{1, 10, 3}, 10, 11));
  EXPECT_FALSE(PromptOpensReasoning(std::vector<int32_t>{10, 3, 11, 4}, 10, 11));
  EXPECT_TRUE(PromptOpensReasoning(std::vector<int32_t>{10, 11, 10}, 10, 11));
}

// ---- metrics ----------------------------------------------------------------

TEST(MetricsTest, HistogramBuckets) {
  Histogram histogram({0.1, 1.0});
  histogram.Observe(0.05);
  histogram.Observe(0.1);
  histogram.Observe(0.5);
  histogram.Observe(7);
  EXPECT_THAT(histogram.bucket_counts(), ElementsAre(2, 1, 1));
  EXPECT_EQ(histogram.count(), 4u);
  EXPECT_DOUBLE_EQ(histogram.sum(), 7.65);
}

TEST(MetricsTest, PrometheusText) {
  Metrics metrics("m\"x");
  metrics.ObserveTimeToFirstToken(absl::Milliseconds(30));
  metrics.ObserveTimeToFirstToken(absl::Seconds(3));
  metrics.ObserveInterTokenLatency(absl::Milliseconds(20));
  metrics.ObserveEndToEndLatency(absl::Seconds(1));
  metrics.CountFinished("stop");
  engine::EngineStats stats;
  stats.num_running_requests = 2;
  stats.num_waiting_requests = 1;
  stats.num_kv_blocks = 8;
  stats.num_used_kv_blocks = 2;
  stats.prefix_cache_queried_tokens = 100;
  stats.prefix_cache_hit_tokens = 32;
  stats.num_preemptions = 3;
  stats.num_prompt_tokens = 40;
  stats.num_generated_tokens = 12;
  stats.num_steps = 9;
  stats.step_seconds = 1.5;
  stats.step_compute_seconds = 1.25;
  stats.num_decode_steps = 7;
  stats.decode_step_seconds = 0.75;
  stats.decode_step_compute_seconds = 0.625;
  const std::string text = metrics.RenderPrometheus(stats);
  const std::string labels = "{model_name=\"m\\\"x\"}";
  EXPECT_THAT(text, HasSubstr("# TYPE duet:num_requests_running gauge\nduet:num_requests_running" + labels + " 2\n"));
  EXPECT_THAT(text, HasSubstr("duet:num_requests_waiting" + labels + " 1\n"));
  EXPECT_THAT(text, HasSubstr("duet:kv_cache_usage_perc" + labels + " 0.25\n"));
  EXPECT_THAT(text, HasSubstr("duet:prefix_cache_queries_total" + labels + " 100\n"));
  EXPECT_THAT(text, HasSubstr("duet:prefix_cache_hits_total" + labels + " 32\n"));
  EXPECT_THAT(text, HasSubstr("duet:num_preemptions_total" + labels + " 3\n"));
  EXPECT_THAT(text, HasSubstr("duet:prompt_tokens_total" + labels + " 40\n"));
  EXPECT_THAT(text, HasSubstr("duet:generation_tokens_total" + labels + " 12\n"));
  EXPECT_THAT(text, HasSubstr("duet:num_steps_total" + labels + " 9\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE duet:step_seconds_total counter\nduet:step_seconds_total" + labels + " 1.5\n"));
  EXPECT_THAT(text, HasSubstr("duet:step_compute_seconds_total" + labels + " 1.25\n"));
  EXPECT_THAT(text, HasSubstr("duet:decode_steps_total" + labels + " 7\n"));
  EXPECT_THAT(text, HasSubstr("duet:decode_step_seconds_total" + labels + " 0.75\n"));
  EXPECT_THAT(text, HasSubstr("duet:decode_step_compute_seconds_total" + labels + " 0.625\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE duet:time_to_first_token_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("duet:time_to_first_token_seconds_bucket{model_name=\"m\\\"x\",le=\"0.02\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("duet:time_to_first_token_seconds_bucket{model_name=\"m\\\"x\",le=\"0.04\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("duet:time_to_first_token_seconds_bucket{model_name=\"m\\\"x\",le=\"5\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("duet:time_to_first_token_seconds_bucket{model_name=\"m\\\"x\",le=\"+Inf\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("duet:time_to_first_token_seconds_count" + labels + " 2\n"));
  EXPECT_THAT(text, HasSubstr("duet:inter_token_latency_seconds_count" + labels + " 1\n"));
  EXPECT_THAT(text, HasSubstr("duet:e2e_request_latency_seconds_sum" + labels + " 1\n"));
  EXPECT_THAT(text, HasSubstr("duet:request_success_total{model_name=\"m\\\"x\",finished_reason=\"stop\"} 1\n"));
}

}  // namespace
}  // namespace duet::api
