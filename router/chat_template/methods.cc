#include "router/chat_template/methods.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/str_cat.h"
#include "router/chat_template/call_args.h"
#include "router/chat_template/interpreter.h"
#include "router/chat_template/operations.h"
#include "common/status_macros.h"
#include "router/chat_template/unicode_text.h"

namespace duet::chat_template {
namespace {


absl::Status TooLarge(const Interpreter& interpreter) {
  return absl::ResourceExhaustedError(StrCat("chat template value exceeds the output limit of ",
                                                   interpreter.limits().max_output_bytes, " bytes"));
}

// Python's str.split / str.rsplit.
absl::StatusOr<Value> Split(const Value& self, const CallArgs& args, bool from_right) {
  DUET_ASSIGN_OR_RETURN(BoundArgs bound, BoundArgs::Bind(from_right ? "rsplit" : "split", args, {"sep", "maxsplit"}));
  DUET_ASSIGN_OR_RETURN(int64_t max_split, bound.GetInt(1, -1));
  const std::string& text = self.AsString();
  std::vector<std::string> parts;
  const Value* sep = bound.Get(0);
  if (sep == nullptr || sep->is_none()) {
    // Runs of whitespace separate; empty pieces are dropped.
    std::vector<size_t> offsets = CodePointOffsets(text);
    std::vector<char32_t> points = DecodeUtf8(text);
    std::vector<std::pair<size_t, size_t>> words;  // code point [begin, end)
    size_t i = 0;
    while (i < points.size()) {
      while (i < points.size() && IsPyWhitespace(points[i])) ++i;
      if (i == points.size()) break;
      size_t begin = i;
      while (i < points.size() && !IsPyWhitespace(points[i])) ++i;
      words.emplace_back(begin, i);
    }
    if (max_split >= 0 && static_cast<int64_t>(words.size()) > max_split + 1) {
      // The unsplit remainder keeps its inner whitespace (but not the edge).
      if (!from_right) {
        size_t rest_begin = words[max_split].first;
        words.resize(max_split);
        size_t rest_end = points.size();
        while (rest_end > rest_begin && IsPyWhitespace(points[rest_end - 1])) --rest_end;
        words.emplace_back(rest_begin, rest_end);
      } else {
        size_t keep_from = words.size() - max_split;
        size_t rest_end = words[keep_from - 1].second;
        size_t rest_begin = 0;
        while (rest_begin < rest_end && IsPyWhitespace(points[rest_begin])) ++rest_begin;
        std::vector<std::pair<size_t, size_t>> kept{{rest_begin, rest_end}};
        kept.insert(kept.end(), words.begin() + keep_from, words.end());
        words = std::move(kept);
      }
    }
    for (const auto& [begin, end] : words) parts.push_back(text.substr(offsets[begin], offsets[end] - offsets[begin]));
  } else {
    if (!sep->is_string()) return absl::InvalidArgumentError("split(): separator must be a string or None");
    const std::string& separator = sep->AsString();
    if (separator.empty()) return absl::InvalidArgumentError("split(): empty separator");
    if (!from_right) {
      size_t start = 0;
      while (max_split < 0 || static_cast<int64_t>(parts.size()) < max_split) {
        size_t found = text.find(separator, start);
        if (found == std::string::npos) break;
        parts.push_back(text.substr(start, found - start));
        start = found + separator.size();
      }
      parts.push_back(text.substr(start));
    } else {
      size_t end = text.size();
      std::vector<std::string> reversed;
      while (max_split < 0 || static_cast<int64_t>(reversed.size()) < max_split) {
        if (end < separator.size()) break;
        size_t found = text.rfind(separator, end - separator.size());
        if (found == std::string::npos) break;
        reversed.push_back(text.substr(found + separator.size(), end - found - separator.size()));
        end = found;
      }
      reversed.push_back(text.substr(0, end));
      parts.assign(reversed.rbegin(), reversed.rend());
    }
  }
  std::vector<Value> items;
  items.reserve(parts.size());
  for (std::string& part : parts) items.push_back(Value::String(std::move(part)));
  return Value::MakeList(std::move(items));
}

absl::StatusOr<Value> Affix(const Value& self, const CallArgs& args, bool prefix) {
  DUET_ASSIGN_OR_RETURN(BoundArgs bound, BoundArgs::Bind(prefix ? "startswith" : "endswith", args, {"affix"}, 1));
  const Value& affix = *bound.Get(0);
  std::vector<Value> candidates;
  if (affix.is_string()) {
    candidates.push_back(affix);
  } else if (affix.is_tuple()) {
    candidates = affix.AsList().items;
  } else {
    return absl::InvalidArgumentError(StrCat(prefix ? "startswith" : "endswith",
                                                   "() argument must be str or a tuple of str, not ",
                                                   affix.TypeName()));
  }
  const std::string& text = self.AsString();
  for (const Value& candidate : candidates) {
    if (!candidate.is_string()) return absl::InvalidArgumentError("tuple for startswith/endswith must only contain str");
    const std::string& s = candidate.AsString();
    if (s.size() > text.size()) continue;
    if (prefix ? text.compare(0, s.size(), s) == 0 : text.compare(text.size() - s.size(), s.size(), s) == 0) {
      return Value::Bool(true);
    }
  }
  return Value::Bool(false);
}

absl::StatusOr<Value> Strip(const Value& self, const CallArgs& args, StripSide side) {
  DUET_ASSIGN_OR_RETURN(BoundArgs bound, BoundArgs::Bind("strip", args, {"chars"}));
  const Value* chars = bound.Get(0);
  if (chars != nullptr && !chars->is_none() && !chars->is_string()) {
    return absl::InvalidArgumentError("strip arg must be None or str");
  }
  const std::string* set = (chars != nullptr && chars->is_string()) ? &chars->AsString() : nullptr;
  return Value::String(PyStrip(self.AsString(), set, side));
}

absl::StatusOr<Value> Replace(Interpreter& interpreter, const Value& self, const CallArgs& args) {
  DUET_ASSIGN_OR_RETURN(BoundArgs bound, BoundArgs::Bind("replace", args, {"old", "new", "count"}, 2));
  DUET_ASSIGN_OR_RETURN(std::string old_text, bound.GetString(0, ""));
  DUET_ASSIGN_OR_RETURN(std::string new_text, bound.GetString(1, ""));
  DUET_ASSIGN_OR_RETURN(int64_t count, bound.GetInt(2, -1));
  const std::string& text = self.AsString();
  const int64_t max_bytes = interpreter.limits().max_output_bytes;
  std::string out;
  int64_t replaced = 0;
  if (old_text.empty()) {
    // Python inserts `new` before every character and at the end.
    std::vector<size_t> offsets = CodePointOffsets(text);
    for (size_t i = 0; i + 1 <= offsets.size(); ++i) {
      if (count < 0 || replaced < count) {
        out += new_text;
        ++replaced;
      }
      if (i + 1 < offsets.size()) out.append(text, offsets[i], offsets[i + 1] - offsets[i]);
      if (static_cast<int64_t>(out.size()) > max_bytes) return TooLarge(interpreter);
    }
    return Value::String(std::move(out));
  }
  size_t start = 0;
  while (count < 0 || replaced < count) {
    size_t found = text.find(old_text, start);
    if (found == std::string::npos) break;
    out.append(text, start, found - start);
    out += new_text;
    if (static_cast<int64_t>(out.size()) > max_bytes) return TooLarge(interpreter);
    start = found + old_text.size();
    ++replaced;
  }
  out.append(text, start, std::string::npos);
  return Value::String(std::move(out));
}

// find/rfind, and index/rindex (`must_exist`: a miss is an error).
absl::StatusOr<Value> Find(const Value& self, const CallArgs& args, bool from_right, bool must_exist) {
  DUET_ASSIGN_OR_RETURN(BoundArgs bound, BoundArgs::Bind(from_right ? "rfind" : "find", args, {"sub"}, 1));
  DUET_ASSIGN_OR_RETURN(std::string sub, bound.GetString(0, ""));
  const std::string& text = self.AsString();
  size_t found = from_right ? text.rfind(sub) : text.find(sub);
  if (found == std::string::npos && must_exist) return absl::InvalidArgumentError("substring not found");
  if (found == std::string::npos) return Value::Int(-1);
  return Value::Int(static_cast<int64_t>(CodePointCount(std::string_view(text).substr(0, found))));
}

absl::StatusOr<Value> CountSubstring(const Value& self, const CallArgs& args) {
  DUET_ASSIGN_OR_RETURN(BoundArgs bound, BoundArgs::Bind("count", args, {"sub"}, 1));
  DUET_ASSIGN_OR_RETURN(std::string sub, bound.GetString(0, ""));
  const std::string& text = self.AsString();
  if (sub.empty()) return Value::Int(static_cast<int64_t>(CodePointCount(text)) + 1);
  int64_t count = 0;
  for (size_t at = text.find(sub); at != std::string::npos; at = text.find(sub, at + sub.size())) ++count;
  return Value::Int(count);
}

absl::StatusOr<Value> Join(Interpreter& interpreter, const Value& self, const CallArgs& args) {
  DUET_ASSIGN_OR_RETURN(BoundArgs bound, BoundArgs::Bind("join", args, {"iterable"}, 1));
  const Value& iterable = *bound.Get(0);
  std::vector<Value> items;
  if (iterable.is_list()) {
    items = iterable.AsList().items;
  } else if (iterable.is_dict()) {
    for (const auto& [key, value] : iterable.AsDict().entries) items.push_back(key);
  } else if (iterable.is_string()) {
    for (size_t i = 0, n = CodePointCount(iterable.AsString()); i < n; ++i) {
      DUET_ASSIGN_OR_RETURN(Value c, GetItem(iterable, Value::Int(static_cast<int64_t>(i))));
      items.push_back(std::move(c));
    }
  } else {
    return absl::InvalidArgumentError("join(): can only join an iterable");
  }
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].is_string()) {
      return absl::InvalidArgumentError(
          StrCat("sequence item ", i, ": expected str instance, ", items[i].TypeName(), " found"));
    }
    if (i > 0) out += self.AsString();
    out += items[i].AsString();
    if (static_cast<int64_t>(out.size()) > interpreter.limits().max_output_bytes) return TooLarge(interpreter);
  }
  return Value::String(std::move(out));
}

