#include "router/grammar/json_schema_grammar.h"

#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include "common/str_cat.h"
#include "glog/logging.h"
#include "router/grammar/regex_grammar.h"

namespace duet::grammar {
namespace {

using Json = nlohmann::ordered_json;

constexpr int kMaxDepth = 64;
constexpr int64_t kMaxLengthBound = 10000;

const std::set<std::string>& AnnotationKeywords() {
  static const auto* keywords = new std::set<std::string>{
      "title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated",
      "readOnly", "writeOnly", "$defs", "definitions"};
  return *keywords;
}

const std::set<std::string>& ConstraintKeywords() {
  static const auto* keywords = new std::set<std::string>{
      "type", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "properties", "required",
      "additionalProperties", "items", "minItems", "maxItems", "minLength", "maxLength", "pattern",
      "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"};
  return *keywords;
}

absl::Status Unsupported(std::string_view keyword, std::string_view detail = "") {
  return absl::InvalidArgumentError(StrCat("JSON Schema keyword '", keyword, "' is not supported",
                                           detail.empty() ? "" : ": ", detail));
}

absl::Status Invalid(std::string_view keyword, std::string_view detail) {
  return absl::InvalidArgumentError(StrCat("JSON Schema keyword '", keyword, "' ", detail));
}

std::string PowerOfTen(size_t digits) { return "1" + std::string(digits, '0'); }

class SchemaCompiler {
 public:
  SchemaCompiler(const Json& root, Grammar* grammar) : root_(root), grammar_(*grammar) {}

  absl::StatusOr<Sequence> Compile() { return Schema(root_, 0); }

  Sequence AnyObject() { return {Grammar::RuleElement(ObjectAnyRule())}; }

 private:
  // --- Shared rules for unconstrained values -------------------------------

  CharClass PlainStringChar() { return CharClass::Of({{0, 0x1F}, {'"', '"'}, {'\\', '\\'}}).Complement(); }

  int32_t EscapeRule() {
    if (escape_rule_ < 0) {
      const CharClass hex = CharClass::Of({{'0', '9'}, {'A', 'F'}, {'a', 'f'}});
      std::vector<Sequence> alternatives;
      alternatives.push_back({grammar_.ClassElement(CharClass::Of(
          {{'"', '"'}, {'/', '/'}, {'\\', '\\'}, {'b', 'b'}, {'f', 'f'}, {'n', 'n'}, {'r', 'r'}, {'t', 't'}}))});
      alternatives.push_back({grammar_.ClassElement(CharClass::Single('u')), grammar_.ClassElement(hex),
                              grammar_.ClassElement(hex), grammar_.ClassElement(hex), grammar_.ClassElement(hex)});
      escape_rule_ = grammar_.Choice(std::move(alternatives), "escape");
    }
    return escape_rule_;
  }

  // One character of string content: plain or an escape.
  int32_t StringCharRule() {
    if (string_char_rule_ < 0) {
      std::vector<Sequence> alternatives;
      alternatives.push_back({grammar_.ClassElement(PlainStringChar())});
      alternatives.push_back({grammar_.ClassElement(CharClass::Single('\\')), Grammar::RuleElement(EscapeRule())});
      string_char_rule_ = grammar_.Choice(std::move(alternatives), "string-char");
    }
    return string_char_rule_;
  }

  // '"' plain* tail;  tail ::= '"' | '\' escape plain* tail.
  int32_t StringRule() {
    if (string_rule_ < 0) {
      const int32_t tail = grammar_.AddRule("string-tail");
      grammar_.AddAlternative(tail, grammar_.Literal("\""));
      grammar_.AddAlternative(tail, {grammar_.ClassElement(CharClass::Single('\\')),
                                     Grammar::RuleElement(EscapeRule()), grammar_.StarElement(PlainStringChar()),
                                     Grammar::RuleElement(tail)});
      string_rule_ = grammar_.AddRule("string");
      grammar_.AddAlternative(string_rule_, {grammar_.ClassElement(CharClass::Single('"')),
                                             grammar_.StarElement(PlainStringChar()), Grammar::RuleElement(tail)});
    }
    return string_rule_;
  }

