#include "router/chat_template/interpreter.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "common/str_cat.h"
#include "router/chat_template/builtins.h"
#include "router/chat_template/filters.h"
#include "router/chat_template/operations.h"
#include "router/chat_template/py_format.h"
#include "common/status_macros.h"

namespace duet::chat_template {
namespace {

constexpr absl::string_view kErrorPrefix = "chat template error";

// Adds the template line to errors raised by an operation, once.
absl::Status AtLine(absl::Status status, int line) {
  if (status.ok() || IsRaisedByTemplate(status) || absl::StartsWith(status.message(), kErrorPrefix) ||
      absl::StartsWith(status.message(), "chat template syntax error")) {
    return status;
  }
  absl::Status annotated(status.code(), StrCat(kErrorPrefix, " at line ", line, ": ", status.message()));
  return annotated;
}

template <typename T>
absl::StatusOr<T> AtLine(absl::StatusOr<T> result, int line) {
  if (result.ok()) return result;
  return AtLine(std::move(result).status(), line);
}

}  // namespace

class Interpreter::DepthGuard {
 public:
  explicit DepthGuard(Interpreter* interpreter) : interpreter_(interpreter) { ++interpreter_->depth_; }
  ~DepthGuard() { --interpreter_->depth_; }
  absl::Status Check(int line) const {
    if (interpreter_->depth_ > interpreter_->limits_.max_recursion_depth) {
      return absl::ResourceExhaustedError(StrCat(kErrorPrefix, " at line ", line,
                                                       ": recursion deeper than the limit of ",
                                                       interpreter_->limits_.max_recursion_depth));
    }
    return absl::OkStatus();
  }