absl::StatusOr<Value> NoArgs(std::string_view name, const CallArgs& args) {
  if (!args.positional.empty() || !args.keyword.empty()) {
    return absl::InvalidArgumentError(StrCat(name, "() takes no arguments"));
  }
  return Value();
}

absl::StatusOr<Value> CallStringMethod(Interpreter& interpreter, std::string_view name, const Value& self,
                                       const CallArgs& args) {
  if (name == "startswith" || name == "endswith") return Affix(self, args, name == "startswith");
  if (name == "split" || name == "rsplit") return Split(self, args, name == "rsplit");
  if (name == "strip") return Strip(self, args, StripSide::kBoth);
  if (name == "lstrip") return Strip(self, args, StripSide::kLeft);
  if (name == "rstrip") return Strip(self, args, StripSide::kRight);
  if (name == "replace") return Replace(interpreter, self, args);
  if (name == "find" || name == "rfind") return Find(self, args, name == "rfind", /*must_exist=*/false);
  if (name == "index" || name == "rindex") return Find(self, args, name == "rindex", /*must_exist=*/true);
  if (name == "count") return CountSubstring(self, args);
  if (name == "join") return Join(interpreter, self, args);
  DUET_RETURN_IF_ERROR(NoArgs(name, args).status());
  const std::string& text = self.AsString();
  if (name == "upper") return Value::String(PyUpper(text));
  if (name == "lower") return Value::String(PyLower(text));
  if (name == "title") return Value::String(PyTitle(text));
  if (name == "capitalize") return Value::String(PyCapitalize(text));
  // splitlines
  std::vector<Value> lines;
  std::vector<size_t> offsets = CodePointOffsets(text);
  std::vector<char32_t> points = DecodeUtf8(text);
  size_t line_begin = 0;
  for (size_t i = 0; i < points.size(); ++i) {
    char32_t c = points[i];
    const bool is_break = c == U'\n' || c == U'\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D ||
                          c == 0x1E || c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!is_break) continue;
    lines.push_back(Value::String(text.substr(offsets[line_begin], offsets[i] - offsets[line_begin])));
    if (c == U'\r' && i + 1 < points.size() && points[i + 1] == U'\n') ++i;
    line_begin = i + 1;
  }
  if (line_begin < points.size()) {
    lines.push_back(Value::String(text.substr(offsets[line_begin])));
  }
  return Value::MakeList(std::move(lines));
}

