#include "router/grammar/tool_call_grammar.h"

#include "common/str_cat.h"
#include "router/grammar/json_schema_grammar.h"

namespace duet::grammar {

absl::StatusOr<Grammar> ToolCallGrammar(std::string_view format, const std::vector<ToolFunction>& functions,
                                        bool parallel) {
  if (functions.empty()) return absl::InvalidArgumentError("tool calls need at least one function");
  if (format != "hermes" && format != "llama3_json" && format != "deepseek_v3") {
    return absl::InvalidArgumentError(StrCat("no tool-call grammar for the format '", format, "'"));
  }
  Grammar grammar;
  std::vector<Sequence> calls;
  for (const ToolFunction& function : functions) {
    const nlohmann::ordered_json no_arguments = {{"type", "object"}, {"properties", nlohmann::ordered_json::object()}};
    absl::StatusOr<Sequence> arguments =
        CompileJsonSchema(function.parameters.is_null() ? no_arguments : function.parameters, &grammar);
    if (!arguments.ok()) {
      return absl::InvalidArgumentError(
          StrCat("the parameters of tool '", function.name, "': ", arguments.status().message()));
    }
    const std::string name = JsonLayout(nlohmann::ordered_json(function.name));
    std::string before;
    std::string after;
    if (format == "hermes") {
      before = StrCat("<tool_call>\n{\"name\": ", name, ", \"arguments\": ");
      after = "}\n</tool_call>";
    } else if (format == "llama3_json") {
      before = StrCat("{\"name\": ", name, ", \"parameters\": ");
      after = "}";
    } else {
      before = StrCat("<｜tool▁call▁begin｜>function<｜tool▁sep｜>", function.name, "\n```json\n");
      after = "\n```<｜tool▁call▁end｜>";
    }
    Sequence call = grammar.Literal(before);
    call.insert(call.end(), arguments->begin(), arguments->end());
    const Sequence closing = grammar.Literal(after);
    call.insert(call.end(), closing.begin(), closing.end());
    calls.push_back(std::move(call));
  }
  const int32_t call = grammar.Choice(std::move(calls), "tool-call");
  Sequence root;
  if (format == "deepseek_v3") root = grammar.Literal("<｜tool▁calls▁begin｜>");
  root.push_back(Grammar::RuleElement(call));
  if (parallel) {
    // How the templates separate calls.
    Sequence more = format == "hermes" ? grammar.Literal("\n") : format == "llama3_json" ? grammar.Literal("; ")
                                                                                       : Sequence();
    more.push_back(Grammar::RuleElement(call));
    root.push_back(Grammar::RuleElement(grammar.Star(more, "more-calls")));
  }
  if (format == "deepseek_v3") {
    const Sequence end = grammar.Literal("<｜tool▁calls▁end｜>");
    root.insert(root.end(), end.begin(), end.end());
  }
  grammar.AddAlternative(0, std::move(root));
  absl::Status finalized = grammar.Finalize();
  if (!finalized.ok()) return finalized;
  return grammar;
}

}  // namespace duet::grammar