 private:
  Interpreter* interpreter_;
};

Interpreter::Interpreter(const RenderLimits& limits, absl::Time now) : limits_(limits), now_(now) {}

absl::StatusOr<std::string> Interpreter::Render(const Body& body, const Value& context) {
  auto root = std::make_shared<Scope>();
  if (context.is_dict()) {
    for (const auto& [key, value] : context.AsDict().entries) {
      if (key.is_string()) root->variables[key.AsString()] = value;
    }
  }
  std::string output;
  output_ = &output;
  absl::StatusOr<Flow> flow = ExecuteBody(body, root);
  output_ = nullptr;
  // Macros capture their scope weakly; dropping the root ends them all.
  if (!flow.ok()) return flow.status();
  return output;
}

absl::Status Interpreter::ChargeIterations(int64_t count) {
  num_iterations_ += count;
  if (num_iterations_ > limits_.max_loop_iterations) {
    return absl::ResourceExhaustedError(StrCat(kErrorPrefix, ": more than ", limits_.max_loop_iterations,
                                                     " loop iterations"));
  }
  return absl::OkStatus();
}

absl::Status Interpreter::Emit(std::string_view text) {
  if (captured_prefix_bytes_ + static_cast<int64_t>(output_->size() + text.size()) > limits_.max_output_bytes) {
    return absl::ResourceExhaustedError(
        StrCat(kErrorPrefix, ": output exceeds the limit of ", limits_.max_output_bytes, " bytes"));
  }
  output_->append(text);
  return absl::OkStatus();
}

absl::StatusOr<std::string> Interpreter::CaptureInChildScope(const Body& body, const ScopePtr& scope) {
  auto child = std::make_shared<Scope>();
  child->parent = scope;
  return Capture(body, child);
}

absl::StatusOr<std::string> Interpreter::Capture(const Body& body, const ScopePtr& scope) {
  std::string captured;
  std::string* saved = output_;
  const int64_t saved_prefix = captured_prefix_bytes_;
  captured_prefix_bytes_ += static_cast<int64_t>(saved->size());
  output_ = &captured;
  absl::StatusOr<Flow> flow = ExecuteBody(body, scope);
  output_ = saved;
  captured_prefix_bytes_ = saved_prefix;
  if (!flow.ok()) return flow.status();
  return captured;
}

Value Interpreter::Lookup(const std::string& name, const ScopePtr& scope) const {
  for (const Scope* s = scope.get(); s != nullptr; s = s->parent.get()) {
    auto it = s->variables.find(name);
    if (it != s->variables.end()) return it->second;
  }
  if (std::optional<Value> global = LookupGlobal(name)) return *std::move(global);
  return Value::Undefined(StrCat("'", name, "' is undefined"));
}

absl::StatusOr<Interpreter::Flow> Interpreter::ExecuteBody(const Body& body, const ScopePtr& scope) {
  for (const StmtPtr& statement : body) {
    DUET_ASSIGN_OR_RETURN(Flow flow, Execute(*statement, scope));
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

absl::StatusOr<Interpreter::Flow> Interpreter::Execute(const Stmt& statement, const ScopePtr& scope) {
  DepthGuard guard(this);
  DUET_RETURN_IF_ERROR(guard.Check(statement.line));
  switch (statement.kind) {
    case StmtKind::kText:
      DUET_RETURN_IF_ERROR(Emit(static_cast<const TextStmt&>(statement).text));
      return Flow::kNormal;
    case StmtKind::kOutput: {
      DUET_ASSIGN_OR_RETURN(Value value, Evaluate(*static_cast<const OutputStmt&>(statement).value, scope));
      DUET_RETURN_IF_ERROR(Emit(ToPyStr(value)));
      return Flow::kNormal;
    }
    case StmtKind::kIf: {
      const auto& if_statement = static_cast<const IfStmt&>(statement);
      for (const auto& [condition, body] : if_statement.branches) {
        DUET_ASSIGN_OR_RETURN(Value test, Evaluate(*condition, scope));
        if (test.Truthy()) return ExecuteBody(body, scope);
      }
      return ExecuteBody(if_statement.else_body, scope);
    }
    case StmtKind::kFor:
      return ExecuteFor(static_cast<const ForStmt&>(statement), scope);
    case StmtKind::kSet: {
      const auto& set = static_cast<const SetStmt&>(statement);
      DUET_ASSIGN_OR_RETURN(Value value, Evaluate(*set.value, scope));
      DUET_RETURN_IF_ERROR(ExecuteSet(set.target, std::move(value), scope, set.line));
      return Flow::kNormal;
    }
    case StmtKind::kSetBlock: {
      const auto& set = static_cast<const SetBlockStmt&>(statement);
      DUET_ASSIGN_OR_RETURN(std::string captured, CaptureInChildScope(set.body, scope));
      Value value = Value::String(std::move(captured));
      if (set.filter != nullptr) {
        DUET_ASSIGN_OR_RETURN(value, ApplyFilterChain(*set.filter, std::move(value), scope));
      }
      DUET_RETURN_IF_ERROR(ExecuteSet(set.target, std::move(value), scope, set.line));
      return Flow::kNormal;
    }
    case StmtKind::kFilterBlock: {
      const auto& block = static_cast<const FilterBlockStmt&>(statement);
      if (block.filter == nullptr) return ExecuteBody(block.body, scope);
      DUET_ASSIGN_OR_RETURN(std::string captured, CaptureInChildScope(block.body, scope));
      DUET_ASSIGN_OR_RETURN(Value value, ApplyFilterChain(*block.filter, Value::String(std::move(captured)), scope));
      DUET_RETURN_IF_ERROR(Emit(ToPyStr(value)));
      return Flow::kNormal;
    }
    case StmtKind::kMacro:
      DUET_RETURN_IF_ERROR(DefineMacro(static_cast<const MacroStmt&>(statement), scope));
      return Flow::kNormal;
    case StmtKind::kBreak:
      return Flow::kBreak;
    case StmtKind::kContinue:
      return Flow::kContinue;
  }
  return Flow::kNormal;
}

absl::Status Interpreter::ExecuteSet(const SetTarget& target, Value value, const ScopePtr& scope, int line) {
  if (!target.attribute.empty()) {
    Value object = Lookup(target.names[0], scope);
    if (!object.is_namespace()) {
      return absl::InvalidArgumentError(StrCat(kErrorPrefix, " at line ", line,
                                                     ": cannot assign attribute on non-namespace object '",
                                                     target.names[0], "'"));
    }
    return AtLine(object.AsObject().Set(target.attribute, std::move(value)), line);
  }
  if (target.names.size() == 1) {
    scope->variables[target.names[0]] = std::move(value);
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<Value>> items = Iterate(value);
  if (!items.ok()) return AtLine(items.status(), line);
  if (items->size() != target.names.size()) {
    return absl::InvalidArgumentError(StrCat(kErrorPrefix, " at line ", line, ": expected ",
                                                   target.names.size(), " values to unpack, got ", items->size()));
  }
  for (size_t i = 0; i < items->size(); ++i) scope->variables[target.names[i]] = (*items)[i];
  return absl::OkStatus();
}

absl::StatusOr<Interpreter::Flow> Interpreter::ExecuteFor(const ForStmt& statement, const ScopePtr& scope) {
  DUET_ASSIGN_OR_RETURN(Value iterable, Evaluate(*statement.iterable, scope));
  DUET_ASSIGN_OR_RETURN(std::vector<Value> all_items, AtLine(Iterate(iterable), statement.line));
  const auto bind_targets = [&](const Value& item, Scope* iteration_scope) -> absl::Status {
    if (statement.targets.size() == 1) {
      iteration_scope->variables[statement.targets[0]] = item;
      return absl::OkStatus();
    }
    absl::StatusOr<std::vector<Value>> parts = Iterate(item);
    if (!parts.ok()) return AtLine(parts.status(), statement.line);
    if (parts->size() != statement.targets.size()) {
      return absl::InvalidArgumentError(StrCat(kErrorPrefix, " at line ", statement.line, ": expected ",
                                                     statement.targets.size(), " values to unpack, got ",
                                                     parts->size()));
    }
    for (size_t i = 0; i < parts->size(); ++i) iteration_scope->variables[statement.targets[i]] = (*parts)[i];
    return absl::OkStatus();
  };

  // The `if` filter runs before the loop, so loop.length counts kept items.
  std::vector<Value> items;
  if (statement.filter != nullptr) {
    for (const Value& item : all_items) {
      DUET_RETURN_IF_ERROR(ChargeIterations(1));
      auto filter_scope = std::make_shared<Scope>();
      filter_scope->parent = scope;
      DUET_RETURN_IF_ERROR(bind_targets(item, filter_scope.get()));
      DUET_ASSIGN_OR_RETURN(Value keep, Evaluate(*statement.filter, filter_scope));
      if (keep.Truthy()) items.push_back(item);
    }
  } else {
    items = std::move(all_items);
  }

  // jinja2 runs the else block unless some iteration reached the end of the
  // body: a loop left only through break/continue runs it too.
  bool any_iteration_completed = false;
  const int64_t length = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < length; ++i) {
    DUET_RETURN_IF_ERROR(ChargeIterations(1));
    // Each iteration gets a fresh scope: a `set` in the body never outlives
    // its iteration (jinja2 scoping; templates use namespace() to carry state).
    auto iteration_scope = std::make_shared<Scope>();
    iteration_scope->parent = scope;
    DUET_RETURN_IF_ERROR(bind_targets(items[i], iteration_scope.get()));
    Value loop = Value::MakeObject("LoopContext", /*is_namespace=*/false);
    Object& attributes = loop.AsObject();
    DUET_RETURN_IF_ERROR(attributes.Set("index0", Value::Int(i)));
    DUET_RETURN_IF_ERROR(attributes.Set("index", Value::Int(i + 1)));
    DUET_RETURN_IF_ERROR(attributes.Set("revindex0", Value::Int(length - i - 1)));
    DUET_RETURN_IF_ERROR(attributes.Set("revindex", Value::Int(length - i)));
    DUET_RETURN_IF_ERROR(attributes.Set("first", Value::Bool(i == 0)));
    DUET_RETURN_IF_ERROR(attributes.Set("last", Value::Bool(i == length - 1)));
    DUET_RETURN_IF_ERROR(attributes.Set("length", Value::Int(length)));
    DUET_RETURN_IF_ERROR(attributes.Set("depth", Value::Int(1)));
    DUET_RETURN_IF_ERROR(attributes.Set("depth0", Value::Int(0)));
    DUET_RETURN_IF_ERROR(attributes.Set(
        "previtem", i > 0 ? items[i - 1] : Value::Undefined("there is no previous item")));
    DUET_RETURN_IF_ERROR(attributes.Set(
        "nextitem", i + 1 < length ? items[i + 1] : Value::Undefined("there is no next item")));
    DUET_RETURN_IF_ERROR(attributes.Set(
        "cycle", Value::MakeCallable("cycle", [i](Interpreter&, const CallArgs& args) -> absl::StatusOr<Value> {
          if (args.positional.empty()) return absl::InvalidArgumentError("no items for cycling given");
          return args.positional[static_cast<size_t>(i) % args.positional.size()];
        })));
    iteration_scope->variables["loop"] = std::move(loop);
    DUET_ASSIGN_OR_RETURN(Flow flow, ExecuteBody(statement.body, iteration_scope));
    if (flow == Flow::kBreak) break;
    if (flow == Flow::kNormal) any_iteration_completed = true;
  }
  if (!any_iteration_completed && !statement.else_body.empty()) {
    auto else_scope = std::make_shared<Scope>();
    else_scope->parent = scope;
    DUET_RETURN_IF_ERROR(ExecuteBody(statement.else_body, else_scope).status());
  }
  return Flow::kNormal;
}

absl::Status Interpreter::DefineMacro(const MacroStmt& statement, const ScopePtr& scope) {
  std::weak_ptr<Scope> closure = scope;
  const MacroStmt* macro = &statement;
  scope->variables[statement.name] =
      Value::MakeCallable(statement.name, [macro, closure](Interpreter& interpreter, const CallArgs& args) {
        return interpreter.CallMacro(*macro, closure, args);
      });
  return absl::OkStatus();
}

absl::StatusOr<Value> Interpreter::CallMacro(const MacroStmt& macro, const std::weak_ptr<Scope>& closure,
                                             const CallArgs& args) {
  DepthGuard guard(this);
  DUET_RETURN_IF_ERROR(guard.Check(macro.line));
  ScopePtr parent = closure.lock();
  if (parent == nullptr) {
    return absl::InvalidArgumentError(
        StrCat(kErrorPrefix, ": macro '", macro.name, "' called after its defining scope ended"));
  }
  auto scope = std::make_shared<Scope>();
  scope->parent = std::move(parent);
  if (args.positional.size() > macro.params.size()) {
    return absl::InvalidArgumentError(StrCat("macro '", macro.name, "' takes not more than ",
                                                   macro.params.size(), " argument(s)"));
  }
  std::vector<bool> given(macro.params.size(), false);
  for (size_t i = 0; i < args.positional.size(); ++i) {
    scope->variables[macro.params[i].first] = args.positional[i];
    given[i] = true;
  }
  for (const auto& [name, value] : args.keyword) {
    size_t index = 0;
    while (index < macro.params.size() && macro.params[index].first != name) ++index;
    if (index == macro.params.size()) {
      return absl::InvalidArgumentError(
          StrCat("macro '", macro.name, "' takes no keyword argument '", name, "'"));
    }
    if (given[index]) {
      return absl::InvalidArgumentError(
          StrCat("macro '", macro.name, "' got multiple values for argument '", name, "'"));
    }
    scope->variables[name] = value;
    given[index] = true;
  }
  for (size_t i = 0; i < macro.params.size(); ++i) {
    if (given[i]) continue;
    const auto& [name, default_value] = macro.params[i];
    if (default_value != nullptr) {
      DUET_ASSIGN_OR_RETURN(Value value, Evaluate(*default_value, scope));
      scope->variables[name] = std::move(value);
    } else {
      scope->variables[name] =
          Value::Undefined(StrCat("parameter '", name, "' was not provided"));
    }
  }
  DUET_ASSIGN_OR_RETURN(std::string text, Capture(macro.body, scope));
  return Value::String(std::move(text));
}

absl::StatusOr<CallArgs> Interpreter::EvaluateArgs(const Arguments& args, const ScopePtr& scope) {
  CallArgs values;
  for (const ExprPtr& arg : args.positional) {
    DUET_ASSIGN_OR_RETURN(Value value, Evaluate(*arg, scope));
    values.positional.push_back(std::move(value));
  }
  for (const auto& [name, arg] : args.keyword) {
    DUET_ASSIGN_OR_RETURN(Value value, Evaluate(*arg, scope));
    values.keyword.emplace_back(name, std::move(value));
  }
  return values;
}

absl::StatusOr<Value> Interpreter::ApplyFilterChain(const Expr& chain, Value input, const ScopePtr& scope) {
  const auto& filter = static_cast<const FilterExpr&>(chain);
  Value operand = std::move(input);
  if (filter.operand != nullptr) {
    DUET_ASSIGN_OR_RETURN(operand, ApplyFilterChain(*filter.operand, std::move(operand), scope));
  }
  DUET_ASSIGN_OR_RETURN(CallArgs args, EvaluateArgs(filter.args, scope));
  return AtLine(ApplyFilter(*this, filter.name, operand, args), filter.line);
}

absl::StatusOr<Value> Interpreter::Evaluate(const Expr& expr, const ScopePtr& scope) {
  DepthGuard guard(this);
  DUET_RETURN_IF_ERROR(guard.Check(expr.line));
  return EvaluateUncounted(expr, scope);
}

absl::StatusOr<Value> Interpreter::EvaluateUncounted(const Expr& expr, const ScopePtr& scope) {
  const int line = expr.line;
  switch (expr.kind) {
    case ExprKind::kLiteral:
      return static_cast<const LiteralExpr&>(expr).value;
    case ExprKind::kName:
      return Lookup(static_cast<const NameExpr&>(expr).name, scope);
    case ExprKind::kList:
    case ExprKind::kTuple: {
      std::vector<Value> items;
      for (const ExprPtr& item : static_cast<const SequenceExpr&>(expr).items) {
        DUET_ASSIGN_OR_RETURN(Value value, Evaluate(*item, scope));
        items.push_back(std::move(value));
      }
      return AtLine(Value::MakeList(std::move(items), expr.kind == ExprKind::kTuple), line);
    }
    case ExprKind::kDict: {
      std::vector<std::pair<Value, Value>> entries;
      for (const auto& [key_expr, value_expr] : static_cast<const DictExpr&>(expr).entries) {
        DUET_ASSIGN_OR_RETURN(Value key, Evaluate(*key_expr, scope));
        DUET_ASSIGN_OR_RETURN(Value value, Evaluate(*value_expr, scope));
        entries.emplace_back(std::move(key), std::move(value));
      }
      return AtLine(Value::MakeDict(std::move(entries)), line);
    }
    case ExprKind::kGetAttr: {
      const auto& get = static_cast<const GetAttrExpr&>(expr);
      DUET_ASSIGN_OR_RETURN(Value object, Evaluate(*get.object, scope));
      return AtLine(GetAttribute(object, get.name), line);
    }
    case ExprKind::kGetItem: {
      const auto& get = static_cast<const GetItemExpr&>(expr);
      DUET_ASSIGN_OR_RETURN(Value object, Evaluate(*get.object, scope));
      DUET_ASSIGN_OR_RETURN(Value index, Evaluate(*get.index, scope));
      return AtLine(GetItem(object, index), line);
    }
    case ExprKind::kSlice: {
      const auto& slice = static_cast<const SliceExpr&>(expr);
      DUET_ASSIGN_OR_RETURN(Value object, Evaluate(*slice.object, scope));
      Value bounds[3] = {Value::None(), Value::None(), Value::None()};
      const Expr* parts[3] = {slice.start.get(), slice.stop.get(), slice.step.get()};
      for (int i = 0; i < 3; ++i) {
        if (parts[i] != nullptr) {
          DUET_ASSIGN_OR_RETURN(bounds[i], Evaluate(*parts[i], scope));
        }
      }
      return AtLine(GetSlice(object, bounds[0], bounds[1], bounds[2]), line);
    }
    case ExprKind::kCall: {
      const auto& call = static_cast<const CallExpr&>(expr);
      DUET_ASSIGN_OR_RETURN(Value callee, Evaluate(*call.callee, scope));
      DUET_ASSIGN_OR_RETURN(CallArgs args, EvaluateArgs(call.args, scope));
      if (callee.is_undefined()) return AtLine(UndefinedError(callee), line);
      if (!callee.is_callable()) {
        return AtLine(absl::InvalidArgumentError(StrCat("'", callee.TypeName(), "' object is not callable")),
                      line);
      }
      return AtLine(callee.AsCallable().function(*this, args), line);
    }
    case ExprKind::kFilter: {
      const auto& filter = static_cast<const FilterExpr&>(expr);
      DUET_ASSIGN_OR_RETURN(Value operand, Evaluate(*filter.operand, scope));
      DUET_ASSIGN_OR_RETURN(CallArgs args, EvaluateArgs(filter.args, scope));
      return AtLine(ApplyFilter(*this, filter.name, operand, args), line);
    }
    case ExprKind::kTest: {
      const auto& test = static_cast<const FilterExpr&>(expr);
      DUET_ASSIGN_OR_RETURN(Value operand, Evaluate(*test.operand, scope));
      DUET_ASSIGN_OR_RETURN(CallArgs args, EvaluateArgs(test.args, scope));
      DUET_ASSIGN_OR_RETURN(bool result, AtLine(ApplyTest(*this, test.name, operand, args), line));
      return Value::Bool(result != test.negated);
    }
    case ExprKind::kUnary: {
      const auto& unary = static_cast<const UnaryExpr&>(expr);
      DUET_ASSIGN_OR_RETURN(Value operand, Evaluate(*unary.operand, scope));
      if (unary.op == "not") return Value::Bool(!operand.Truthy());
      return AtLine(Negate(operand, unary.op == "-"), line);
    }
    case ExprKind::kBinary: {
      const auto& binary = static_cast<const BinaryExpr&>(expr);
      DUET_ASSIGN_OR_RETURN(Value left, Evaluate(*binary.left, scope));
      // `and`/`or` short-circuit and yield an operand, as in Python.
      if (binary.op == "and") {
        if (!left.Truthy()) return left;
        return Evaluate(*binary.right, scope);
      }
      if (binary.op == "or") {
        if (left.Truthy()) return left;
        return Evaluate(*binary.right, scope);
      }
      DUET_ASSIGN_OR_RETURN(Value right, Evaluate(*binary.right, scope));
      if (binary.op == "~") {
        std::string text = ToPyStr(left);
        std::string more = ToPyStr(right);
        if (static_cast<int64_t>(text.size() + more.size()) > limits_.max_output_bytes) {
          return absl::ResourceExhaustedError(StrCat(kErrorPrefix, " at line ", line,
                                                           ": value exceeds the output limit of ",
                                                           limits_.max_output_bytes, " bytes"));
        }
        return Value::String(text + more);
      }
      return AtLine(BinaryOperation(binary.op, left, right, limits_.max_output_bytes), line);
    }
    case ExprKind::kCompare: {
      const auto& compare = static_cast<const CompareExpr&>(expr);
      DUET_ASSIGN_OR_RETURN(Value left, Evaluate(*compare.first, scope));
      for (const auto& [op, operand] : compare.rest) {
        DUET_ASSIGN_OR_RETURN(Value right, Evaluate(*operand, scope));
        DUET_ASSIGN_OR_RETURN(bool holds, AtLine(Compare(op, left, right), line));
        if (!holds) return Value::Bool(false);
        left = std::move(right);
      }
      return Value::Bool(true);
    }
    case ExprKind::kConditional: {
      const auto& conditional = static_cast<const ConditionalExpr&>(expr);
      DUET_ASSIGN_OR_RETURN(Value condition, Evaluate(*conditional.condition, scope));
      if (condition.Truthy()) return Evaluate(*conditional.then_value, scope);
      if (conditional.else_value != nullptr) return Evaluate(*conditional.else_value, scope);
      return Value::Undefined(StrCat("the inline if-expression on line ", line,
                                           " evaluated to false and no else section was defined."));
    }
  }
  return absl::InternalError("unknown expression kind");
}

}  // namespace duet::chat_template