  // '0' | [1-9][0-9]*
  Sequence NaturalDigits() {
    if (natural_rule_ < 0) {
      natural_rule_ = grammar_.AddRule("digits");
      grammar_.AddAlternative(natural_rule_, grammar_.Literal("0"));
      grammar_.AddAlternative(natural_rule_, {grammar_.ClassElement(CharClass::Of({{'1', '9'}})),
                                              grammar_.StarElement(CharClass::Of({{'0', '9'}}))});
    }
    return {Grammar::RuleElement(natural_rule_)};
  }

  int32_t IntegerRule() {
    if (integer_rule_ < 0) {
      integer_rule_ = grammar_.AddRule("integer");
      const int32_t sign = grammar_.Optional(grammar_.Literal("-"), "sign");
      Sequence body = {Grammar::RuleElement(sign)};
      const Sequence digits = NaturalDigits();
      body.insert(body.end(), digits.begin(), digits.end());
      grammar_.AddAlternative(integer_rule_, std::move(body));
    }
    return integer_rule_;
  }

  int32_t NumberRule() {
    if (number_rule_ < 0) {
      const CharClass digit = CharClass::Of({{'0', '9'}});
      const int32_t fraction = grammar_.Optional(
          {grammar_.ClassElement(CharClass::Single('.')), grammar_.ClassElement(digit), grammar_.StarElement(digit)},
          "fraction");
      const int32_t exponent_sign = grammar_.Optional({grammar_.ClassElement(CharClass::Of({{'+', '+'}, {'-', '-'}}))},
                                                      "exponent-sign");
      const int32_t exponent = grammar_.Optional(
          {grammar_.ClassElement(CharClass::Of({{'E', 'E'}, {'e', 'e'}})), Grammar::RuleElement(exponent_sign),
           grammar_.ClassElement(digit), grammar_.StarElement(digit)},
          "exponent");
      number_rule_ = grammar_.AddRule("number");
      grammar_.AddAlternative(number_rule_, {Grammar::RuleElement(IntegerRule()), Grammar::RuleElement(fraction),
                                             Grammar::RuleElement(exponent)});
    }
    return number_rule_;
  }

  int32_t ValueRule() {
    if (value_rule_ < 0) {
      value_rule_ = grammar_.AddRule("value");
      grammar_.AddAlternative(value_rule_, {Grammar::RuleElement(ObjectAnyRule())});
      grammar_.AddAlternative(value_rule_, {Grammar::RuleElement(ArrayAnyRule())});
      grammar_.AddAlternative(value_rule_, {Grammar::RuleElement(StringRule())});
      grammar_.AddAlternative(value_rule_, {Grammar::RuleElement(NumberRule())});
      grammar_.AddAlternative(value_rule_, grammar_.Literal("true"));
      grammar_.AddAlternative(value_rule_, grammar_.Literal("false"));
      grammar_.AddAlternative(value_rule_, grammar_.Literal("null"));
    }
    return value_rule_;
  }

  int32_t ObjectAnyRule() {
    if (object_any_rule_ < 0) {
      object_any_rule_ = grammar_.AddRule("object");
      ValueRule();  // the members refer to it
      Sequence member = {Grammar::RuleElement(StringRule())};
      Append(&member, grammar_.Literal(": "));
      member.push_back(Grammar::RuleElement(value_rule_));
      Sequence more = grammar_.Literal(", ");
      Append(&more, member);
      const int32_t rest = grammar_.Star(more, "members");
      grammar_.AddAlternative(object_any_rule_, grammar_.Literal("{}"));
      Sequence full = grammar_.Literal("{");
      Append(&full, member);
      full.push_back(Grammar::RuleElement(rest));
      Append(&full, grammar_.Literal("}"));
      grammar_.AddAlternative(object_any_rule_, std::move(full));
    }
    return object_any_rule_;
  }

