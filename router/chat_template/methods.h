// Python methods templates call on data: str (startswith, split, strip,
// replace, ...), dict (items, keys, values, get) and list (index, count).
// Mutating methods (list.append, dict.update, ...) resolve to an Undefined
// that fails when called, as in jinja2's ImmutableSandboxedEnvironment.
#ifndef DUET_ROUTER_CHAT_TEMPLATE_METHODS_H_
#define DUET_ROUTER_CHAT_TEMPLATE_METHODS_H_

#include <optional>
#include <string_view>

#include "router/chat_template/value.h"

namespace duet::chat_template {

// The bound method `receiver.name`, or nullopt when the receiver's type has
// no such method.
std::optional<Value> LookupMethod(const Value& receiver, std::string_view name);

}  // namespace duet::chat_template

#endif  // DUET_ROUTER_CHAT_TEMPLATE_METHODS_H_
