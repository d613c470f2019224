// A chat template (the Jinja source in a model's tokenizer_config.json or
// chat_template.jinja), parsed once and rendered per request the way
// transformers' apply_chat_template renders it with jinja2:
// ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
// extensions=[loopcontrols]), its own `tojson`, and the globals
// raise_exception and strftime_now.
//
// Sandboxed: a template sees only the context it is given and the methods of
// plain data; no files, environment or host attributes. Bounded: see
// RenderLimits. Any template error, including raise_exception(), comes back
// as a Status; no input crashes the process.
//
// Thread-safety: a ChatTemplate is immutable after Parse; Render may run
// concurrently from any number of threads. Copies share the parsed tree.
#ifndef DUET_ROUTER_CHAT_TEMPLATE_CHAT_TEMPLATE_H_
#define DUET_ROUTER_CHAT_TEMPLATE_CHAT_TEMPLATE_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "router/chat_template/ast.h"
#include "router/chat_template/render_limits.h"
#include "router/chat_template/value.h"

namespace duet::chat_template {

class ChatTemplate {
 public:
  // Syntax errors: InvalidArgument naming the line. Nesting beyond
  // limits.max_parse_nesting: ResourceExhausted.
  static absl::StatusOr<ChatTemplate> Parse(std::string_view source, const RenderLimits& limits = {});

  // `context` must be a JSON object; its members become template variables
  // (messages, tools, add_generation_prompt, bos_token, ...; see
  // chat_context.h). Errors:
  //  - raise_exception(msg): InvalidArgument whose message is exactly msg
  //    (IsRaisedByTemplate() tells it apart);
  //  - other template errors: InvalidArgument "chat template error at line N: ...";
  //  - a limit exceeded: ResourceExhausted.
  absl::StatusOr<std::string> Render(const nlohmann::ordered_json& context, const RenderLimits& limits = {},
                                     absl::Time now = absl::Now()) const;
  absl::StatusOr<std::string> Render(const Value& context, const RenderLimits& limits = {},
                                     absl::Time now = absl::Now()) const;

 private:
  explicit ChatTemplate(std::shared_ptr<const Body> body) : body_(std::move(body)) {}
  std::shared_ptr<const Body> body_;
};

}  // namespace duet::chat_template

#endif  // DUET_ROUTER_CHAT_TEMPLATE_CHAT_TEMPLATE_H_