  int32_t ArrayAnyRule() {
    if (array_any_rule_ < 0) {
      array_any_rule_ = grammar_.AddRule("array");
      const int32_t value = ValueRule();
      Sequence more = grammar_.Literal(", ");
      more.push_back(Grammar::RuleElement(value));
      const int32_t rest = grammar_.Star(more, "items");
      grammar_.AddAlternative(array_any_rule_, grammar_.Literal("[]"));
      Sequence full = grammar_.Literal("[");
      full.push_back(Grammar::RuleElement(value));
      full.push_back(Grammar::RuleElement(rest));
      Append(&full, grammar_.Literal("]"));
      grammar_.AddAlternative(array_any_rule_, std::move(full));
    }
    return array_any_rule_;
  }

  static void Append(Sequence* out, const Sequence& more) { out->insert(out->end(), more.begin(), more.end()); }

  // --- Schemas ---------------------------------------------------------------

  absl::StatusOr<Sequence> Schema(const Json& schema, int depth) {
    if (depth > kMaxDepth) return absl::InvalidArgumentError("JSON Schema nests deeper than 64 levels");
    if (schema.is_boolean()) {
      if (schema.get<bool>()) return Sequence{Grammar::RuleElement(ValueRule())};
      return absl::InvalidArgumentError("JSON Schema 'false' matches nothing");
    }
    if (!schema.is_object()) return absl::InvalidArgumentError("a JSON Schema must be an object or a boolean");
    for (const auto& [key, value] : schema.items()) {
      if (!AnnotationKeywords().contains(key) && !ConstraintKeywords().contains(key)) return Unsupported(key);
    }
    if (schema.contains("$ref")) {
      for (const auto& [key, value] : schema.items()) {
        if (key != "$ref" && ConstraintKeywords().contains(key)) {
          return Unsupported(key, "beside $ref");
        }
      }
      return Reference(schema["$ref"], depth);
    }
    if (schema.contains("enum") || schema.contains("const")) return EnumOrConst(schema);
    for (const char* combiner : {"anyOf", "oneOf"}) {
      if (!schema.contains(combiner)) continue;
      if (schema.contains("type") || schema.contains("allOf")) return Unsupported(combiner, "beside type or allOf");
      const Json& options = schema[combiner];
      if (!options.is_array() || options.empty()) return Invalid(combiner, "must be a non-empty array");
      std::vector<Sequence> alternatives;
      for (const Json& option : options) {
        absl::StatusOr<Sequence> compiled = Schema(option, depth + 1);
        if (!compiled.ok()) return compiled.status();
        alternatives.push_back(std::move(*compiled));
      }
      return Sequence{Grammar::RuleElement(grammar_.Choice(std::move(alternatives), combiner))};
    }
    if (schema.contains("allOf")) {
      const Json& parts = schema["allOf"];
      if (!parts.is_array() || parts.size() != 1) return Unsupported("allOf", "only a single schema is supported");
      for (const auto& [key, value] : schema.items()) {
        if (key != "allOf" && ConstraintKeywords().contains(key)) return Unsupported(key, "beside allOf");
      }
      return Schema(parts[0], depth + 1);
    }
    std::vector<std::string> types;
    if (schema.contains("type")) {
      const Json& type = schema["type"];
      if (type.is_string()) {
        types.push_back(type.get<std::string>());
      } else if (type.is_array() && !type.empty()) {
        for (const Json& item : type) {
          if (!item.is_string()) return Invalid("type", "must be a string or an array of strings");
          types.push_back(item.get<std::string>());
        }
      } else {
        return Invalid("type", "must be a string or an array of strings");
      }
    } else {
      types = ImpliedTypes(schema);
    }
    if (types.empty()) return Sequence{Grammar::RuleElement(ValueRule())};
    std::vector<Sequence> alternatives;
    for (const std::string& type : types) {
      absl::StatusOr<Sequence> compiled = Typed(schema, type, depth);
      if (!compiled.ok()) return compiled.status();
      alternatives.push_back(std::move(*compiled));
    }
    if (alternatives.size() == 1) return std::move(alternatives[0]);
    return Sequence{Grammar::RuleElement(grammar_.Choice(std::move(alternatives), "types"))};
  }

