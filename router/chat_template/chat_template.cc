#include "router/chat_template/chat_template.h"

#include <utility>

#include "absl/status/status.h"
#include "router/chat_template/interpreter.h"
#include "router/chat_template/lexer.h"
#include "router/chat_template/parser.h"
#include "common/status_macros.h"

namespace duet::chat_template {

absl::StatusOr<ChatTemplate> ChatTemplate::Parse(std::string_view source, const RenderLimits& limits) {
  DUET_ASSIGN_OR_RETURN(std::vector<Token> tokens, Tokenize(source, LexerOptions{}));
  DUET_ASSIGN_OR_RETURN(Body body, ParseTokens(tokens, limits.max_parse_nesting));
  return ChatTemplate(std::make_shared<const Body>(std::move(body)));
}

absl::StatusOr<std::string> ChatTemplate::Render(const nlohmann::ordered_json& context, const RenderLimits& limits,
                                                 absl::Time now) const {
  if (!context.is_object()) {
    return absl::InvalidArgumentError("chat template context must be a JSON object");
  }
  DUET_ASSIGN_OR_RETURN(Value value, Value::FromJson(context, "context"));
  return Render(value, limits, now);
}

absl::StatusOr<std::string> ChatTemplate::Render(const Value& context, const RenderLimits& limits,
                                                 absl::Time now) const {
  if (!context.is_dict()) return absl::InvalidArgumentError("chat template context must be a dict");
  Interpreter interpreter(limits, now);
  return interpreter.Render(*body_, context);
}

}  // namespace duet::chat_template
