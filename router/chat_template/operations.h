// Python/jinja2 semantics of the operators and accesses templates use:
// arithmetic (int vs float, floor division and modulo signs), `~`, ordering
// comparisons, `in`, attribute and item access, slicing, iteration. Errors
// (a Python TypeError, an Undefined used where jinja2 raises) come back as
// InvalidArgument without a line; the interpreter adds it.
#ifndef DUET_ROUTER_CHAT_TEMPLATE_OPERATIONS_H_
#define DUET_ROUTER_CHAT_TEMPLATE_OPERATIONS_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "router/chat_template/value.h"

namespace duet::chat_template {

// The error jinja2 raises when an Undefined is used: its hint, e.g.
// "'x' is undefined".
absl::Status UndefinedError(const Value& undefined);

// op: "+", "-", "*", "/", "//", "%", "**". Results longer than
// max_result_bytes (string/list repetition, concatenation) fail with
// ResourceExhausted.
absl::StatusOr<Value> BinaryOperation(std::string_view op, const Value& left, const Value& right,
                                      int64_t max_result_bytes);
absl::StatusOr<Value> Negate(const Value& operand, bool minus);

// op: "==", "!=", "<", "<=", ">", ">=", "in", "notin".
absl::StatusOr<bool> Compare(std::string_view op, const Value& left, const Value& right);
absl::StatusOr<bool> Contains(const Value& container, const Value& item);

// obj.name: methods of str/dict/list first (as Python attributes), then dict
// keys / object attributes; a miss gives Undefined with jinja2's hint.
absl::StatusOr<Value> GetAttribute(const Value& object, std::string_view name);
// obj[key]: dict keys, list/str indices (negative from the end), then
// attributes for string keys.
absl::StatusOr<Value> GetItem(const Value& object, const Value& key);
// obj[start:stop:step] on str, list and tuple; absent bounds are None.
absl::StatusOr<Value> GetSlice(const Value& object, const Value& start, const Value& stop, const Value& step);

// What `for x in value` visits: list items, dict keys, string characters;
// Undefined is empty.
absl::StatusOr<std::vector<Value>> Iterate(const Value& value);
// len(value).
absl::StatusOr<int64_t> Length(const Value& value);

}  // namespace duet::chat_template

#endif  // DUET_ROUTER_CHAT_TEMPLATE_OPERATIONS_H_