  // Without "type", the keywords say which type is meant.
  static std::vector<std::string> ImpliedTypes(const Json& schema) {
    std::vector<std::string> types;
    auto any = [&](std::initializer_list<const char*> keys) {
      for (const char* key : keys) {
        if (schema.contains(key)) return true;
      }
      return false;
    };
    if (any({"properties", "required", "additionalProperties"})) types.push_back("object");
    if (any({"items", "minItems", "maxItems"})) types.push_back("array");
    if (any({"minLength", "maxLength", "pattern", "format"})) types.push_back("string");
    if (any({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})) types.push_back("number");
    return types;
  }

  absl::StatusOr<Sequence> Typed(const Json& schema, const std::string& type, int depth) {
    if (type == "string") return String(schema);
    if (type == "integer") return Integer(schema);
    if (type == "number") {
      for (const char* bound : {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}) {
        if (schema.contains(bound)) return Unsupported(bound, "bounds are supported on integers only");
      }
      return Sequence{Grammar::RuleElement(NumberRule())};
    }
    if (type == "boolean") {
      return Sequence{Grammar::RuleElement(
          grammar_.Choice({grammar_.Literal("true"), grammar_.Literal("false")}, "boolean"))};
    }
    if (type == "null") return grammar_.Literal("null");
    if (type == "object") return Object(schema, depth);
    if (type == "array") return Array(schema, depth);
    return Invalid("type", StrCat("names an unknown type '", type, "'"));
  }

  absl::StatusOr<Sequence> Reference(const Json& ref, int depth) {
    if (!ref.is_string()) return Invalid("$ref", "must be a string");
    const std::string path = ref.get<std::string>();
    auto known = ref_rules_.find(path);
    if (known != ref_rules_.end()) return Sequence{Grammar::RuleElement(known->second)};
    const Json* target = nullptr;
    if (path == "#") {
      target = &root_;
    } else {
      for (const char* prefix : {"#/$defs/", "#/definitions/"}) {
        const std::string_view p(prefix);
        if (path.rfind(p, 0) != 0) continue;
        const std::string container(p.substr(2, p.size() - 3));
        const std::string name = path.substr(p.size());
        if (root_.contains(container) && root_[container].is_object() && root_[container].contains(name)) {
          target = &root_[container][name];
        }
      }
    }
    if (target == nullptr) return Invalid("$ref", StrCat("points to '", path, "', which is not in the schema"));
    const int32_t rule = grammar_.AddRule(StrCat("ref ", path));
    ref_rules_[path] = rule;
    absl::StatusOr<Sequence> body = Schema(*target, depth + 1);
    if (!body.ok()) return body.status();
    grammar_.AddAlternative(rule, std::move(*body));
    return Sequence{Grammar::RuleElement(rule)};
  }

  absl::StatusOr<Sequence> EnumOrConst(const Json& schema) {
    std::vector<Sequence> alternatives;
    if (schema.contains("const")) {
      alternatives.push_back(grammar_.Literal(JsonLayout(schema["const"])));
    } else {
      const Json& values = schema["enum"];
      if (!values.is_array() || values.empty()) return Invalid("enum", "must be a non-empty array");
      for (const Json& value : values) alternatives.push_back(grammar_.Literal(JsonLayout(value)));
    }
    if (alternatives.size() == 1) return std::move(alternatives[0]);
    return Sequence{Grammar::RuleElement(grammar_.Choice(std::move(alternatives), "enum"))};
  }

  absl::StatusOr<std::optional<int64_t>> Count(const Json& schema, const char* keyword) {
    if (!schema.contains(keyword)) return std::optional<int64_t>();
    const Json& value = schema[keyword];
    if (!value.is_number_integer() || value.get<int64_t>() < 0) {
      return Invalid(keyword, "must be a non-negative integer");
    }
    if (value.get<int64_t>() > kMaxLengthBound) return Unsupported(keyword, "values over 10000");
    return std::optional<int64_t>(value.get<int64_t>());
  }

