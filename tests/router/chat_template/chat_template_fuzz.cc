// Fuzz target: arbitrary bytes parsed as a chat template and rendered with a
// small fixed conversation under tight limits. Any input must yield output or
// a Status: no crash, no sanitizer report, no unbounded time or memory.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "router/chat_template/chat_template.h"

namespace {

const nlohmann::ordered_json& Context() {
  static const nlohmann::ordered_json* const kContext = new nlohmann::ordered_json(nlohmann::ordered_json::parse(R"json({
    "messages": [
      {"role": "system", "content": "You are helpful."},
      {"role": "user", "content": "Weather in Paris? ünïcødé 🌍"},
      {"role": "assistant", "content": "<think>\nneed a tool\n</think>\n\n", "reasoning_content": "r",
       "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "n": 1.5}}}]},
      {"role": "tool", "content": "22C"},
      {"role": "assistant", "content": "It is 22C."}
    ],
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
    "documents": null,
    "add_generation_prompt": true,
    "enable_thinking": false,
    "bos_token": "<s>",
    "eos_token": "</s>"
  })json"));
  return *kContext;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  duet::chat_template::RenderLimits limits;
  limits.max_loop_iterations = 20000;
  limits.max_recursion_depth = 200;
  limits.max_output_bytes = 1 << 16;
  limits.max_parse_nesting = 64;
  const std::string_view source(reinterpret_cast<const char*>(data), size);
  auto parsed = duet::chat_template::ChatTemplate::Parse(source, limits);
  if (!parsed.ok()) return 0;
  auto rendered = parsed->Render(Context(), limits, absl::UnixEpoch());
  (void)rendered;
  return 0;
}
