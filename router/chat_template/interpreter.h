// Renders a parsed template: statements, scopes, loops, macros, output
// capture, and the resource limits. One Interpreter serves one render and is
// not thread-safe; the syntax tree it walks is shared and read-only.
#ifndef DUET_ROUTER_CHAT_TEMPLATE_INTERPRETER_H_
#define DUET_ROUTER_CHAT_TEMPLATE_INTERPRETER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "router/chat_template/ast.h"
#include "router/chat_template/render_limits.h"
#include "router/chat_template/value.h"

namespace duet::chat_template {

class Interpreter {
 public:
  // `now` is what strftime_now() formats (local time zone).
  Interpreter(const RenderLimits& limits, absl::Time now);

  // Renders `body` with the variables of `context` (a dict with string keys).
  absl::StatusOr<std::string> Render(const Body& body, const Value& context);

  const RenderLimits& limits() const { return limits_; }
  absl::Time now() const { return now_; }
  // Charges `count` loop iterations (also used by filters that expand data,
  // like range()); ResourceExhausted past limits().max_loop_iterations.
  absl::Status ChargeIterations(int64_t count);

 private:
  struct Scope {
    absl::flat_hash_map<std::string, Value> variables;
    std::shared_ptr<Scope> parent;
  };
  using ScopePtr = std::shared_ptr<Scope>;
  enum class Flow { kNormal, kBreak, kContinue };

  // Guards recursion (nested statements, expressions and macro calls).
  class DepthGuard;

  absl::StatusOr<Flow> ExecuteBody(const Body& body, const ScopePtr& scope);
  absl::StatusOr<Flow> Execute(const Stmt& statement, const ScopePtr& scope);
  absl::StatusOr<Flow> ExecuteFor(const ForStmt& statement, const ScopePtr& scope);
  absl::Status ExecuteSet(const SetTarget& target, Value value, const ScopePtr& scope, int line);
  absl::Status DefineMacro(const MacroStmt& statement, const ScopePtr& scope);
  absl::StatusOr<Value> CallMacro(const MacroStmt& macro, const std::weak_ptr<Scope>& closure, const CallArgs& args);
  // Renders `body` into a string instead of the current output.
  absl::StatusOr<std::string> Capture(const Body& body, const ScopePtr& scope);
  // Same, in a new scope under `scope` (block set and filter block bodies:
  // their assignments stay inside).
  absl::StatusOr<std::string> CaptureInChildScope(const Body& body, const ScopePtr& scope);

  absl::StatusOr<Value> Evaluate(const Expr& expr, const ScopePtr& scope);
  absl::StatusOr<Value> EvaluateUncounted(const Expr& expr, const ScopePtr& scope);
  absl::StatusOr<CallArgs> EvaluateArgs(const Arguments& args, const ScopePtr& scope);
  // Applies a filter chain whose innermost operand is null to `input`.
  absl::StatusOr<Value> ApplyFilterChain(const Expr& chain, Value input, const ScopePtr& scope);

  Value Lookup(const std::string& name, const ScopePtr& scope) const;
  absl::Status Emit(std::string_view text);

  const RenderLimits limits_;
  const absl::Time now_;
  std::string* output_ = nullptr;
  int depth_ = 0;
  int64_t num_iterations_ = 0;
  // Bytes already written to enclosing outputs while a capture is active.
  int64_t captured_prefix_bytes_ = 0;
};

}  // namespace duet::chat_template

#endif  // DUET_ROUTER_CHAT_TEMPLATE_INTERPRETER_H_