  absl::StatusOr<Sequence> String(const Json& schema) {
    absl::StatusOr<std::optional<int64_t>> min_length = Count(schema, "minLength");
    if (!min_length.ok()) return min_length.status();
    absl::StatusOr<std::optional<int64_t>> max_length = Count(schema, "maxLength");
    if (!max_length.ok()) return max_length.status();
    const bool has_length = min_length->has_value() || max_length->has_value();
    std::optional<std::string> pattern;
    if (schema.contains("pattern")) {
      if (!schema["pattern"].is_string()) return Invalid("pattern", "must be a string");
      pattern = schema["pattern"].get<std::string>();
    }
    if (schema.contains("format")) {
      if (!schema["format"].is_string()) return Invalid("format", "must be a string");
      if (pattern) return Unsupported("format", "beside pattern");
      const std::string format = schema["format"].get<std::string>();
      pattern = FormatPattern(format);
      if (!pattern) return Unsupported("format", StrCat("'", format, "' (supported: date, time, date-time, uuid, ipv4)"));
    }
    if (pattern) {
      if (has_length) return Unsupported(schema.contains("pattern") ? "pattern" : "format", "beside minLength/maxLength");
      absl::StatusOr<Sequence> content = CompileRegex(*pattern, /*json_string=*/true, &grammar_);
      if (!content.ok()) {
        return absl::InvalidArgumentError(StrCat("JSON Schema keyword 'pattern': ", content.status().message()));
      }
      Sequence out = grammar_.Literal("\"");
      Append(&out, *content);
      Append(&out, grammar_.Literal("\""));
      return out;
    }
    if (!has_length) return Sequence{Grammar::RuleElement(StringRule())};
    const int64_t min_count = min_length->value_or(0);
    const int64_t max_count = max_length->has_value() ? **max_length : -1;
    if (max_count >= 0 && max_count < min_count) return Invalid("maxLength", "is below minLength");
    Sequence out = grammar_.Literal("\"");
    out.push_back(Grammar::RuleElement(
        grammar_.Repeat({Grammar::RuleElement(StringCharRule())}, min_count, max_count, "string{}")));
    Append(&out, grammar_.Literal("\""));
    return out;
  }

  static std::optional<std::string> FormatPattern(const std::string& format) {
    const std::string date = "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])";
    const std::string time =
        "([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])";
    const std::string octet = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
    if (format == "date") return date;
    if (format == "time") return time;
    if (format == "date-time") return date + "T" + time;
    if (format == "uuid") return "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
    if (format == "ipv4") return "(" + octet + "\\.){3}" + octet;
    return std::nullopt;
  }

  // --- Integers in a range -------------------------------------------------

  Sequence DigitsOf(const std::string& prefix) {
    Sequence out;
    for (char c : prefix) out.push_back(grammar_.ClassElement(CharClass::Single(c)));
    return out;
  }

  // Decimal strings of a's length from a to b (same length, a <= b).
  void SameLength(const std::string& a, const std::string& b, const Sequence& prefix, std::vector<Sequence>* out) {
    if (a.empty()) {
      out->push_back(prefix);
      return;
    }
    const CharClass any_digit = CharClass::Of({{'0', '9'}});
    const size_t rest = a.size() - 1;
    auto with = [&](char first) {
      Sequence next = prefix;
      next.push_back(grammar_.ClassElement(CharClass::Single(first)));
      return next;
    };
    if (a[0] == b[0]) {
      SameLength(a.substr(1), b.substr(1), with(a[0]), out);
      return;
    }
    const bool low_zeros = a.find_first_not_of('0', 1) == std::string::npos;
    const bool high_nines = b.find_first_not_of('9', 1) == std::string::npos;
    char middle_first = a[0];
    char middle_last = b[0];
    if (!low_zeros) {
      SameLength(a.substr(1), std::string(rest, '9'), with(a[0]), out);
      ++middle_first;
    }
    if (!high_nines) --middle_last;
    if (middle_first <= middle_last) {
      Sequence middle = prefix;
      middle.push_back(grammar_.ClassElement(CharClass::Of({{static_cast<uint32_t>(middle_first),
                                                             static_cast<uint32_t>(middle_last)}})));
      for (size_t i = 0; i < rest; ++i) middle.push_back(grammar_.ClassElement(any_digit));
      out->push_back(std::move(middle));
    }
    if (!high_nines) SameLength(std::string(rest, '0'), b.substr(1), with(b[0]), out);
  }

