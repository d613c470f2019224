#include "router/chat_template/filters.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "common/str_cat.h"
#include "absl/strings/str_split.h"
#include "router/chat_template/call_args.h"
#include "router/chat_template/methods.h"
#include "router/chat_template/operations.h"
#include "router/chat_template/py_format.h"
#include "common/status_macros.h"
#include "router/chat_template/unicode_text.h"

namespace duet::chat_template {
namespace {

absl::Status CheckSize(const Interpreter& interpreter, size_t bytes) {
  if (static_cast<int64_t>(bytes) > interpreter.limits().max_output_bytes) {
    return absl::ResourceExhaustedError(StrCat("chat template value exceeds the output limit of ",
                                                     interpreter.limits().max_output_bytes, " bytes"));
  }
  return absl::OkStatus();
}

// jinja2's make_attrgetter: "a.b.0" walks items, digit parts as indices.
absl::StatusOr<Value> GetAttributePath(const Value& item, const Value& attribute) {
  if (!attribute.is_string()) return GetItem(item, attribute);
  Value current = item;
  for (absl::string_view part : absl::StrSplit(attribute.AsString(), '.')) {
    int64_t index;
    if (!part.empty() && absl::ascii_isdigit(static_cast<unsigned char>(part[0])) && absl::SimpleAtoi(part, &index)) {
      DUET_ASSIGN_OR_RETURN(current, GetItem(current, Value::Int(index)));
    } else {
      DUET_ASSIGN_OR_RETURN(current, GetItem(current, Value::String(std::string(part.data(), part.size()))));
    }
  }
  return current;
}

// Python's int(str): optional sign, digits with single underscores, spaces.
std::optional<int64_t> ParsePyInt(std::string_view text, int base) {
  std::string cleaned = PyStrip(text, nullptr, StripSide::kBoth);
  std::string digits;
  for (size_t i = 0; i < cleaned.size(); ++i) {
    if (cleaned[i] == '_' && i > 0 && i + 1 < cleaned.size() && cleaned[i - 1] != '_' &&
        std::isalnum(static_cast<unsigned char>(cleaned[i + 1]))) {
      continue;
    }
    digits.push_back(cleaned[i]);
  }
  if (digits.empty() || digits.find_first_of(" \t\n") != std::string::npos) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  long long value = std::strtoll(digits.c_str(), &end, base);
  if (errno != 0 || end == digits.c_str() || *end != '\0') return std::nullopt;
  return static_cast<int64_t>(value);
}

std::optional<double> ParsePyFloat(std::string_view text) {
  std::string cleaned = PyStrip(text, nullptr, StripSide::kBoth);
  if (cleaned.empty() || cleaned.find('_') != std::string::npos) return std::nullopt;
  std::string lower = absl::AsciiStrToLower(cleaned);
  std::string_view body = lower;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) body.remove_prefix(1);
  if (body == "inf" || body == "infinity" || body == "nan") {
    double v = body == "nan" ? NAN : INFINITY;
    return lower[0] == '-' ? -v : v;
  }
  if (body.find_first_not_of("0123456789.e+-") != std::string_view::npos) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  double value = std::strtod(cleaned.c_str(), &end);
  if (end == cleaned.c_str() || *end != '\0') return std::nullopt;
  return value;
}

absl::StatusOr<Value> ToJsonFilter(const Value& operand, const CallArgs& args) {
  DUET_ASSIGN_OR_RETURN(BoundArgs bound,
                      BoundArgs::Bind("tojson", args, {"ensure_ascii", "indent", "separators", "sort_keys"}));
  JsonDumpOptions options;
  options.ensure_ascii = bound.GetTruthy(0, false);
  options.sort_keys = bound.GetTruthy(3, false);
  if (const Value* indent = bound.Get(1); indent != nullptr && !indent->is_none()) {
    if (indent->is_string()) {
      options.indent = indent->AsString();
    } else if (indent->is_int() || indent->is_bool()) {
      options.indent = std::string(static_cast<size_t>(std::clamp<int64_t>(indent->AsInt(), 0, 1024)), ' ');
    } else {
      return absl::InvalidArgumentError("tojson(): indent must be an int, a string or None");
    }
  }
  if (const Value* separators = bound.Get(2); separators != nullptr && !separators->is_none()) {
    if (!separators->is_list() || separators->AsList().items.size() != 2 ||
        !separators->AsList().items[0].is_string() || !separators->AsList().items[1].is_string()) {
      return absl::InvalidArgumentError("tojson(): separators must be a pair of strings");
    }
    options.item_separator = separators->AsList().items[0].AsString();
    options.key_separator = separators->AsList().items[1].AsString();
  }
  DUET_ASSIGN_OR_RETURN(std::string json, ToJson(operand, options));
  return Value::String(std::move(json));
}

absl::StatusOr<Value> Join(Interpreter& interpreter, const Value& operand, const CallArgs& args) {
  DUET_ASSIGN_OR_RETURN(BoundArgs bound, BoundArgs::Bind("join", args, {"d", "attribute"}));
  DUET_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(operand));
  const std::string separator = bound.Get(0) != nullptr ? ToPyStr(*bound.Get(0)) : "";
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    Value item = items[i];
    if (const Value* attribute = bound.Get(1)) {
      DUET_ASSIGN_OR_RETURN(item, GetAttributePath(item, *attribute));
    }
    if (i > 0) out += separator;
    out += ToPyStr(item);
    DUET_RETURN_IF_ERROR(CheckSize(interpreter, out.size()));
  }
  return Value::String(std::move(out));
}

