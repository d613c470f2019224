// Grammars that admit only tool calls, for tool_choice "required" or a named
// function: one or more calls (one without parallel_tool_calls) of the
// offered functions, written the way the model's template writes them
// (router/api/tool_call_parser.h reads the same formats back), with
// arguments valid against each function's parameters schema.
#ifndef DUET_ROUTER_GRAMMAR_TOOL_CALL_GRAMMAR_H_
#define DUET_ROUTER_GRAMMAR_TOOL_CALL_GRAMMAR_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "router/grammar/grammar.h"

namespace duet::grammar {

struct ToolFunction {
  std::string name;
  // A JSON Schema; null: the function takes no arguments ({}).
  nlohmann::ordered_json parameters;
};

// `format`: "hermes", "llama3_json" or "deepseek_v3". InvalidArgument for
// an unknown format, no functions, or a parameters schema duet cannot
// enforce (naming the function and the keyword).
absl::StatusOr<Grammar> ToolCallGrammar(std::string_view format, const std::vector<ToolFunction>& functions,
                                        bool parallel);

}  // namespace duet::grammar

#endif  // DUET_ROUTER_GRAMMAR_TOOL_CALL_GRAMMAR_H_