  // Naturals in [low, high] (high absent: unbounded), without leading zeros.
  void NaturalRange(uint64_t low, std::optional<uint64_t> high, const Sequence& prefix, std::vector<Sequence>* out) {
    const std::string low_text = std::to_string(low);
    const size_t top_digits = high ? std::to_string(*high).size() : low_text.size();
    for (size_t digits = low_text.size(); digits <= top_digits; ++digits) {
      const std::string first = digits == low_text.size() ? low_text : PowerOfTen(digits - 1);
      const std::string last = high && digits == top_digits ? std::to_string(*high) : std::string(digits, '9');
      SameLength(first, last, prefix, out);
    }
    if (!high) {
      // Every number with more digits.
      const CharClass any_digit = CharClass::Of({{'0', '9'}});
      Sequence longer = prefix;
      longer.push_back(grammar_.ClassElement(CharClass::Of({{'1', '9'}})));
      for (size_t i = 0; i < low_text.size(); ++i) longer.push_back(grammar_.ClassElement(any_digit));
      longer.push_back(grammar_.StarElement(any_digit));
      out->push_back(std::move(longer));
    }
  }

  absl::StatusOr<std::optional<double>> Bound(const Json& schema, const char* keyword) {
    if (!schema.contains(keyword)) return std::optional<double>();
    const Json& value = schema[keyword];
    if (!value.is_number()) return Invalid(keyword, "must be a number");
    const double number = value.get<double>();
    if (!std::isfinite(number) || std::fabs(number) > 1e18) return Unsupported(keyword, "values beyond ±1e18");
    return std::optional<double>(number);
  }