// select / reject / selectattr / rejectattr.
absl::StatusOr<Value> SelectFilter(Interpreter& interpreter, const Value& operand, const CallArgs& args,
                                   bool by_attribute, bool keep_matches) {
  // jinja2 yields nothing for a falsy operand without iterating it.
  if (!operand.Truthy()) return Value::MakeList({});
  DUET_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(operand));
  size_t next = 0;
  Value attribute;
  if (by_attribute) {
    if (args.positional.empty()) return absl::InvalidArgumentError("selectattr/rejectattr need an attribute name");
    attribute = args.positional[next++];
  }
  std::string test_name;
  CallArgs test_args;
  if (next < args.positional.size()) {
    if (!args.positional[next].is_string()) return absl::InvalidArgumentError("test name must be a string");
    test_name = args.positional[next++].AsString();
    test_args.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(next), args.positional.end());
    test_args.keyword = args.keyword;
  }
  std::vector<Value> kept;
  for (const Value& item : items) {
    Value subject = item;
    if (by_attribute) {
      DUET_ASSIGN_OR_RETURN(subject, GetAttributePath(item, attribute));
    }
    bool matches;
    if (test_name.empty()) {
      matches = subject.Truthy();
    } else {
      DUET_ASSIGN_OR_RETURN(matches, ApplyTest(interpreter, test_name, subject, test_args));
    }
    if (matches == keep_matches) kept.push_back(item);
  }
  return Value::MakeList(std::move(kept));
}

absl::StatusOr<Value> MapFilter(Interpreter& interpreter, const Value& operand, const CallArgs& args) {
  if (!operand.Truthy()) return Value::MakeList({});  // as jinja2: a falsy operand is not iterated
  DUET_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(operand));
  std::vector<Value> mapped;
  if (args.positional.empty()) {
    DUET_ASSIGN_OR_RETURN(BoundArgs bound, BoundArgs::Bind("map", args, {"attribute", "default"}));
    if (bound.Get(0) == nullptr) return absl::InvalidArgumentError("map() needs a filter name or attribute=");
    for (const Value& item : items) {
      DUET_ASSIGN_OR_RETURN(Value value, GetAttributePath(item, *bound.Get(0)));
      if (value.is_undefined() && bound.Get(1) != nullptr) value = *bound.Get(1);
      mapped.push_back(std::move(value));
    }
    return Value::MakeList(std::move(mapped));
  }
  if (!args.positional[0].is_string()) return absl::InvalidArgumentError("map(): filter name must be a string");
  const std::string filter_name = args.positional[0].AsString();
  CallArgs filter_args;
  filter_args.positional.assign(args.positional.begin() + 1, args.positional.end());
  filter_args.keyword = args.keyword;
  for (const Value& item : items) {
    DUET_ASSIGN_OR_RETURN(Value value, ApplyFilter(interpreter, filter_name, item, filter_args));
    mapped.push_back(std::move(value));
  }
  return Value::MakeList(std::move(mapped));
}

