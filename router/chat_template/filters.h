// jinja2's filters (`value | name(args)`) and tests (`value is name(args)`)
// that chat templates use, with jinja2's semantics, plus transformers'
// `tojson` (json.dumps with ensure_ascii=False, indent, separators,
// sort_keys).
#ifndef DUET_ROUTER_CHAT_TEMPLATE_FILTERS_H_
#define DUET_ROUTER_CHAT_TEMPLATE_FILTERS_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "router/chat_template/interpreter.h"
#include "router/chat_template/value.h"

namespace duet::chat_template {

// Unknown names and bad arguments fail with InvalidArgument.
absl::StatusOr<Value> ApplyFilter(Interpreter& interpreter, std::string_view name, const Value& operand,
                                  const CallArgs& args);
absl::StatusOr<bool> ApplyTest(Interpreter& interpreter, std::string_view name, const Value& operand,
                               const CallArgs& args);

}  // namespace duet::chat_template

#endif  // DUET_ROUTER_CHAT_TEMPLATE_FILTERS_H_