  absl::StatusOr<Sequence> Integer(const Json& schema) {
    std::optional<int64_t> low;
    std::optional<int64_t> high;
    for (const char* keyword : {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"}) {
      absl::StatusOr<std::optional<double>> bound = Bound(schema, keyword);
      if (!bound.ok()) return bound.status();
      if (!bound->has_value()) continue;
      const std::string_view name(keyword);
      const double value = **bound;
      if (name == "minimum" || name == "exclusiveMinimum") {
        int64_t candidate = static_cast<int64_t>(std::ceil(value));
        if (name == "exclusiveMinimum" && static_cast<double>(candidate) == value) ++candidate;
        low = low ? std::max(*low, candidate) : candidate;
      } else {
        int64_t candidate = static_cast<int64_t>(std::floor(value));
        if (name == "exclusiveMaximum" && static_cast<double>(candidate) == value) --candidate;
        high = high ? std::min(*high, candidate) : candidate;
      }
    }
    if (!low && !high) return Sequence{Grammar::RuleElement(IntegerRule())};
    if (low && high && *low > *high) return Invalid("minimum", "leaves no integer below maximum");
    std::vector<Sequence> alternatives;
    const Sequence minus = grammar_.Literal("-");
    // Negative part: magnitudes from max(1, -high) to -low.
    if (!low || *low < 0) {
      const uint64_t magnitude_low = high && *high < 0 ? static_cast<uint64_t>(-*high) : 1;
      std::optional<uint64_t> magnitude_high;
      if (low) magnitude_high = static_cast<uint64_t>(-*low);
      NaturalRange(magnitude_low, magnitude_high, minus, &alternatives);
    }
    if (!high || *high >= 0) {
      const uint64_t natural_low = low && *low > 0 ? static_cast<uint64_t>(*low) : 0;
      std::optional<uint64_t> natural_high;
      if (high) natural_high = static_cast<uint64_t>(*high);
      NaturalRange(natural_low, natural_high, {}, &alternatives);
    }
    return Sequence{Grammar::RuleElement(grammar_.Choice(std::move(alternatives), "integer-range"))};
  }

  // --- Objects and arrays ----------------------------------------------------

  absl::StatusOr<Sequence> Object(const Json& schema, int depth) {
    std::vector<std::pair<std::string, const Json*>> properties;
    if (schema.contains("properties")) {
      if (!schema["properties"].is_object()) return Invalid("properties", "must be an object");
      for (const auto& [name, property] : schema["properties"].items()) properties.push_back({name, &property});
    }
    std::set<std::string> required;
    if (schema.contains("required")) {
      if (!schema["required"].is_array()) return Invalid("required", "must be an array of strings");
      for (const Json& name : schema["required"]) {
        if (!name.is_string()) return Invalid("required", "must be an array of strings");
        required.insert(name.get<std::string>());
      }
    }
    for (const std::string& name : required) {
      bool listed = false;
      for (const auto& property : properties) listed = listed || property.first == name;
      if (!listed) return Invalid("required", StrCat("names '", name, "', which is not in properties"));
    }
    // Extra members, when additionalProperties allows them.
    std::optional<Sequence> extra;
    if (schema.contains("additionalProperties")) {
      const Json& additional = schema["additionalProperties"];
      if (!(additional.is_boolean() && !additional.get<bool>())) {
        absl::StatusOr<Sequence> value = Schema(additional, depth + 1);
        if (!value.ok()) return value.status();
        Sequence member = {Grammar::RuleElement(StringRule())};
        Append(&member, grammar_.Literal(": "));
        Append(&member, *value);
        extra = std::move(member);
      }
    }
    // after[i]: properties i.. when one was already written (each preceded by
    // ", "); first[i]: the same when none was.
    const size_t count = properties.size();
    std::vector<int32_t> after(count + 1);
    std::vector<int32_t> first(count + 1);
    after[count] = grammar_.AddRule("object-rest");
    first[count] = grammar_.AddRule("object-rest");
    if (extra) {
      Sequence more = grammar_.Literal(", ");
      Append(&more, *extra);
      const int32_t extras = grammar_.Star(more, "extra-members");
      grammar_.AddAlternative(after[count], {Grammar::RuleElement(extras)});
      Sequence leading = *extra;
      leading.push_back(Grammar::RuleElement(extras));
      grammar_.AddAlternative(first[count], std::move(leading));
      grammar_.AddAlternative(first[count], {});
    } else {
      grammar_.AddAlternative(after[count], {});
      grammar_.AddAlternative(first[count], {});
    }
    for (size_t i = count; i-- > 0;) {
      absl::StatusOr<Sequence> value = Schema(*properties[i].second, depth + 1);
      if (!value.ok()) return value.status();
      Sequence member = grammar_.Literal(JsonLayout(Json(properties[i].first)) + ": ");
      Append(&member, *value);
      const bool is_required = required.contains(properties[i].first);
      after[i] = grammar_.AddRule(StrCat("after ", properties[i].first));
      first[i] = grammar_.AddRule(StrCat("first ", properties[i].first));
      Sequence written_after = grammar_.Literal(", ");
      Append(&written_after, member);
      written_after.push_back(Grammar::RuleElement(after[i + 1]));
      grammar_.AddAlternative(after[i], std::move(written_after));
      Sequence written_first = member;
      written_first.push_back(Grammar::RuleElement(after[i + 1]));
      grammar_.AddAlternative(first[i], std::move(written_first));
      if (!is_required) {
        grammar_.AddAlternative(after[i], {Grammar::RuleElement(after[i + 1])});
        grammar_.AddAlternative(first[i], {Grammar::RuleElement(first[i + 1])});
      }
    }
    Sequence out = grammar_.Literal("{");
    out.push_back(Grammar::RuleElement(first[0]));
    Append(&out, grammar_.Literal("}"));
    return out;
  }

  absl::StatusOr<Sequence> Array(const Json& schema, int depth) {
    Sequence item = {Grammar::RuleElement(ValueRule())};
    if (schema.contains("items")) {
      absl::StatusOr<Sequence> compiled = Schema(schema["items"], depth + 1);
      if (!compiled.ok()) return compiled.status();
      item = std::move(*compiled);
    }
    absl::StatusOr<std::optional<int64_t>> min_items = Count(schema, "minItems");
    if (!min_items.ok()) return min_items.status();
    absl::StatusOr<std::optional<int64_t>> max_items = Count(schema, "maxItems");
    if (!max_items.ok()) return max_items.status();
    const int64_t min_count = min_items->value_or(0);
    const int64_t max_count = max_items->has_value() ? **max_items : -1;
    if (max_count >= 0 && max_count < min_count) return Invalid("maxItems", "is below minItems");
    if (max_count == 0) return grammar_.Literal("[]");
    // item (", " item){min-1, max-1}
    const int32_t item_rule = grammar_.AddRule("item");
    grammar_.AddAlternative(item_rule, item);
    Sequence more = grammar_.Literal(", ");
    more.push_back(Grammar::RuleElement(item_rule));
    const int32_t rest = grammar_.Repeat(more, std::max<int64_t>(min_count - 1, 0),
                                         max_count < 0 ? -1 : max_count - 1, "more-items");
    Sequence items = {Grammar::RuleElement(item_rule), Grammar::RuleElement(rest)};
    Sequence out = grammar_.Literal("[");
    if (min_count == 0) {
      out.push_back(Grammar::RuleElement(grammar_.Optional(items, "items")));
    } else {
      Append(&out, items);
    }
    Append(&out, grammar_.Literal("]"));
    return out;
  }

  const Json& root_;
  Grammar& grammar_;
  std::map<std::string, int32_t> ref_rules_;
  int32_t escape_rule_ = -1;
  int32_t string_char_rule_ = -1;
  int32_t string_rule_ = -1;
  int32_t natural_rule_ = -1;
  int32_t integer_rule_ = -1;
  int32_t number_rule_ = -1;
  int32_t value_rule_ = -1;
  int32_t object_any_rule_ = -1;
  int32_t array_any_rule_ = -1;
};

}  // namespace

std::string JsonLayout(const nlohmann::ordered_json& value) {
  if (value.is_object()) {
    std::string out = "{";
    bool first = true;
    for (const auto& [key, member] : value.items()) {
      if (!first) out += ", ";
      first = false;
      out += Json(key).dump(-1, ' ', false) + ": " + JsonLayout(member);
    }
    return out + "}";
  }
  if (value.is_array()) {
    std::string out = "[";
    for (size_t i = 0; i < value.size(); ++i) {
      if (i > 0) out += ", ";
      out += JsonLayout(value[i]);
    }
    return out + "]";
  }
  return value.dump(-1, ' ', false);
}

absl::StatusOr<Sequence> CompileJsonSchema(const nlohmann::ordered_json& schema, Grammar* grammar) {
  return SchemaCompiler(schema, grammar).Compile();
}

absl::StatusOr<Grammar> JsonSchemaGrammar(const nlohmann::ordered_json& schema) {
  Grammar grammar;
  absl::StatusOr<Sequence> top = CompileJsonSchema(schema, &grammar);
  if (!top.ok()) return top.status();
  grammar.AddAlternative(0, std::move(*top));
  absl::Status finalized = grammar.Finalize();
  if (!finalized.ok()) return finalized;
  return grammar;
}

Grammar JsonObjectGrammar() {
  static const Json kEmpty = Json::object();
  Grammar grammar;
  grammar.AddAlternative(0, SchemaCompiler(kEmpty, &grammar).AnyObject());
  const absl::Status finalized = grammar.Finalize();
  CHECK(finalized.ok()) << finalized;
  return grammar;
}

absl::StatusOr<Grammar> ChoiceGrammar(const std::vector<std::string>& choices) {
  if (choices.empty()) return absl::InvalidArgumentError("guided_choice must list at least one choice");
  Grammar grammar;
  for (const std::string& choice : choices) grammar.AddAlternative(0, grammar.Literal(choice));
  absl::Status finalized = grammar.Finalize();
  if (!finalized.ok()) return finalized;
  return grammar;
}

}  // namespace duet::grammar