// Sort key for sort/unique/min/max: optional attribute, case folding.
absl::StatusOr<Value> SortKey(const Value& item, const Value* attribute, bool case_sensitive) {
  Value key = item;
  if (attribute != nullptr && !attribute->is_none()) {
    DUET_ASSIGN_OR_RETURN(key, GetAttributePath(item, *attribute));
  }
  if (!case_sensitive && key.is_string()) return Value::String(PyLower(key.AsString()));
  return key;
}

absl::StatusOr<Value> SortFilter(const Value& operand, const CallArgs& args) {
  DUET_ASSIGN_OR_RETURN(BoundArgs bound, BoundArgs::Bind("sort", args, {"reverse", "case_sensitive", "attribute"}));
  DUET_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(operand));
  std::vector<std::pair<Value, Value>> keyed;
  for (const Value& item : items) {
    DUET_ASSIGN_OR_RETURN(Value key, SortKey(item, bound.Get(2), bound.GetTruthy(1, false)));
    keyed.emplace_back(std::move(key), item);
  }
  const bool reverse = bound.GetTruthy(0, false);
  absl::Status error;
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    absl::StatusOr<bool> less = Compare("<", reverse ? b.first : a.first, reverse ? a.first : b.first);
    if (!less.ok()) {
      error.Update(less.status());
      return false;
    }
    return *less;
  });
  DUET_RETURN_IF_ERROR(error);
  std::vector<Value> sorted;
  for (auto& [key, item] : keyed) sorted.push_back(std::move(item));
  return Value::MakeList(std::move(sorted));
}

absl::StatusOr<Value> MinMaxFilter(const Value& operand, const CallArgs& args, bool want_max) {
  DUET_ASSIGN_OR_RETURN(BoundArgs bound, BoundArgs::Bind(want_max ? "max" : "min", args, {"case_sensitive", "attribute"}));
  DUET_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(operand));
  if (items.empty()) return Value::Undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  DUET_ASSIGN_OR_RETURN(Value best_key, SortKey(items[0], bound.Get(1), bound.GetTruthy(0, false)));
  for (size_t i = 1; i < items.size(); ++i) {
    DUET_ASSIGN_OR_RETURN(Value key, SortKey(items[i], bound.Get(1), bound.GetTruthy(0, false)));
    DUET_ASSIGN_OR_RETURN(bool better, Compare(want_max ? ">" : "<", key, best_key));
    if (better) {
      best = i;
      best_key = std::move(key);
    }
  }
  return items[best];
}

absl::StatusOr<Value> UniqueFilter(const Value& operand, const CallArgs& args) {
  DUET_ASSIGN_OR_RETURN(BoundArgs bound, BoundArgs::Bind("unique", args, {"case_sensitive", "attribute"}));
  DUET_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(operand));
  std::vector<Value> seen_keys;
  std::vector<Value> unique;
  for (const Value& item : items) {
    DUET_ASSIGN_OR_RETURN(Value key, SortKey(item, bound.Get(1), bound.GetTruthy(0, false)));
    if (std::any_of(seen_keys.begin(), seen_keys.end(), [&](const Value& k) { return PyEquals(k, key); })) continue;
    seen_keys.push_back(std::move(key));
    unique.push_back(item);
  }
  return Value::MakeList(std::move(unique));
}

absl::StatusOr<Value> IndentFilter(Interpreter& interpreter, const Value& operand, const CallArgs& args) {
  DUET_ASSIGN_OR_RETURN(BoundArgs bound, BoundArgs::Bind("indent", args, {"width", "first", "blank"}));
  if (operand.is_undefined()) return UndefinedError(operand);
  if (!operand.is_string()) {
    return absl::InvalidArgumentError(StrCat("indent(): expected a string, not ", operand.TypeName()));
  }
  std::string indentation = "    ";
  if (const Value* width = bound.Get(0)) {
    if (width->is_string()) {
      indentation = width->AsString();
    } else {
      DUET_ASSIGN_OR_RETURN(int64_t count, bound.GetInt(0, 4));
      indentation.assign(static_cast<size_t>(std::clamp<int64_t>(count, 0, 1024)), ' ');
    }
  }
  std::optional<Value> splitlines = LookupMethod(Value::String(ToPyStr(operand) + "\n"), "splitlines");
  DUET_ASSIGN_OR_RETURN(Value lines_value, splitlines->AsCallable().function(interpreter, CallArgs{}));
  const auto& lines = lines_value.AsList().items;
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i].AsString();
    if (i > 0) {
      out += "\n";
      if (!line.empty() || bound.GetTruthy(2, false)) out += indentation;
    }
    out += line;
    DUET_RETURN_IF_ERROR(CheckSize(interpreter, out.size()));
  }
  if (bound.GetTruthy(1, false)) out = indentation + out;
  return Value::String(std::move(out));
}

