#include "router/chat_template/py_format.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/str_cat.h"
#include "common/status_macros.h"
#include "router/chat_template/unicode_text.h"

namespace duet::chat_template {
namespace {

void AppendHexEscape(char prefix, int digits, char32_t c, std::string* out) {
  char buffer[16];
  std::snprintf(buffer, sizeof(buffer), "\\%c%0*x", prefix, digits, static_cast<unsigned>(c));
  out->append(buffer);
}

std::string ReprString(const std::string& text) {
  std::vector<char32_t> points = DecodeUtf8(text);
  const bool has_single = std::find(points.begin(), points.end(), U'\'') != points.end();
  const bool has_double = std::find(points.begin(), points.end(), U'"') != points.end();
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  std::vector<size_t> offsets = CodePointOffsets(text);
  for (size_t i = 0; i < points.size(); ++i) {
    char32_t c = points[i];
    if (c == static_cast<char32_t>(quote) || c == U'\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == U'\n') {
      out.append("\\n");
    } else if (c == U'\r') {
      out.append("\\r");
    } else if (c == U'\t') {
      out.append("\\t");
    } else if (c >= 0xDC80 && c <= 0xDCFF && offsets[i + 1] - offsets[i] == 1) {
      AppendHexEscape('x', 2, c - 0xDC00, &out);  // an invalid byte, as surrogateescape shows it
    } else if (!IsPyPrintable(c)) {
      if (c < 0x100) {
        AppendHexEscape('x', 2, c, &out);
      } else if (c < 0x10000) {
        AppendHexEscape('u', 4, c, &out);
      } else {
        AppendHexEscape('U', 8, c, &out);
      }
    } else {
      out.append(text, offsets[i], offsets[i + 1] - offsets[i]);
    }
  }
  out.push_back(quote);
  return out;
}

void AppendJsonString(const std::string& text, bool ensure_ascii, std::string* out) {
  out->push_back('"');
  std::vector<size_t> offsets = CodePointOffsets(text);
  std::vector<char32_t> points = DecodeUtf8(text);
  for (size_t i = 0; i < points.size(); ++i) {
    char32_t c = points[i];
    switch (c) {
      case U'"': out->append("\\\""); continue;
      case U'\\': out->append("\\\\"); continue;
      case U'\n': out->append("\\n"); continue;
      case U'\r': out->append("\\r"); continue;
      case U'\t': out->append("\\t"); continue;
      case U'\b': out->append("\\b"); continue;
      case U'\f': out->append("\\f"); continue;
      default: break;
    }
    if (c < 0x20 || (ensure_ascii && c > 0x7E)) {
      if (c >= 0x10000) {
        char32_t v = c - 0x10000;
        AppendHexEscape('u', 4, 0xD800 + (v >> 10), out);
        AppendHexEscape('u', 4, 0xDC00 + (v & 0x3FF), out);
      } else {
        AppendHexEscape('u', 4, c, out);
      }
    } else {
      out->append(text, offsets[i], offsets[i + 1] - offsets[i]);
    }
  }
  out->push_back('"');
}

absl::StatusOr<std::string> JsonKey(const Value& key) {
  switch (key.kind()) {
    case Value::Kind::kString: return key.AsString();
    case Value::Kind::kBool: return std::string(key.AsBool() ? "true" : "false");
    case Value::Kind::kInt: return StrCat(key.AsInt());
    case Value::Kind::kFloat: return FormatPyFloat(key.AsDouble());
    case Value::Kind::kNone: return std::string("null");
    default:
      return absl::InvalidArgumentError(StrCat(
          "tojson: keys must be str, int, float, bool or None, not ", key.TypeName()));
  }
}

class JsonWriter {
 public:
  explicit JsonWriter(const JsonDumpOptions& options) : options_(options) {
    const bool indenting = options.indent.has_value();
    item_separator_ = options.item_separator.value_or(indenting ? "," : ", ");
    key_separator_ = options.key_separator.value_or(": ");
  }

  absl::Status Write(const Value& value, int level, std::string* out) {
    switch (value.kind()) {
      case Value::Kind::kNone: out->append("null"); return absl::OkStatus();
      case Value::Kind::kBool: out->append(value.AsBool() ? "true" : "false"); return absl::OkStatus();
      case Value::Kind::kInt: out->append(StrCat(value.AsInt())); return absl::OkStatus();
      case Value::Kind::kFloat: {
        double d = value.AsDouble();
        if (std::isnan(d)) {
          out->append("NaN");
        } else if (std::isinf(d)) {
          out->append(d > 0 ? "Infinity" : "-Infinity");
        } else {
          out->append(FormatPyFloat(d));
        }
        return absl::OkStatus();
      }
      case Value::Kind::kString:
        AppendJsonString(value.AsString(), options_.ensure_ascii, out);
        return absl::OkStatus();
      case Value::Kind::kList: {
        const auto& items = value.AsList().items;
        if (items.empty()) {
          out->append("[]");
          return absl::OkStatus();
        }
        out->push_back('[');
        for (size_t i = 0; i < items.size(); ++i) {
          if (i > 0) out->append(item_separator_);
          NewLine(level + 1, out);
          DUET_RETURN_IF_ERROR(Write(items[i], level + 1, out));
        }
        NewLine(level, out);
        out->push_back(']');
        return absl::OkStatus();
      }
      case Value::Kind::kDict: {
        std::vector<std::pair<std::string, const Value*>> entries;
        for (const auto& [key, item] : value.AsDict().entries) {
          DUET_ASSIGN_OR_RETURN(std::string key_text, JsonKey(key));
          entries.emplace_back(std::move(key_text), &item);
        }
        if (options_.sort_keys) {
          std::stable_sort(entries.begin(), entries.end(),
                           [](const auto& a, const auto& b) { return a.first < b.first; });
        }
        if (entries.empty()) {
          out->append("{}");
          return absl::OkStatus();
        }
        out->push_back('{');
        for (size_t i = 0; i < entries.size(); ++i) {
          if (i > 0) out->append(item_separator_);
          NewLine(level + 1, out);
          AppendJsonString(entries[i].first, options_.ensure_ascii, out);
          out->append(key_separator_);
          DUET_RETURN_IF_ERROR(Write(*entries[i].second, level + 1, out));
        }
        NewLine(level, out);
        out->push_back('}');
        return absl::OkStatus();
      }
      default:
        return absl::InvalidArgumentError(
            StrCat("tojson: object of type ", value.TypeName(), " is not JSON serializable"));
    }
  }