absl::StatusOr<Value> CallDictMethod(std::string_view name, const Value& self, const CallArgs& args) {
  const Dict& dict = self.AsDict();
  if (name == "get") {
    DUET_ASSIGN_OR_RETURN(BoundArgs bound, BoundArgs::Bind("get", args, {"key", "default"}, 1));
    if (const Value* found = dict.Find(*bound.Get(0))) return *found;
    const Value* fallback = bound.Get(1);
    return fallback != nullptr ? *fallback : Value::None();
  }
  DUET_RETURN_IF_ERROR(NoArgs(name, args).status());
  std::vector<Value> items;
  for (const auto& [key, value] : dict.entries) {
    if (name == "keys") {
      items.push_back(key);
    } else if (name == "values") {
      items.push_back(value);
    } else {
      DUET_ASSIGN_OR_RETURN(Value pair, Value::MakeList({key, value}, /*is_tuple=*/true));
      items.push_back(std::move(pair));
    }
  }
  return Value::MakeList(std::move(items));
}

absl::StatusOr<Value> CallListMethod(std::string_view name, const Value& self, const CallArgs& args) {
  DUET_ASSIGN_OR_RETURN(BoundArgs bound, BoundArgs::Bind(name, args, {"value"}, 1));
  const auto& items = self.AsList().items;
  int64_t count = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!PyEquals(items[i], *bound.Get(0))) continue;
    if (name == "index") return Value::Int(static_cast<int64_t>(i));
    ++count;
  }
  if (name == "index") return absl::InvalidArgumentError("list.index(x): x not in list");
  return Value::Int(count);
}

