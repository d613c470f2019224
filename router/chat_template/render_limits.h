// Bounds on what one template may cost: exceeding one fails the parse or
// render with absl::ResourceExhausted instead of using unbounded time,
// memory or stack.
#ifndef DUET_ROUTER_CHAT_TEMPLATE_RENDER_LIMITS_H_
#define DUET_ROUTER_CHAT_TEMPLATE_RENDER_LIMITS_H_

#include <cstdint>

namespace duet::chat_template {

struct RenderLimits {
  // Loop iterations across the whole render (for-loop bodies, range() items).
  // Real templates do a few per message.
  int64_t max_loop_iterations = 1'000'000;
  // Nested evaluation frames: statements, expressions and macro calls
  // together; bounds stack use (about 1 KiB per frame).
  int max_recursion_depth = 512;
  // Bytes of rendered text, and of any single string or list a template
  // builds. 16 MiB is far beyond any context window's prompt.
  int64_t max_output_bytes = int64_t{16} << 20;
  // Block nesting and expression tree height accepted by the parser.
  int max_parse_nesting = 128;
};

}  // namespace duet::chat_template

#endif  // DUET_ROUTER_CHAT_TEMPLATE_RENDER_LIMITS_H_