// jinja2's `title` filter (not str.title): words start after whitespace or
// one of "-({[<"; each word's first character is upper-cased, the rest lower.
std::string JinjaTitle(const std::string& text) {
  std::vector<size_t> offsets = CodePointOffsets(text);
  std::vector<char32_t> points = DecodeUtf8(text);
  const auto is_separator = [](char32_t c) {
    return IsPyWhitespace(c) || c == U'-' || c == U'(' || c == U'{' || c == U'[' || c == U'<';
  };
  std::string out;
  size_t i = 0;
  while (i < points.size()) {
    size_t end = i;
    const bool separator_run = is_separator(points[i]);
    while (end < points.size() && is_separator(points[end]) == separator_run) ++end;
    const std::string_view piece(text.data() + offsets[i], offsets[end] - offsets[i]);
    if (separator_run) {
      out.append(piece);
    } else {
      const size_t first_length = offsets[i + 1] - offsets[i];
      out += PyUpper(piece.substr(0, first_length));
      out += PyLower(piece.substr(first_length));
    }
    i = end;
  }
  return out;
}

std::string HtmlEscape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

absl::StatusOr<Value> FirstOrLast(const Value& operand, bool first) {
  DUET_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(operand));
  if (items.empty()) return Value::Undefined(first ? "No first item, sequence was empty." : "No last item, sequence was empty.");
  return first ? items.front() : items.back();
}

absl::StatusOr<Value> IntFilter(const Value& operand, const CallArgs& args) {
  DUET_ASSIGN_OR_RETURN(BoundArgs bound, BoundArgs::Bind("int", args, {"default", "base"}));
  DUET_ASSIGN_OR_RETURN(int64_t base, bound.GetInt(1, 10));
  const Value fallback = bound.Get(0) != nullptr ? *bound.Get(0) : Value::Int(0);
  if (operand.is_undefined()) return UndefinedError(operand);
  if (operand.is_int() || operand.is_bool()) return Value::Int(operand.AsInt());
  if (operand.is_float()) {
    double d = operand.AsDouble();
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return fallback;
    return Value::Int(static_cast<int64_t>(d));
  }
  if (operand.is_string()) {
    if (base >= 2 && base <= 36) {
      if (std::optional<int64_t> parsed = ParsePyInt(operand.AsString(), static_cast<int>(base))) {
        return Value::Int(*parsed);
      }
    }
    if (std::optional<double> parsed = ParsePyFloat(operand.AsString());
        parsed && std::isfinite(*parsed) && std::fabs(*parsed) < 9.2e18) {
      return Value::Int(static_cast<int64_t>(*parsed));
    }
  }
  return fallback;
}

absl::StatusOr<Value> FloatFilter(const Value& operand, const CallArgs& args) {
  DUET_ASSIGN_OR_RETURN(BoundArgs bound, BoundArgs::Bind("float", args, {"default"}));
  const Value fallback = bound.Get(0) != nullptr ? *bound.Get(0) : Value::Float(0.0);
  if (operand.is_undefined()) return UndefinedError(operand);
  if (operand.is_number()) return Value::Float(operand.AsDouble());
  if (operand.is_string()) {
    if (std::optional<double> parsed = ParsePyFloat(operand.AsString())) return Value::Float(*parsed);
  }
  return fallback;
}

absl::StatusOr<Value> NoArgFilter(std::string_view name, const CallArgs& args) {
  if (!args.positional.empty() || !args.keyword.empty()) {
    return absl::InvalidArgumentError(StrCat("filter '", name, "' takes no arguments"));
  }
  return Value();
}

}  // namespace

