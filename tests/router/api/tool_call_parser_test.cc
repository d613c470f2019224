// Tool-call parsing per format: whole outputs and the same outputs streamed
// in every chunking give the same content and calls; argument fragments
// concatenate to the final arguments; near-misses stay content.
#include "router/api/tool_call_parser.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/router/api/api_test_util.h"

namespace duet::api {
namespace {

struct Parsed {
  std::string content;
  std::vector<std::pair<std::string, std::string>> calls;  // name, arguments
};

// Feeds `text` in chunks of `chunk` bytes (0: all at once) and checks the
// delta shape on the way.
Parsed Parse(ToolCallFormat format, const std::string& text, size_t chunk = 0, bool parallel = true) {
  ToolCallParser parser(format, parallel);
  Parsed parsed;
  auto take = [&](const ToolParseDelta& delta) {
    parsed.content += delta.content;
    for (const ToolCallDelta& call : delta.calls) {
      if (call.name.has_value()) {
        EXPECT_EQ(call.index, static_cast<int32_t>(parsed.calls.size())) << "a name starts the next call";
        parsed.calls.push_back({*call.name, ""});
      } else {
        EXPECT_EQ(call.index + 1, static_cast<int32_t>(parsed.calls.size())) << "fragments of the current call";
      }
      if (!parsed.calls.empty()) parsed.calls.back().second += call.arguments;
    }
  };
  if (chunk == 0) {
    take(parser.Add(text));
  } else {
    for (size_t at = 0; at < text.size(); at += chunk) take(parser.Add(text.substr(at, chunk)));
  }
  take(parser.Finish());
  EXPECT_EQ(parser.num_calls(), static_cast<int32_t>(parsed.calls.size()));
  return parsed;
}

// Every chunking gives the whole-output answer.
Parsed ParseAllWays(ToolCallFormat format, const std::string& text, bool parallel = true) {
  const Parsed whole = Parse(format, text, 0, parallel);
  for (size_t chunk : {1, 2, 3, 5, 7, 16}) {
    const Parsed streamed = Parse(format, text, chunk, parallel);
    EXPECT_EQ(streamed.content, whole.content) << "chunk " << chunk;
    EXPECT_EQ(streamed.calls, whole.calls) << "chunk " << chunk;
  }
  return whole;
}

using Calls = std::vector<std::pair<std::string, std::string>>;

TEST(ToolCallParserTest, HermesCallsAndContent) {
  const Parsed parsed = ParseAllWays(ToolCallFormat::kHermes,
      "Let me check both.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\", \"days\": [1, 2]}}\n"
      "</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"R\\u00f6me \\\"x\\\"\"}}\n</tool_call>");
  EXPECT_EQ(parsed.content, "Let me check both.\n");
  EXPECT_EQ(parsed.calls, (Calls{{"get_weather", R"({"location": "Paris", "days": [1, 2]})"},
                                 {"get_weather", R"({"location": "R\u00f6me \"x\""})"}}));
}

TEST(ToolCallParserTest, HermesNearMissesStayContent) {
  EXPECT_EQ(ParseAllWays(ToolCallFormat::kHermes, "a <tool> and <tool_cal").content, "a <tool> and <tool_cal");
  const Parsed not_json = ParseAllWays(ToolCallFormat::kHermes, "x<tool_call>not json</tool_call>");
  EXPECT_TRUE(not_json.calls.empty());
  EXPECT_EQ(not_json.content, "x<tool_call>not json</tool_call>");
  const Parsed nameless = ParseAllWays(ToolCallFormat::kHermes, "<tool_call>{\"arguments\": {}}</tool_call>");
  EXPECT_TRUE(nameless.calls.empty());
  EXPECT_EQ(nameless.content, "<tool_call>{\"arguments\": {}}</tool_call>");
}

TEST(ToolCallParserTest, HermesArgumentsBeforeNameCutOffAndSingleCall) {
  const Parsed reversed =
      ParseAllWays(ToolCallFormat::kHermes, "<tool_call>{\"arguments\": {\"q\": 1}, \"name\": \"f\"}</tool_call>");
  EXPECT_EQ(reversed.calls, (Calls{{"f", R"({"q": 1})"}}));
  const Parsed cut = ParseAllWays(ToolCallFormat::kHermes, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"q\": \"ab");
  EXPECT_EQ(cut.calls, (Calls{{"f", R"({"q": "ab)"}}));  // max_tokens cut it: what it has
  const Parsed no_arguments = ParseAllWays(ToolCallFormat::kHermes, "<tool_call>{\"name\": \"now\"}</tool_call>");
  EXPECT_EQ(no_arguments.calls, (Calls{{"now", "{}"}}));
  const std::string two = "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>\n"
                          "<tool_call>{\"name\": \"b\", \"arguments\": {}}</tool_call>";
  EXPECT_EQ(ParseAllWays(ToolCallFormat::kHermes, two, /*parallel=*/false).calls, (Calls{{"a", "{}"}}));
  EXPECT_EQ(ParseAllWays(ToolCallFormat::kHermes, two).calls.size(), 2u);
  EXPECT_EQ(ParseAllWays(ToolCallFormat::kHermes, two).content, "");
}

TEST(ToolCallParserTest, Llama3Json) {
  const Parsed plain = ParseAllWays(ToolCallFormat::kLlama3Json,
                                    "{\"name\": \"get_weather\", \"parameters\": {\"location\": \"Paris\", \"n\": 3}}");
  EXPECT_EQ(plain.calls, (Calls{{"get_weather", R"({"location": "Paris", "n": 3})"}}));
  EXPECT_EQ(plain.content, "");
  const Parsed tagged = ParseAllWays(ToolCallFormat::kLlama3Json,
                                     "<|python_tag|>{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {\"x\": true}}");
  EXPECT_EQ(tagged.calls, (Calls{{"a", "{}"}, {"b", R"({"x": true})"}}));
  EXPECT_EQ(ParseAllWays(ToolCallFormat::kLlama3Json, "The weather is {sunny}.").content, "The weather is {sunny}.");
  const Parsed object = ParseAllWays(ToolCallFormat::kLlama3Json, "  {\"answer\": 42}");
  EXPECT_TRUE(object.calls.empty());
  EXPECT_EQ(object.content, "  {\"answer\": 42}");
}

TEST(ToolCallParserTest, DeepSeekTokens) {
  const std::string text =
      "I will look it up.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n"
      "{\"location\": \"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>web_search\n```json\n"
      "{\"query\": \"a ``` b\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
  const Parsed parsed = ParseAllWays(ToolCallFormat::kDeepSeekV3, text);
  EXPECT_EQ(parsed.content, "I will look it up.");
  EXPECT_EQ(parsed.calls, (Calls{{"get_weather", R"({"location": "Paris"})"}, {"web_search", R"({"query": "a ``` b"})"}}));
}

TEST(ToolCallFormatTest, DetectedFromTheTargetTemplatesAndNamed) {
  const std::filesystem::path dir = testing::AssetsDir() / "chat_templates";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "no " << dir;
  auto read = [&](const char* name) {
    std::ifstream file(dir / name);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
  };
  EXPECT_EQ(DetectToolCallFormat(read("qwen3.jinja")), ToolCallFormat::kHermes);
  EXPECT_EQ(DetectToolCallFormat(read("llama-3.3-instruct.jinja")), ToolCallFormat::kLlama3Json);
  EXPECT_EQ(DetectToolCallFormat(read("deepseek-r1-distill-qwen.jinja")), ToolCallFormat::kDeepSeekV3);
  EXPECT_EQ(DetectToolCallFormat("{{ messages[0].content }}"), std::nullopt);
  EXPECT_EQ(ToolCallFormatByName("hermes"), ToolCallFormat::kHermes);
  EXPECT_EQ(ToolCallFormatByName("llama3_json"), ToolCallFormat::kLlama3Json);
  EXPECT_EQ(ToolCallFormatByName("deepseek_r1"), ToolCallFormat::kDeepSeekV3);
  EXPECT_EQ(ToolCallFormatByName("pythonic"), std::nullopt);
}

}  // namespace
}  // namespace duet::api
