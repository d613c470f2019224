// Global functions templates may call: range, namespace, dict, and the two
// transformers adds: raise_exception(message) and strftime_now(format).
#ifndef DUET_ROUTER_CHAT_TEMPLATE_BUILTINS_H_
#define DUET_ROUTER_CHAT_TEMPLATE_BUILTINS_H_

#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "router/chat_template/value.h"

namespace duet::chat_template {

// The global named `name`, or nullopt.
std::optional<Value> LookupGlobal(std::string_view name);

// True for the InvalidArgument status raise_exception() returns: its message
// is exactly the template's, to be passed to the client unchanged.
bool IsRaisedByTemplate(const absl::Status& status);

}  // namespace duet::chat_template

#endif  // DUET_ROUTER_CHAT_TEMPLATE_BUILTINS_H_
