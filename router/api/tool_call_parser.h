// Tool calls in a model's output text, for the OpenAI `tool_calls` field:
// which format a model writes them in, and a parser that turns the output,
// streamed or whole, into content and calls.
//
// Formats (named as vLLM's --tool-call-parser):
//   hermes       Qwen3 / Hermes: <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>,
//                several per turn.
//   llama3_json  Llama 3.x: the output is {"name": ..., "parameters": {...}}
//                (optionally after <|python_tag|>); calls separated by ';'.
//   deepseek_v3  DeepSeek-R1 / V3 tokens: <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function
//                <｜tool▁sep｜>NAME\n```json\nARGS\n```<｜tool▁call▁end｜>...<｜tool▁calls▁end｜>.
//
// Streaming follows OpenAI's delta shape: a call's first delta carries its
// index and name (the service adds id and type), later ones fragments of its
// arguments; the fragments of a call concatenate to exactly its final
// arguments (the JSON text the model wrote). Text that could still be the
// start of a call is held back and flushed as content once it cannot be.
// Parsing the whole output is the same parser fed once, so streamed and
// unstreamed answers agree.
//
// Thread-compatible.
#ifndef DUET_ROUTER_API_TOOL_CALL_PARSER_H_
#define DUET_ROUTER_API_TOOL_CALL_PARSER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace duet::api {

enum class ToolCallFormat { kHermes, kLlama3Json, kDeepSeekV3 };

std::string_view ToolCallFormatName(ToolCallFormat format);
// "hermes" (also "qwen3"), "llama3_json" (also "llama3"), "deepseek_v3"
// (also "deepseek_r1"); nullopt for anything else.
std::optional<ToolCallFormat> ToolCallFormatByName(std::string_view name);
// The format a chat template writes assistant tool calls in, or nullopt
// when it has none.
std::optional<ToolCallFormat> DetectToolCallFormat(std::string_view chat_template_source);

struct ToolCallDelta {
  int32_t index = 0;
  std::optional<std::string> name;  // set on the call's first delta only
  std::string arguments;            // the next fragment (may be empty)
};

struct ToolParseDelta {
  std::string content;
  std::vector<ToolCallDelta> calls;
  bool empty() const { return content.empty() && calls.empty(); }
};

class ToolCallParser {
 public:
  // With `parallel_tool_calls` false, calls after the first are dropped.
  ToolCallParser(ToolCallFormat format, bool parallel_tool_calls);

  ToolParseDelta Add(std::string_view text);
  // The end of the output: held text is content; a call cut off keeps what
  // it has.
  ToolParseDelta Finish();

  int32_t num_calls() const { return num_calls_; }

 private:
  enum class State { kContent, kJson, kAfterCall, kDeepSeekHeader, kDeepSeekArgs, kDropping };

  // One JSON object {"name": ..., "arguments" | "parameters": ...}, read a
  // character at a time.
  struct JsonCall {
    std::string raw;              // everything read
    int depth = 0;
    bool in_string = false;
    bool escaped = false;
    std::string key;              // the depth-1 key being read or last read
    bool reading_key = false;
    bool expect_value = false;    // after ':' at depth 1
    enum class Value { kNone, kName, kArguments, kOther } value = Value::kNone;
    int value_depth = 0;          // depth when the value began
    bool value_is_string = false;
    std::string name_raw;         // the name's JSON string
    std::optional<std::string> name;
    std::string arguments;        // the arguments value's text
    bool arguments_done = false;
    bool done = false;            // the object closed
    bool failed = false;          // not a JSON object
  };

  void Step(char c, ToolParseDelta* out);
  void StartJsonCall();
  // Feeds the current JSON call; emits its name and argument fragments.
  void FeedJson(char c, ToolParseDelta* out);
  void EmitCallProgress(ToolParseDelta* out);
  // Whether the object was a call (else its text went to content).
  bool EndCall(ToolParseDelta* out);
  // Text held back because it may begin `marker`; flushes what cannot.
  void HoldOrFlush(std::string_view marker, ToolParseDelta* out);

  const ToolCallFormat format_;
  const bool parallel_;
  State state_ = State::kContent;
  std::string pending_;          // content (or header text) not yet decided
  bool seen_content_ = false;    // llama3_json: a call only at the start
  JsonCall call_;
  int32_t num_calls_ = 0;
  bool call_started_ = false;    // the current call's name was emitted
  size_t arguments_sent_ = 0;    // of the current call
  std::string deepseek_name_;
};

}  // namespace duet::api

#endif  // DUET_ROUTER_API_TOOL_CALL_PARSER_H_