bool Contains(std::initializer_list<std::string_view> names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

std::optional<Value> LookupMethod(const Value& receiver, std::string_view name) {
  std::string method_name(name);
  if (receiver.is_string()) {
    if (!Contains({"startswith", "endswith", "split", "rsplit", "strip", "lstrip", "rstrip", "replace", "find",
                   "rfind", "index", "rindex", "count", "join", "upper", "lower", "title", "capitalize", "splitlines"},
                  name)) {
      return std::nullopt;
    }
    return Value::MakeCallable(method_name, [receiver, method_name](Interpreter& interpreter, const CallArgs& args) {
      return CallStringMethod(interpreter, method_name, receiver, args);
    });
  }
  const bool is_dict = receiver.is_dict();
  const bool is_list = receiver.is_list();
  if (!is_dict && !is_list) return std::nullopt;
  if (is_dict && Contains({"items", "keys", "values", "get"}, name)) {
    return Value::MakeCallable(method_name, [receiver, method_name](Interpreter&, const CallArgs& args) {
      return CallDictMethod(method_name, receiver, args);
    });
  }
  if (is_list && !receiver.is_tuple() && Contains({"index", "count"}, name)) {
    return Value::MakeCallable(method_name, [receiver, method_name](Interpreter&, const CallArgs& args) {
      return CallListMethod(method_name, receiver, args);
    });
  }
  const bool mutating = is_dict ? Contains({"pop", "popitem", "setdefault", "update", "clear"}, name)
                                : (!receiver.is_tuple() && Contains({"append", "extend", "insert", "pop", "remove",
                                                                     "reverse", "sort", "clear"},
                                                                    name));
  if (mutating) {
    return Value::Undefined(StrCat("access to attribute '", name, "' of '", receiver.TypeName(),
                                         "' object is unsafe."));
  }
  return std::nullopt;
}

}  // namespace duet::chat_template
