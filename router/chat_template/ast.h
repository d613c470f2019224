// Syntax tree of a parsed chat template. Nodes own their children
// (unique_ptr); a tree is immutable after parsing and may be rendered from
// several threads at once. Tree depth is bounded by the parser's nesting
// limit, so recursive evaluation and destruction stay shallow.
#ifndef DUET_ROUTER_CHAT_TEMPLATE_AST_H_
#define DUET_ROUTER_CHAT_TEMPLATE_AST_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "router/chat_template/value.h"

namespace duet::chat_template {

enum class ExprKind {
  kLiteral,      // 'text', 42, 1.5, true, none
  kName,         // x
  kList,         // [a, b]
  kTuple,        // (a, b)
  kDict,         // {k: v}
  kGetAttr,      // obj.name
  kGetItem,      // obj[index]
  kSlice,        // obj[start:stop:step]
  kCall,         // f(args)
  kFilter,       // value | name(args)
  kTest,         // value is [not] name(args)
  kUnary,        // not x, -x, +x
  kBinary,       // a + b, a and b, a ~ b, ...
  kCompare,      // a < b == c, a in b, a not in b
  kConditional,  // a if cond else b
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  Expr(ExprKind kind, int line) : kind(kind), line(line) {}
  virtual ~Expr() = default;
  ExprKind kind;
  int line;
  int height = 1;  // 1 + the tallest child's height
};

struct LiteralExpr : Expr {
  LiteralExpr(Value value, int line) : Expr(ExprKind::kLiteral, line), value(std::move(value)) {}
  Value value;
};

struct NameExpr : Expr {
  NameExpr(std::string name, int line) : Expr(ExprKind::kName, line), name(std::move(name)) {}
  std::string name;
};

// kList and kTuple.
struct SequenceExpr : Expr {
  SequenceExpr(ExprKind kind, int line) : Expr(kind, line) {}
  std::vector<ExprPtr> items;
};

struct DictExpr : Expr {
  explicit DictExpr(int line) : Expr(ExprKind::kDict, line) {}
  std::vector<std::pair<ExprPtr, ExprPtr>> entries;
};

struct GetAttrExpr : Expr {
  GetAttrExpr(ExprPtr object, std::string name, int line)
      : Expr(ExprKind::kGetAttr, line), object(std::move(object)), name(std::move(name)) {}
  ExprPtr object;
  std::string name;
};

struct GetItemExpr : Expr {
  GetItemExpr(ExprPtr object, ExprPtr index, int line)
      : Expr(ExprKind::kGetItem, line), object(std::move(object)), index(std::move(index)) {}
  ExprPtr object;
  ExprPtr index;
};

// Absent bounds are null.
struct SliceExpr : Expr {
  explicit SliceExpr(int line) : Expr(ExprKind::kSlice, line) {}
  ExprPtr object;
  ExprPtr start;
  ExprPtr stop;
  ExprPtr step;
};

struct Arguments {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
};

struct CallExpr : Expr {
  explicit CallExpr(int line) : Expr(ExprKind::kCall, line) {}
  ExprPtr callee;
  Arguments args;
};

// Filters and tests: `operand | name(args)` / `operand is [not] name(args)`.
struct FilterExpr : Expr {
  FilterExpr(ExprKind kind, int line) : Expr(kind, line) {}
  ExprPtr operand;
  std::string name;
  Arguments args;
  bool negated = false;  // tests only: `is not`
};

struct UnaryExpr : Expr {
  UnaryExpr(std::string op, ExprPtr operand, int line)
      : Expr(ExprKind::kUnary, line), op(std::move(op)), operand(std::move(operand)) {}
  std::string op;  // "not", "-", "+"
  ExprPtr operand;
};

struct BinaryExpr : Expr {
  BinaryExpr(std::string op, ExprPtr left, ExprPtr right, int line)
      : Expr(ExprKind::kBinary, line), op(std::move(op)), left(std::move(left)), right(std::move(right)) {}
  std::string op;  // "and", "or", "+", "-", "*", "/", "//", "%", "**", "~"
  ExprPtr left;
  ExprPtr right;
};

// Python-style chained comparison: first op0 x0 op1 x1 ...
struct CompareExpr : Expr {
  explicit CompareExpr(int line) : Expr(ExprKind::kCompare, line) {}
  ExprPtr first;
  std::vector<std::pair<std::string, ExprPtr>> rest;  // op: "==", "<", "in", "notin", ...
};

struct ConditionalExpr : Expr {
  explicit ConditionalExpr(int line) : Expr(ExprKind::kConditional, line) {}
  ExprPtr then_value;
  ExprPtr condition;
  ExprPtr else_value;  // null: Undefined when the condition is false
};

enum class StmtKind { kText, kOutput, kIf, kFor, kSet, kSetBlock, kMacro, kBreak, kContinue, kFilterBlock };

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  Stmt(StmtKind kind, int line) : kind(kind), line(line) {}
  virtual ~Stmt() = default;
  StmtKind kind;
  int line;
};

struct TextStmt : Stmt {
  TextStmt(std::string text, int line) : Stmt(StmtKind::kText, line), text(std::move(text)) {}
  std::string text;
};

struct OutputStmt : Stmt {
  OutputStmt(ExprPtr value, int line) : Stmt(StmtKind::kOutput, line), value(std::move(value)) {}
  ExprPtr value;
};

struct IfStmt : Stmt {
  explicit IfStmt(int line) : Stmt(StmtKind::kIf, line) {}
  std::vector<std::pair<ExprPtr, Body>> branches;  // if + elifs
  Body else_body;
};

struct ForStmt : Stmt {
  explicit ForStmt(int line) : Stmt(StmtKind::kFor, line) {}
  std::vector<std::string> targets;  // `for a, b in ...` unpacks
  ExprPtr iterable;
  ExprPtr filter;  // `for x in xs if cond`; may be null
  Body body;
  Body else_body;
};

// Assignment target: a name, `ns.attr`, or a tuple of names.
struct SetTarget {
  std::vector<std::string> names;
  std::string attribute;  // non-empty: names[0].attribute = value
};

struct SetStmt : Stmt {
  explicit SetStmt(int line) : Stmt(StmtKind::kSet, line) {}
  SetTarget target;
  ExprPtr value;
};

// `{% set x | filters %}body{% endset %}`: filters apply to the captured text,
// chained through FilterExpr nodes whose innermost operand is null.
struct SetBlockStmt : Stmt {
  explicit SetBlockStmt(int line) : Stmt(StmtKind::kSetBlock, line) {}
  SetTarget target;
  ExprPtr filter;
  Body body;
};

struct MacroStmt : Stmt {
  explicit MacroStmt(int line) : Stmt(StmtKind::kMacro, line) {}
  std::string name;
  std::vector<std::pair<std::string, ExprPtr>> params;  // default may be null
  Body body;
};

// `{% filter name(args) %}body{% endfilter %}`; same filter chain shape as
// SetBlockStmt.
struct FilterBlockStmt : Stmt {
  explicit FilterBlockStmt(int line) : Stmt(StmtKind::kFilterBlock, line) {}
  ExprPtr filter;
  Body body;
};

struct LoopControlStmt : Stmt {
  LoopControlStmt(StmtKind kind, int line) : Stmt(kind, line) {}
};

}  // namespace duet::chat_template

#endif  // DUET_ROUTER_CHAT_TEMPLATE_AST_H_