absl::StatusOr<Value> ApplyFilter(Interpreter& interpreter, std::string_view name, const Value& operand,
                                  const CallArgs& args) {
  if (name == "tojson") return ToJsonFilter(operand, args);
  if (name == "trim") {
    DUET_ASSIGN_OR_RETURN(BoundArgs bound, BoundArgs::Bind("trim", args, {"chars"}));
    const Value* chars = bound.Get(0);
    const std::string* set = (chars != nullptr && chars->is_string()) ? &chars->AsString() : nullptr;
    return Value::String(PyStrip(ToPyStr(operand), set, StripSide::kBoth));
  }
  if (name == "join") return Join(interpreter, operand, args);
  if (name == "default" || name == "d") {
    DUET_ASSIGN_OR_RETURN(BoundArgs bound, BoundArgs::Bind("default", args, {"default_value", "boolean"}));
    const bool use_default = operand.is_undefined() || (bound.GetTruthy(1, false) && !operand.Truthy());
    if (!use_default) return operand;
    return bound.Get(0) != nullptr ? *bound.Get(0) : Value::String("");
  }
  if (name == "select" || name == "reject") return SelectFilter(interpreter, operand, args, false, name == "select");
  if (name == "selectattr" || name == "rejectattr") {
    return SelectFilter(interpreter, operand, args, true, name == "selectattr");
  }
  if (name == "map") return MapFilter(interpreter, operand, args);
  if (name == "replace") {
    DUET_ASSIGN_OR_RETURN(BoundArgs bound, BoundArgs::Bind("replace", args, {"old", "new", "count"}, 2));
    CallArgs method_args;
    method_args.positional = {*bound.Get(0), *bound.Get(1)};
    if (bound.Get(2) != nullptr && !bound.Get(2)->is_none()) method_args.positional.push_back(*bound.Get(2));
    std::optional<Value> method = LookupMethod(Value::String(ToPyStr(operand)), "replace");
    return method->AsCallable().function(interpreter, method_args);
  }
  if (name == "sort") return SortFilter(operand, args);
  if (name == "unique") return UniqueFilter(operand, args);
  if (name == "min" || name == "max") return MinMaxFilter(operand, args, name == "max");
  if (name == "indent") return IndentFilter(interpreter, operand, args);
  if (name == "int") return IntFilter(operand, args);
  if (name == "float") return FloatFilter(operand, args);
  if (name == "sum") {
    DUET_ASSIGN_OR_RETURN(BoundArgs bound, BoundArgs::Bind("sum", args, {"attribute", "start"}));
    DUET_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(operand));
    Value total = bound.Get(1) != nullptr ? *bound.Get(1) : Value::Int(0);
    for (const Value& item : items) {
      Value term = item;
      if (bound.Get(0) != nullptr) {
        DUET_ASSIGN_OR_RETURN(term, GetAttributePath(item, *bound.Get(0)));
      }
      DUET_ASSIGN_OR_RETURN(total, BinaryOperation("+", total, term, interpreter.limits().max_output_bytes));
    }
    return total;
  }

  DUET_RETURN_IF_ERROR(NoArgFilter(name, args).status());
  if (name == "length" || name == "count") {
    DUET_ASSIGN_OR_RETURN(int64_t length, Length(operand));
    return Value::Int(length);
  }
  if (name == "string") return Value::String(ToPyStr(operand));
  if (name == "safe") return operand.is_string() ? operand : Value::String(ToPyStr(operand));
  if (name == "escape" || name == "e") return Value::String(HtmlEscape(ToPyStr(operand)));
  if (name == "upper") return Value::String(PyUpper(ToPyStr(operand)));
  if (name == "lower") return Value::String(PyLower(ToPyStr(operand)));
  if (name == "capitalize") return Value::String(PyCapitalize(ToPyStr(operand)));
  if (name == "title") return Value::String(JinjaTitle(ToPyStr(operand)));
  if (name == "first" || name == "last") return FirstOrLast(operand, name == "first");
  if (name == "list") {
    DUET_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(operand));
    return Value::MakeList(std::move(items));
  }
  if (name == "items") {
    if (operand.is_undefined()) return Value::MakeList({});
    if (!operand.is_dict()) return absl::InvalidArgumentError("Can only get item pairs from a mapping.");
    std::vector<Value> pairs;
    for (const auto& [key, value] : operand.AsDict().entries) {
      DUET_ASSIGN_OR_RETURN(Value pair, Value::MakeList({key, value}, /*is_tuple=*/true));
      pairs.push_back(std::move(pair));
    }
    return Value::MakeList(std::move(pairs));
  }
  if (name == "reverse") {
    if (operand.is_string()) {
      return GetSlice(operand, Value::None(), Value::None(), Value::Int(-1));
    }
    DUET_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(operand));
    std::reverse(items.begin(), items.end());
    return Value::MakeList(std::move(items));
  }
  if (name == "abs") {
    if (operand.is_float()) return Value::Float(std::fabs(operand.AsDouble()));
    if (operand.is_int() || operand.is_bool()) return Negate(operand, operand.AsInt() < 0);
    return absl::InvalidArgumentError(StrCat("bad operand type for abs(): '", operand.TypeName(), "'"));
  }
  return absl::InvalidArgumentError(StrCat("no filter named '", name, "'"));
}

