// Splits template source into tokens the way jinja2's lexer does, including
// its whitespace rules: `{%- -%}` style stripping, trim_blocks (drop the first
// newline after a block or comment tag), lstrip_blocks (drop spaces/tabs
// before a block or comment tag that starts a line), `+` to opt out, raw
// blocks, newline normalization and the dropped trailing newline.
#ifndef DUET_ROUTER_CHAT_TEMPLATE_LEXER_H_
#define DUET_ROUTER_CHAT_TEMPLATE_LEXER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace duet::chat_template {

enum class TokenType {
  kText,           // literal template text (text = the bytes to output)
  kVariableBegin,  // {{
  kVariableEnd,    // }}
  kBlockBegin,     // {%
  kBlockEnd,       // %}
  kName,           // identifier or keyword (text)
  kString,         // string literal (text = unescaped value)
  kInteger,        // int_value
  kFloat,          // float_value
  kOperator,       // text: "+", "//", "==", "(", ...
  kEnd,            // end of source
};

struct Token {
  TokenType type;
  std::string text;
  int64_t int_value = 0;
  double float_value = 0.0;
  int line = 1;  // 1-based source line, for error messages
};

struct LexerOptions {
  // transformers renders with both on.
  bool trim_blocks = true;
  bool lstrip_blocks = true;
};

// Syntax errors (unterminated tags/strings, unknown characters) come back as
// InvalidArgument naming the line. The token list always ends with kEnd.
absl::StatusOr<std::vector<Token>> Tokenize(std::string_view source, const LexerOptions& options);

}  // namespace duet::chat_template

#endif  // DUET_ROUTER_CHAT_TEMPLATE_LEXER_H_
