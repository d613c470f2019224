#include "router/chat_template/parser.h"

#include <algorithm>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/str_cat.h"
#include "common/status_macros.h"

namespace duet::chat_template {
namespace {

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, int max_nesting) : tokens_(tokens), max_nesting_(max_nesting) {}

  absl::StatusOr<Body> ParseTemplate() {
    Body body;
    DUET_RETURN_IF_ERROR(ParseBody({}, &body));
    if (Current().type != TokenType::kEnd) {
      return Error(StrCat("unexpected '", Current().text, "'"));
    }
    return body;
  }

 private:
  // Counts recursion so deeply nested input fails cleanly instead of
  // overflowing the stack.
  class DepthGuard {
   public:
    explicit DepthGuard(Parser* parser) : parser_(parser) { ++parser_->depth_; }
    ~DepthGuard() { --parser_->depth_; }
    absl::Status Check() const {
      if (parser_->depth_ > parser_->max_nesting_) {
        return absl::ResourceExhaustedError(StrCat(
            "chat template nests deeper than ", parser_->max_nesting_, " levels at line ", parser_->Current().line));
      }
      return absl::OkStatus();
    }

   private:
    Parser* parser_;
  };

  const Token& Current() const { return tokens_[pos_]; }
  const Token& Peek(size_t ahead) const { return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)]; }
  void Advance() {
    if (Current().type != TokenType::kEnd) ++pos_;
  }
  bool IsName(std::string_view name) const { return Current().type == TokenType::kName && Current().text == name; }
  bool IsOperator(std::string_view op) const { return Current().type == TokenType::kOperator && Current().text == op; }

  absl::Status Error(std::string_view message) const {
    return absl::InvalidArgumentError(
        StrCat("chat template syntax error at line ", Current().line, ": ", message));
  }

  static std::string Describe(const Token& token) {
    switch (token.type) {
      case TokenType::kEnd: return "end of template";
      case TokenType::kText: return "template text";
      case TokenType::kVariableBegin: return "'{{'";
      case TokenType::kVariableEnd: return "'}}'";
      case TokenType::kBlockBegin: return "'{%'";
      case TokenType::kBlockEnd: return "'%}'";
      case TokenType::kString: return "string literal";
      default: return StrCat("'", token.text, "'");
    }
  }

  absl::Status ExpectOperator(std::string_view op) {
    if (!IsOperator(op)) return Error(StrCat("expected '", op, "', got ", Describe(Current())));
    Advance();
    return absl::OkStatus();
  }
  absl::Status ExpectName(std::string_view name) {
    if (!IsName(name)) return Error(StrCat("expected '", name, "', got ", Describe(Current())));
    Advance();
    return absl::OkStatus();
  }
  absl::Status ExpectType(TokenType type, std::string_view what) {
    if (Current().type != type) return Error(StrCat("expected ", what, ", got ", Describe(Current())));
    Advance();
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> ExpectIdentifier() {
    if (Current().type != TokenType::kName) return Error(StrCat("expected a name, got ", Describe(Current())));
    std::string name = Current().text;
    Advance();
    return name;
  }

  // Sets the node's height from its children and enforces the bound.
  absl::Status Seal(Expr* node, std::initializer_list<const Expr*> children) {
    int height = 0;
    for (const Expr* child : children) {
      if (child != nullptr) height = std::max(height, child->height);
    }
    return SetHeight(node, height + 1);
  }
  absl::Status SetHeight(Expr* node, int height) {
    node->height = height;
    if (height > max_nesting_) {
      return absl::ResourceExhaustedError(StrCat(
          "chat template expression nests deeper than ", max_nesting_, " levels at line ", node->line));
    }
    return absl::OkStatus();
  }
  static int ArgsHeight(const Arguments& args) {
    int height = 0;
    for (const auto& arg : args.positional) height = std::max(height, arg->height);
    for (const auto& [name, arg] : args.keyword) height = std::max(height, arg->height);
    return height;
  }

  // ---- statements ----

  // Parses until `{% <one of end_names>` (left unconsumed, positioned at the
  // name) or the end of input.
  absl::Status ParseBody(const std::vector<std::string_view>& end_names, Body* body) {
    DepthGuard guard(this);
    DUET_RETURN_IF_ERROR(guard.Check());
    while (true) {
      const Token& token = Current();
      switch (token.type) {
        case TokenType::kEnd:
          if (!end_names.empty()) {
            return Error(StrCat("unexpected end of template, expected '", end_names.back(), "'"));
          }
          return absl::OkStatus();
        case TokenType::kText:
          body->push_back(std::make_unique<TextStmt>(token.text, token.line));
          Advance();
          break;
        case TokenType::kVariableBegin: {
          Advance();
          DUET_ASSIGN_OR_RETURN(ExprPtr value, ParseTuple(/*with_conditional=*/true, {}));
          DUET_RETURN_IF_ERROR(ExpectType(TokenType::kVariableEnd, "'}}'"));
          body->push_back(std::make_unique<OutputStmt>(std::move(value), token.line));
          break;
        }
        case TokenType::kBlockBegin: {
          const Token& name = Peek(1);
          if (name.type == TokenType::kName &&
              std::find(end_names.begin(), end_names.end(), name.text) != end_names.end()) {
            Advance();
            return absl::OkStatus();
          }
          Advance();
          DUET_ASSIGN_OR_RETURN(StmtPtr statement, ParseStatement());
          if (statement != nullptr) body->push_back(std::move(statement));
          break;
        }
        default:
          return Error(StrCat("unexpected ", Describe(token)));
      }
    }
  }

  absl::Status ExpectBlockEnd() { return ExpectType(TokenType::kBlockEnd, "'%}'"); }

  absl::StatusOr<StmtPtr> ParseStatement() {
    if (Current().type != TokenType::kName) return Error("tag name expected");
    const std::string tag = Current().text;
    const int line = Current().line;
    if (tag == "if") return ParseIf();
    if (tag == "for") return ParseFor();
    if (tag == "set") return ParseSet();
    if (tag == "macro") return ParseMacro();
    if (tag == "filter") return ParseFilterBlock(/*is_generation=*/false);
    if (tag == "generation") return ParseFilterBlock(/*is_generation=*/true);
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) return Error(StrCat("'", tag, "' outside of a loop"));
      Advance();
      DUET_RETURN_IF_ERROR(ExpectBlockEnd());
      return StmtPtr(std::make_unique<LoopControlStmt>(tag == "break" ? StmtKind::kBreak : StmtKind::kContinue, line));
    }
    return Error(StrCat("unknown or unsupported tag '", tag, "'"));
  }

  absl::StatusOr<StmtPtr> ParseIf() {
    auto statement = std::make_unique<IfStmt>(Current().line);
    Advance();  // if
    while (true) {
      DUET_ASSIGN_OR_RETURN(ExprPtr condition, ParseTuple(/*with_conditional=*/false, {}));
      DUET_RETURN_IF_ERROR(ExpectBlockEnd());
      Body body;
      DUET_RETURN_IF_ERROR(ParseBody({"elif", "else", "endif"}, &body));
      statement->branches.emplace_back(std::move(condition), std::move(body));
      if (IsName("elif")) {
        Advance();
        continue;
      }
      if (IsName("else")) {
        Advance();
        DUET_RETURN_IF_ERROR(ExpectBlockEnd());
        DUET_RETURN_IF_ERROR(ParseBody({"endif"}, &statement->else_body));
      }
      break;
    }
    DUET_RETURN_IF_ERROR(ExpectName("endif"));
    DUET_RETURN_IF_ERROR(ExpectBlockEnd());
    return StmtPtr(std::move(statement));
  }

  // Names for `for a, b in` / `set a, b =` (optionally parenthesized).
  absl::Status ParseTargetNames(std::vector<std::string>* names) {
    const bool parenthesized = IsOperator("(");
    if (parenthesized) Advance();
    while (true) {
      DUET_ASSIGN_OR_RETURN(std::string name, ExpectIdentifier());
      names->push_back(std::move(name));
      if (!IsOperator(",")) break;
      Advance();
      if (Current().type != TokenType::kName || IsName("in")) break;
    }
    if (parenthesized) DUET_RETURN_IF_ERROR(ExpectOperator(")"));
    return absl::OkStatus();
  }

  absl::StatusOr<StmtPtr> ParseFor() {
    auto statement = std::make_unique<ForStmt>(Current().line);
    Advance();  // for
    DUET_RETURN_IF_ERROR(ParseTargetNames(&statement->targets));
    DUET_RETURN_IF_ERROR(ExpectName("in"));
    DUET_ASSIGN_OR_RETURN(statement->iterable, ParseTuple(/*with_conditional=*/false, {"recursive"}));
    if (IsName("if")) {
      Advance();
      DUET_ASSIGN_OR_RETURN(statement->filter, ParseExpression(/*with_conditional=*/true));
    }
    if (IsName("recursive")) return Error("recursive loops are not supported");
    DUET_RETURN_IF_ERROR(ExpectBlockEnd());
    ++loop_depth_;
    absl::Status status = ParseBody({"endfor", "else"}, &statement->body);
    --loop_depth_;
    DUET_RETURN_IF_ERROR(status);
    if (IsName("else")) {
      Advance();
      DUET_RETURN_IF_ERROR(ExpectBlockEnd());
      DUET_RETURN_IF_ERROR(ParseBody({"endfor"}, &statement->else_body));
    }
    DUET_RETURN_IF_ERROR(ExpectName("endfor"));
    DUET_RETURN_IF_ERROR(ExpectBlockEnd());
    return StmtPtr(std::move(statement));
  }

  absl::StatusOr<StmtPtr> ParseSet() {
    const int line = Current().line;
    Advance();  // set
    SetTarget target;
    if (Current().type == TokenType::kName && Peek(1).type == TokenType::kOperator && Peek(1).text == ".") {
      target.names.push_back(Current().text);
      Advance();
      Advance();
      DUET_ASSIGN_OR_RETURN(target.attribute, ExpectIdentifier());
    } else {
      DUET_RETURN_IF_ERROR(ParseTargetNames(&target.names));
    }
    if (IsOperator("=")) {
      Advance();
      auto statement = std::make_unique<SetStmt>(line);
      statement->target = std::move(target);
      DUET_ASSIGN_OR_RETURN(statement->value, ParseTuple(/*with_conditional=*/true, {}));
      DUET_RETURN_IF_ERROR(ExpectBlockEnd());
      return StmtPtr(std::move(statement));
    }
    if (target.names.size() != 1 || !target.attribute.empty()) return Error("block set needs a single name");
    auto statement = std::make_unique<SetBlockStmt>(line);
    statement->target = std::move(target);
    DUET_ASSIGN_OR_RETURN(statement->filter, ParseFilters(nullptr, /*first_without_pipe=*/false));
    DUET_RETURN_IF_ERROR(ExpectBlockEnd());
    DUET_RETURN_IF_ERROR(ParseBody({"endset"}, &statement->body));
    DUET_RETURN_IF_ERROR(ExpectName("endset"));
    DUET_RETURN_IF_ERROR(ExpectBlockEnd());
    return StmtPtr(std::move(statement));
  }

  absl::StatusOr<StmtPtr> ParseMacro() {
    auto statement = std::make_unique<MacroStmt>(Current().line);
    Advance();  // macro
    DUET_ASSIGN_OR_RETURN(statement->name, ExpectIdentifier());
    DUET_RETURN_IF_ERROR(ExpectOperator("("));
    while (!IsOperator(")")) {
      if (!statement->params.empty()) DUET_RETURN_IF_ERROR(ExpectOperator(","));
      if (IsOperator(")")) break;
      DUET_ASSIGN_OR_RETURN(std::string param, ExpectIdentifier());
      ExprPtr default_value;
      if (IsOperator("=")) {
        Advance();
        DUET_ASSIGN_OR_RETURN(default_value, ParseExpression(/*with_conditional=*/true));
      } else if (!statement->params.empty() && statement->params.back().second != nullptr) {
        return Error("non-default macro argument follows default argument");
      }
      statement->params.emplace_back(std::move(param), std::move(default_value));
    }
    Advance();  // )
    DUET_RETURN_IF_ERROR(ExpectBlockEnd());
    const int saved_loop_depth = loop_depth_;
    loop_depth_ = 0;
    absl::Status status = ParseBody({"endmacro"}, &statement->body);
    loop_depth_ = saved_loop_depth;
    DUET_RETURN_IF_ERROR(status);
    DUET_RETURN_IF_ERROR(ExpectName("endmacro"));
    DUET_RETURN_IF_ERROR(ExpectBlockEnd());
    return StmtPtr(std::move(statement));
  }

  // `{% filter f %}...{% endfilter %}`; transformers' `{% generation %}` tag
  // only marks assistant spans, so its body renders as is.
  absl::StatusOr<StmtPtr> ParseFilterBlock(bool is_generation) {
    auto statement = std::make_unique<FilterBlockStmt>(Current().line);
    Advance();
    if (!is_generation) {
      DUET_ASSIGN_OR_RETURN(statement->filter, ParseFilters(nullptr, /*first_without_pipe=*/true));
    }
    DUET_RETURN_IF_ERROR(ExpectBlockEnd());
    const std::string_view end_name = is_generation ? "endgeneration" : "endfilter";
    DUET_RETURN_IF_ERROR(ParseBody({end_name}, &statement->body));
    DUET_RETURN_IF_ERROR(ExpectName(end_name));
    DUET_RETURN_IF_ERROR(ExpectBlockEnd());
    return StmtPtr(std::move(statement));
  }

  // ---- expressions ----

  bool IsTupleEnd(const std::vector<std::string_view>& extra_end_names) const {
    const Token& token = Current();
    if (token.type == TokenType::kVariableEnd || token.type == TokenType::kBlockEnd ||
        token.type == TokenType::kEnd || IsOperator(")")) {
      return true;
    }
    return token.type == TokenType::kName &&
           std::find(extra_end_names.begin(), extra_end_names.end(), token.text) != extra_end_names.end();
  }

  // A bare comma list becomes a tuple: `{{ a, b }}`, `set x = 1, 2`.
  absl::StatusOr<ExprPtr> ParseTuple(bool with_conditional, const std::vector<std::string_view>& extra_end_names) {
    const int line = Current().line;
    std::vector<ExprPtr> items;
    bool saw_comma = false;
    while (true) {
      if (!items.empty()) {
        if (!IsOperator(",")) break;
        Advance();
        saw_comma = true;
        if (IsTupleEnd(extra_end_names)) break;
      }
      DUET_ASSIGN_OR_RETURN(ExprPtr item, ParseExpression(with_conditional));
      items.push_back(std::move(item));
    }
    if (!saw_comma) return std::move(items.front());
    auto tuple = std::make_unique<SequenceExpr>(ExprKind::kTuple, line);
    int height = 0;
    for (const auto& item : items) height = std::max(height, item->height);
    tuple->items = std::move(items);
    DUET_RETURN_IF_ERROR(SetHeight(tuple.get(), height + 1));
    return ExprPtr(std::move(tuple));
  }

  absl::StatusOr<ExprPtr> ParseExpression(bool with_conditional) {
    DepthGuard guard(this);
    DUET_RETURN_IF_ERROR(guard.Check());
    if (!with_conditional) return ParseOr();
    DUET_ASSIGN_OR_RETURN(ExprPtr value, ParseOr());
    while (IsName("if")) {
      auto conditional = std::make_unique<ConditionalExpr>(Current().line);
      Advance();
      DUET_ASSIGN_OR_RETURN(conditional->condition, ParseOr());
      if (IsName("else")) {
        Advance();
        DUET_ASSIGN_OR_RETURN(conditional->else_value, ParseExpression(/*with_conditional=*/true));
      }
      conditional->then_value = std::move(value);
      DUET_RETURN_IF_ERROR(Seal(conditional.get(), {conditional->then_value.get(), conditional->condition.get(),
                                                  conditional->else_value.get()}));
      value = std::move(conditional);
    }
    return value;
  }

  absl::StatusOr<ExprPtr> MakeBinary(std::string op, ExprPtr left, ExprPtr right, int line) {
    auto node = std::make_unique<BinaryExpr>(std::move(op), std::move(left), std::move(right), line);
    DUET_RETURN_IF_ERROR(Seal(node.get(), {node->left.get(), node->right.get()}));
    return ExprPtr(std::move(node));
  }

  absl::StatusOr<ExprPtr> ParseOr() {
    DUET_ASSIGN_OR_RETURN(ExprPtr left, ParseAnd());
    while (IsName("or")) {
      const int line = Current().line;
      Advance();
      DUET_ASSIGN_OR_RETURN(ExprPtr right, ParseAnd());
      DUET_ASSIGN_OR_RETURN(left, MakeBinary("or", std::move(left), std::move(right), line));
    }
    return left;
  }

  absl::StatusOr<ExprPtr> ParseAnd() {
    DUET_ASSIGN_OR_RETURN(ExprPtr left, ParseNot());
    while (IsName("and")) {
      const int line = Current().line;
      Advance();
      DUET_ASSIGN_OR_RETURN(ExprPtr right, ParseNot());
      DUET_ASSIGN_OR_RETURN(left, MakeBinary("and", std::move(left), std::move(right), line));
    }
    return left;
  }

  absl::StatusOr<ExprPtr> ParseNot() {
    if (IsName("not")) {
      const int line = Current().line;
      Advance();
      DepthGuard guard(this);
      DUET_RETURN_IF_ERROR(guard.Check());
      DUET_ASSIGN_OR_RETURN(ExprPtr operand, ParseNot());
      auto node = std::make_unique<UnaryExpr>("not", std::move(operand), line);
      DUET_RETURN_IF_ERROR(Seal(node.get(), {node->operand.get()}));
      return ExprPtr(std::move(node));
    }
    return ParseCompare();
  }

  absl::StatusOr<ExprPtr> ParseCompare() {
    const int line = Current().line;
    DUET_ASSIGN_OR_RETURN(ExprPtr first, ParseMath1());
    auto compare = std::make_unique<CompareExpr>(line);
    while (true) {
      std::string op;
      if (Current().type == TokenType::kOperator &&
          (IsOperator("==") || IsOperator("!=") || IsOperator("<") || IsOperator("<=") || IsOperator(">") ||
           IsOperator(">="))) {
        op = Current().text;
        Advance();
      } else if (IsName("in")) {
        op = "in";
        Advance();
      } else if (IsName("not") && Peek(1).type == TokenType::kName && Peek(1).text == "in") {
        op = "notin";
        Advance();
        Advance();
      } else {
        break;
      }
      DUET_ASSIGN_OR_RETURN(ExprPtr operand, ParseMath1());
      compare->rest.emplace_back(std::move(op), std::move(operand));
    }
    if (compare->rest.empty()) return first;
    int height = first->height;
    for (const auto& [op, operand] : compare->rest) height = std::max(height, operand->height);
    compare->first = std::move(first);
    DUET_RETURN_IF_ERROR(SetHeight(compare.get(), height + static_cast<int>(compare->rest.size())));
    return ExprPtr(std::move(compare));
  }

  absl::StatusOr<ExprPtr> ParseMath1() {
    DUET_ASSIGN_OR_RETURN(ExprPtr left, ParseConcat());
    while (IsOperator("+") || IsOperator("-")) {
      std::string op = Current().text;
      const int line = Current().line;
      Advance();
      DUET_ASSIGN_OR_RETURN(ExprPtr right, ParseConcat());
      DUET_ASSIGN_OR_RETURN(left, MakeBinary(std::move(op), std::move(left), std::move(right), line));
    }
    return left;
  }

  absl::StatusOr<ExprPtr> ParseConcat() {
    DUET_ASSIGN_OR_RETURN(ExprPtr left, ParseMath2());
    while (IsOperator("~")) {
      const int line = Current().line;
      Advance();
      DUET_ASSIGN_OR_RETURN(ExprPtr right, ParseMath2());
      DUET_ASSIGN_OR_RETURN(left, MakeBinary("~", std::move(left), std::move(right), line));
    }
    return left;
  }

  absl::StatusOr<ExprPtr> ParseMath2() {
    DUET_ASSIGN_OR_RETURN(ExprPtr left, ParsePow());
    while (IsOperator("*") || IsOperator("/") || IsOperator("//") || IsOperator("%")) {
      std::string op = Current().text;
      const int line = Current().line;
      Advance();
      DUET_ASSIGN_OR_RETURN(ExprPtr right, ParsePow());
      DUET_ASSIGN_OR_RETURN(left, MakeBinary(std::move(op), std::move(left), std::move(right), line));
    }
    return left;
  }

  absl::StatusOr<ExprPtr> ParsePow() {
    DUET_ASSIGN_OR_RETURN(ExprPtr left, ParseUnary(/*with_filter=*/true));
    while (IsOperator("**")) {
      const int line = Current().line;
      Advance();
      DUET_ASSIGN_OR_RETURN(ExprPtr right, ParseUnary(/*with_filter=*/true));
      DUET_ASSIGN_OR_RETURN(left, MakeBinary("**", std::move(left), std::move(right), line));
    }
    return left;
  }

  absl::StatusOr<ExprPtr> ParseUnary(bool with_filter) {
    DepthGuard guard(this);
    DUET_RETURN_IF_ERROR(guard.Check());
    ExprPtr node;
    if (IsOperator("-") || IsOperator("+")) {
      std::string op = Current().text;
      const int line = Current().line;
      Advance();
      DUET_ASSIGN_OR_RETURN(ExprPtr operand, ParseUnary(/*with_filter=*/false));
      auto unary = std::make_unique<UnaryExpr>(std::move(op), std::move(operand), line);
      DUET_RETURN_IF_ERROR(Seal(unary.get(), {unary->operand.get()}));
      node = std::move(unary);
    } else {
      DUET_ASSIGN_OR_RETURN(node, ParsePrimary());
    }
    DUET_ASSIGN_OR_RETURN(node, ParsePostfix(std::move(node)));
    if (with_filter) {
      DUET_ASSIGN_OR_RETURN(node, ParseFilterExpr(std::move(node)));
    }
    return node;
  }

  absl::StatusOr<ExprPtr> ParsePrimary() {
    const Token& token = Current();
    const int line = token.line;
    switch (token.type) {
      case TokenType::kName: {
        std::string name = token.text;
        Advance();
        if (name == "true" || name == "True") return ExprPtr(std::make_unique<LiteralExpr>(Value::Bool(true), line));
        if (name == "false" || name == "False") return ExprPtr(std::make_unique<LiteralExpr>(Value::Bool(false), line));
        if (name == "none" || name == "None") return ExprPtr(std::make_unique<LiteralExpr>(Value::None(), line));
        return ExprPtr(std::make_unique<NameExpr>(std::move(name), line));
      }
      case TokenType::kString: {
        std::string text;
        while (Current().type == TokenType::kString) {
          text += Current().text;
          Advance();
        }
        return ExprPtr(std::make_unique<LiteralExpr>(Value::String(std::move(text)), line));
      }
      case TokenType::kInteger: {
        int64_t value = token.int_value;
        Advance();
        return ExprPtr(std::make_unique<LiteralExpr>(Value::Int(value), line));
      }
      case TokenType::kFloat: {
        double value = token.float_value;
        Advance();
        return ExprPtr(std::make_unique<LiteralExpr>(Value::Float(value), line));
      }
      case TokenType::kOperator:
        if (token.text == "(") return ParseParenthesized();
        if (token.text == "[") return ParseList();
        if (token.text == "{") return ParseDict();
        [[fallthrough]];
      default:
        return Error(StrCat("unexpected ", Describe(token)));
    }
  }

  absl::StatusOr<ExprPtr> ParseParenthesized() {
    const int line = Current().line;
    Advance();  // (
    if (IsOperator(")")) {
      Advance();
      auto empty = std::make_unique<SequenceExpr>(ExprKind::kTuple, line);
      return ExprPtr(std::move(empty));
    }
    DUET_ASSIGN_OR_RETURN(ExprPtr inner, ParseTuple(/*with_conditional=*/true, {}));
    DUET_RETURN_IF_ERROR(ExpectOperator(")"));
    return inner;
  }

  absl::StatusOr<ExprPtr> ParseList() {
    auto list = std::make_unique<SequenceExpr>(ExprKind::kList, Current().line);
    Advance();  // [
    int height = 0;
    while (!IsOperator("]")) {
      if (!list->items.empty()) {
        DUET_RETURN_IF_ERROR(ExpectOperator(","));
        if (IsOperator("]")) break;
      }
      DUET_ASSIGN_OR_RETURN(ExprPtr item, ParseExpression(/*with_conditional=*/true));
      height = std::max(height, item->height);
      list->items.push_back(std::move(item));
    }
    Advance();  // ]
    DUET_RETURN_IF_ERROR(SetHeight(list.get(), height + 1));
    return ExprPtr(std::move(list));
  }

  absl::StatusOr<ExprPtr> ParseDict() {
    auto dict = std::make_unique<DictExpr>(Current().line);
    Advance();  // {
    int height = 0;
    while (!IsOperator("}")) {
      if (!dict->entries.empty()) {
        DUET_RETURN_IF_ERROR(ExpectOperator(","));
        if (IsOperator("}")) break;
      }
      DUET_ASSIGN_OR_RETURN(ExprPtr key, ParseExpression(/*with_conditional=*/true));
      DUET_RETURN_IF_ERROR(ExpectOperator(":"));
      DUET_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(/*with_conditional=*/true));
      height = std::max({height, key->height, value->height});
      dict->entries.emplace_back(std::move(key), std::move(value));
    }
    Advance();  // }
    DUET_RETURN_IF_ERROR(SetHeight(dict.get(), height + 1));
    return ExprPtr(std::move(dict));
  }

  absl::StatusOr<ExprPtr> ParsePostfix(ExprPtr node) {
    while (true) {
      if (IsOperator(".") || IsOperator("[")) {
        DUET_ASSIGN_OR_RETURN(node, ParseSubscript(std::move(node)));
      } else if (IsOperator("(")) {
        DUET_ASSIGN_OR_RETURN(node, ParseCall(std::move(node)));
      } else {
        return node;
      }
    }
  }

  absl::StatusOr<ExprPtr> ParseFilterExpr(ExprPtr node) {
    while (true) {
      if (IsOperator("|")) {
        DUET_ASSIGN_OR_RETURN(node, ParseFilters(std::move(node), /*first_without_pipe=*/false));
      } else if (IsName("is")) {
        DUET_ASSIGN_OR_RETURN(node, ParseTest(std::move(node)));
      } else if (IsOperator("(")) {
        DUET_ASSIGN_OR_RETURN(node, ParseCall(std::move(node)));
      } else {
        return node;
      }
    }
  }

  absl::StatusOr<ExprPtr> ParseSubscript(ExprPtr object) {
    const int line = Current().line;
    if (IsOperator(".")) {
      Advance();
      if (Current().type == TokenType::kName) {
        auto node = std::make_unique<GetAttrExpr>(std::move(object), Current().text, line);
        Advance();
        DUET_RETURN_IF_ERROR(Seal(node.get(), {node->object.get()}));
        return ExprPtr(std::move(node));
      }
      if (Current().type == TokenType::kInteger) {
        auto index = std::make_unique<LiteralExpr>(Value::Int(Current().int_value), line);
        Advance();
        auto node = std::make_unique<GetItemExpr>(std::move(object), std::move(index), line);
        DUET_RETURN_IF_ERROR(Seal(node.get(), {node->object.get()}));
        return ExprPtr(std::move(node));
      }
      return Error("expected an attribute name after '.'");
    }
    Advance();  // [
    ExprPtr parts[3];
    int num_colons = 0;
    while (true) {
      if (IsOperator(":")) {
        if (num_colons == 2) return Error("too many ':' in subscript");
        ++num_colons;
        Advance();
        continue;
      }
      if (IsOperator("]")) break;
      if (parts[num_colons] != nullptr) {
        if (num_colons != 0 || !IsOperator(",")) return Error("expected ']'");
        // obj[a, b]: the key is the tuple (a, b).
        auto tuple = std::make_unique<SequenceExpr>(ExprKind::kTuple, line);
        tuple->items.push_back(std::move(parts[0]));
        while (IsOperator(",")) {
          Advance();
          if (IsOperator("]")) break;
          DUET_ASSIGN_OR_RETURN(ExprPtr item, ParseExpression(/*with_conditional=*/true));
          tuple->items.push_back(std::move(item));
        }
        int height = 0;
        for (const auto& item : tuple->items) height = std::max(height, item->height);
        DUET_RETURN_IF_ERROR(SetHeight(tuple.get(), height + 1));
        parts[0] = std::move(tuple);
        continue;
      }
      DUET_ASSIGN_OR_RETURN(parts[num_colons], ParseExpression(/*with_conditional=*/true));
    }
    Advance();  // ]
    if (num_colons == 0) {
      if (parts[0] == nullptr) return Error("expected a subscript");
      auto node = std::make_unique<GetItemExpr>(std::move(object), std::move(parts[0]), line);
      DUET_RETURN_IF_ERROR(Seal(node.get(), {node->object.get(), node->index.get()}));
      return ExprPtr(std::move(node));
    }
    auto slice = std::make_unique<SliceExpr>(line);
    slice->object = std::move(object);
    slice->start = std::move(parts[0]);
    slice->stop = std::move(parts[1]);
    slice->step = std::move(parts[2]);
    DUET_RETURN_IF_ERROR(
        Seal(slice.get(), {slice->object.get(), slice->start.get(), slice->stop.get(), slice->step.get()}));
    return ExprPtr(std::move(slice));
  }

  absl::Status ParseCallArguments(Arguments* args) {
    DUET_RETURN_IF_ERROR(ExpectOperator("("));
    while (!IsOperator(")")) {
      if (!args->positional.empty() || !args->keyword.empty()) {
        DUET_RETURN_IF_ERROR(ExpectOperator(","));
        if (IsOperator(")")) break;
      }
      if (IsOperator("*") || IsOperator("**")) return Error("*args and **kwargs in calls are not supported");
      if (Current().type == TokenType::kName && Peek(1).type == TokenType::kOperator && Peek(1).text == "=") {
        std::string name = Current().text;
        Advance();
        Advance();
        DUET_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(/*with_conditional=*/true));
        args->keyword.emplace_back(std::move(name), std::move(value));
      } else {
        if (!args->keyword.empty()) return Error("positional argument follows keyword argument");
        DUET_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(/*with_conditional=*/true));
        args->positional.push_back(std::move(value));
      }
    }
    Advance();  // )
    return absl::OkStatus();
  }

  absl::StatusOr<ExprPtr> ParseCall(ExprPtr callee) {
    auto call = std::make_unique<CallExpr>(Current().line);
    DUET_RETURN_IF_ERROR(ParseCallArguments(&call->args));
    call->callee = std::move(callee);
    DUET_RETURN_IF_ERROR(SetHeight(call.get(), std::max(call->callee->height, ArgsHeight(call->args)) + 1));
    return ExprPtr(std::move(call));
  }

  // `| name(args) | name2 ...`. A null operand builds the chain of a filter
  // block or block set, applied to captured text at render time; with
  // first_without_pipe the first filter has no leading '|' (`{% filter f %}`).
  // Returns the operand unchanged when no filter follows.
  absl::StatusOr<ExprPtr> ParseFilters(ExprPtr operand, bool first_without_pipe) {
    bool first = true;
    while ((first && first_without_pipe) || IsOperator("|")) {
      if (!(first && first_without_pipe)) Advance();  // |
      first = false;
      auto filter = std::make_unique<FilterExpr>(ExprKind::kFilter, Current().line);
      DUET_ASSIGN_OR_RETURN(filter->name, ExpectIdentifier());
      if (IsOperator("(")) DUET_RETURN_IF_ERROR(ParseCallArguments(&filter->args));
      filter->operand = std::move(operand);
      const int operand_height = filter->operand ? filter->operand->height : 0;
      DUET_RETURN_IF_ERROR(SetHeight(filter.get(), std::max(operand_height, ArgsHeight(filter->args)) + 1));
      operand = std::move(filter);
    }
    return operand;
  }

  absl::StatusOr<ExprPtr> ParseTest(ExprPtr operand) {
    auto test = std::make_unique<FilterExpr>(ExprKind::kTest, Current().line);
    Advance();  // is
    if (IsName("not")) {
      test->negated = true;
      Advance();
    }
    DUET_ASSIGN_OR_RETURN(test->name, ExpectIdentifier());
    const Token& next = Current();
    if (IsOperator("(")) {
      DUET_RETURN_IF_ERROR(ParseCallArguments(&test->args));
    } else if ((next.type == TokenType::kName && next.text != "else" && next.text != "or" && next.text != "and" &&
                next.text != "is") ||
               next.type == TokenType::kString || next.type == TokenType::kInteger ||
               next.type == TokenType::kFloat || IsOperator("[") || IsOperator("{")) {
      // `x is equalto 5`: a single argument without parentheses.
      DUET_ASSIGN_OR_RETURN(ExprPtr argument, ParsePrimary());
      DUET_ASSIGN_OR_RETURN(argument, ParsePostfix(std::move(argument)));
      test->args.positional.push_back(std::move(argument));
    }
    test->operand = std::move(operand);
    DUET_RETURN_IF_ERROR(SetHeight(test.get(), std::max(test->operand->height, ArgsHeight(test->args)) + 1));
    return ExprPtr(std::move(test));
  }

  const std::vector<Token>& tokens_;
  const int max_nesting_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

absl::StatusOr<Body> ParseTokens(const std::vector<Token>& tokens, int max_nesting) {
  Parser parser(tokens, max_nesting);
  return parser.ParseTemplate();
}

}  // namespace duet::chat_template