absl::StatusOr<bool> ApplyTest(Interpreter& interpreter, std::string_view name, const Value& operand,
                               const CallArgs& args) {
  static constexpr std::pair<std::string_view, std::string_view> kComparisons[] = {
      {"==", "=="}, {"eq", "=="}, {"equalto", "=="}, {"!=", "!="}, {"ne", "!="},
      {"<", "<"},   {"lt", "<"},  {"lessthan", "<"}, {"<=", "<="}, {"le", "<="},
      {">", ">"},   {"gt", ">"},  {"greaterthan", ">"}, {">=", ">="}, {"ge", ">="},
  };
  for (const auto& [test_name, op] : kComparisons) {
    if (name != test_name) continue;
    DUET_ASSIGN_OR_RETURN(BoundArgs bound, BoundArgs::Bind(name, args, {"other"}, 1));
    return Compare(op, operand, *bound.Get(0));
  }
  if (name == "in") {
    DUET_ASSIGN_OR_RETURN(BoundArgs bound, BoundArgs::Bind("in", args, {"seq"}, 1));
    return Contains(*bound.Get(0), operand);
  }
  if (name == "sameas") {
    DUET_ASSIGN_OR_RETURN(BoundArgs bound, BoundArgs::Bind("sameas", args, {"other"}, 1));
    const Value& other = *bound.Get(0);
    if (operand.kind() != other.kind()) return false;
    if (operand.is_list() || operand.is_dict()) return false;  // distinct objects unless literally the same
    return PyEquals(operand, other);
  }
  if (name == "divisibleby") {
    DUET_ASSIGN_OR_RETURN(BoundArgs bound, BoundArgs::Bind("divisibleby", args, {"num"}, 1));
    DUET_ASSIGN_OR_RETURN(Value remainder, BinaryOperation("%", operand, *bound.Get(0), 0));
    return PyEquals(remainder, Value::Int(0));
  }
  if (!args.positional.empty() || !args.keyword.empty()) {
    return absl::InvalidArgumentError(StrCat("test '", name, "' takes no arguments"));
  }
  if (name == "defined") return !operand.is_undefined();
  if (name == "undefined") return operand.is_undefined();
  if (name == "none") return operand.is_none();
  if (name == "boolean") return operand.is_bool();
  if (name == "true") return operand.is_bool() && operand.AsBool();
  if (name == "false") return operand.is_bool() && !operand.AsBool();
  if (name == "integer") return operand.is_int();
  if (name == "float") return operand.is_float();
  if (name == "number") return operand.is_number();
  if (name == "string") return operand.is_string();
  if (name == "mapping") return operand.is_dict();
  if (name == "iterable" || name == "sequence") {
    return operand.is_undefined() || operand.is_string() || operand.is_list() || operand.is_dict();
  }
  // jinja2's Undefined defines __call__ (to raise), so Python calls it callable.
  if (name == "callable") return operand.is_callable() || operand.is_undefined();
  if (name == "escaped") return false;
  if (name == "odd" || name == "even") {
    DUET_ASSIGN_OR_RETURN(Value remainder, BinaryOperation("%", operand, Value::Int(2), 0));
    return PyEquals(remainder, Value::Int(name == "odd" ? 1 : 0));
  }
  if (name == "lower" || name == "upper") {
    const std::string text = ToPyStr(operand);
    const std::string lower = PyLower(text);
    const std::string upper = PyUpper(text);
    if (lower == upper) return false;  // no cased characters
    return name == "lower" ? text == lower : text == upper;
  }
  return absl::InvalidArgumentError(StrCat("no test named '", name, "'"));
}

}  // namespace duet::chat_template