 private:
  void NewLine(int level, std::string* out) const {
    if (!options_.indent.has_value()) return;
    out->push_back('\n');
    for (int i = 0; i < level; ++i) out->append(*options_.indent);
  }

  const JsonDumpOptions& options_;
  std::string item_separator_;
  std::string key_separator_;
};

}  // namespace

std::string FormatPyFloat(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  if (value == 0.0) return std::signbit(value) ? "-0.0" : "0.0";
  // Shortest round-trip digits, then Python's repr layout: fixed notation for
  // decimal exponents in [-4, 16), scientific otherwise.
  char buffer[64];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::scientific);
  std::string scientific(buffer, result.ptr);
  std::string sign;
  if (scientific[0] == '-') {
    sign = "-";
    scientific.erase(0, 1);
  }
  size_t e_pos = scientific.find('e');
  std::string mantissa = scientific.substr(0, e_pos);
  int exponent = std::stoi(scientific.substr(e_pos + 1));
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits.push_back(c);
  }
  const int num_digits = static_cast<int>(digits.size());
  std::string out = sign;
  if (exponent >= -4 && exponent < 16) {
    if (exponent >= 0) {
      if (num_digits <= exponent + 1) {
        out += digits + std::string(exponent + 1 - num_digits, '0') + ".0";
      } else {
        out += digits.substr(0, exponent + 1) + "." + digits.substr(exponent + 1);
      }
    } else {
      out += "0." + std::string(-exponent - 1, '0') + digits;
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (num_digits > 1) out += "." + digits.substr(1);
  char exponent_text[16];
  std::snprintf(exponent_text, sizeof(exponent_text), "e%c%02d", exponent < 0 ? '-' : '+',
                exponent < 0 ? -exponent : exponent);
  return out + exponent_text;
}

std::string ToPyStr(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kUndefined: return "";
    case Value::Kind::kString: return value.AsString();
    default: return ToPyRepr(value);
  }
}

std::string ToPyRepr(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kUndefined: return "Undefined";
    case Value::Kind::kNone: return "None";
    case Value::Kind::kBool: return value.AsBool() ? "True" : "False";
    case Value::Kind::kInt: return StrCat(value.AsInt());
    case Value::Kind::kFloat: return FormatPyFloat(value.AsDouble());
    case Value::Kind::kString: return ReprString(value.AsString());
    case Value::Kind::kList: {
      const List& list = value.AsList();
      std::string out(1, list.is_tuple ? '(' : '[');
      for (size_t i = 0; i < list.items.size(); ++i) {
        if (i > 0) out += ", ";
        out += ToPyRepr(list.items[i]);
      }
      if (list.is_tuple && list.items.size() == 1) out += ",";
      out += list.is_tuple ? ')' : ']';
      return out;
    }
    case Value::Kind::kDict: {
      std::string out = "{";
      bool first = true;
      for (const auto& [key, item] : value.AsDict().entries) {
        if (!first) out += ", ";
        first = false;
        out += ToPyRepr(key) + ": " + ToPyRepr(item);
      }
      return out + "}";
    }
    case Value::Kind::kObject: {
      const Object& object = value.AsObject();
      if (object.type_name == "LoopContext") {
        const Value* index = object.Find("index");
        const Value* length = object.Find("length");
        if (index != nullptr && length != nullptr) {
          return "<LoopContext " + ToPyRepr(*index) + "/" + ToPyRepr(*length) + ">";
        }
      }
      std::string out = "<" + object.type_name + " {";
      bool first = true;
      for (const auto& [name, item] : object.attributes) {
        if (!first) out += ", ";
        first = false;
        out += ReprString(name) + ": " + ToPyRepr(item);
      }
      return out + "}>";
    }
    case Value::Kind::kCallable: return "<function " + value.AsCallable().name + ">";
  }
  return "";
}

absl::StatusOr<std::string> ToJson(const Value& value, const JsonDumpOptions& options) {
  std::string out;
  JsonWriter writer(options);
  DUET_RETURN_IF_ERROR(writer.Write(value, 0, &out));
  return out;
}

}  // namespace duet::chat_template
