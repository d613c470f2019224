// Builds the syntax tree from lexer tokens with jinja2's grammar and operator
// precedence (filters and tests bind tighter than arithmetic; `~` between
// + and *; chained comparisons; `x if c else y`).
#ifndef DUET_ROUTER_CHAT_TEMPLATE_PARSER_H_
#define DUET_ROUTER_CHAT_TEMPLATE_PARSER_H_

#include <vector>

#include "absl/status/statusor.h"
#include "router/chat_template/ast.h"
#include "router/chat_template/lexer.h"

namespace duet::chat_template {

// `max_nesting` bounds both block nesting and expression tree height, so the
// tree can be walked recursively without exhausting the stack. Syntax errors
// and exceeding the bound return InvalidArgument / ResourceExhausted naming
// the line.
absl::StatusOr<Body> ParseTokens(const std::vector<Token>& tokens, int max_nesting);

}  // namespace duet::chat_template

#endif  // DUET_ROUTER_CHAT_TEMPLATE_PARSER_H_
