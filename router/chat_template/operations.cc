#include "router/chat_template/operations.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/str_cat.h"
#include "router/chat_template/methods.h"
#include "router/chat_template/py_format.h"
#include "common/status_macros.h"
#include "router/chat_template/unicode_text.h"

namespace duet::chat_template {
namespace {

absl::Status TypeError(std::string_view message) { return absl::InvalidArgumentError(std::string(message)); }

absl::Status UnsupportedOperands(std::string_view op, const Value& left, const Value& right) {
  return TypeError(StrCat("unsupported operand type(s) for ", op, ": '", left.TypeName(), "' and '",
                                right.TypeName(), "'"));
}

absl::Status TooLarge(int64_t max_result_bytes) {
  return absl::ResourceExhaustedError(
      StrCat("chat template value exceeds the output limit of ", max_result_bytes, " bytes"));
}

absl::Status Overflow() { return absl::InvalidArgumentError("integer overflow in chat template arithmetic"); }

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t FloorMod(int64_t a, int64_t b) {
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

double PyFloatMod(double a, double b) {
  double r = std::fmod(a, b);
  if (r != 0.0 && ((r < 0) != (b < 0))) r += b;
  if (r == 0.0) r = std::copysign(0.0, b);
  return r;
}

absl::StatusOr<Value> Repeat(const Value& sequence, int64_t count, int64_t max_result_bytes) {
  if (count < 0) count = 0;
  if (sequence.is_string()) {
    const std::string& text = sequence.AsString();
    if (!text.empty() && count > max_result_bytes / static_cast<int64_t>(text.size())) return TooLarge(max_result_bytes);
    std::string out;
    out.reserve(text.size() * count);
    for (int64_t i = 0; i < count; ++i) out += text;
    return Value::String(std::move(out));
  }
  const List& list = sequence.AsList();
  if (!list.items.empty() && count > max_result_bytes / static_cast<int64_t>(list.items.size())) {
    return TooLarge(max_result_bytes);
  }
  std::vector<Value> items;
  for (int64_t i = 0; i < count; ++i) items.insert(items.end(), list.items.begin(), list.items.end());
  return Value::MakeList(std::move(items), list.is_tuple);
}

absl::StatusOr<Value> IntArithmetic(std::string_view op, int64_t a, int64_t b) {
  int64_t result;
  if (op == "+") {
    if (__builtin_add_overflow(a, b, &result)) return Overflow();
  } else if (op == "-") {
    if (__builtin_sub_overflow(a, b, &result)) return Overflow();
  } else if (op == "*") {
    if (__builtin_mul_overflow(a, b, &result)) return Overflow();
  } else if (op == "/") {
    if (b == 0) return absl::InvalidArgumentError("division by zero");
    return Value::Float(static_cast<double>(a) / static_cast<double>(b));
  } else if (op == "//" || op == "%") {
    if (b == 0) return absl::InvalidArgumentError("integer division or modulo by zero");
    if (a == INT64_MIN && b == -1) return op == "%" ? Value::Int(0) : absl::StatusOr<Value>(Overflow());
    result = op == "//" ? FloorDiv(a, b) : FloorMod(a, b);
  } else {  // **
    if (b < 0) {
      if (a == 0) return absl::InvalidArgumentError("0.0 cannot be raised to a negative power");
      return Value::Float(std::pow(static_cast<double>(a), static_cast<double>(b)));
    }
    result = 1;
    int64_t base = a;
    int64_t exponent = b;
    while (exponent > 0) {
      if (exponent & 1) {
        if (__builtin_mul_overflow(result, base, &result)) return Overflow();
      }
      exponent >>= 1;
      if (exponent > 0 && __builtin_mul_overflow(base, base, &base)) return Overflow();
    }
  }
  return Value::Int(result);
}

absl::StatusOr<Value> FloatArithmetic(std::string_view op, double a, double b) {
  if (op == "+") return Value::Float(a + b);
  if (op == "-") return Value::Float(a - b);
  if (op == "*") return Value::Float(a * b);
  if (op == "/") {
    if (b == 0.0) return absl::InvalidArgumentError("float division by zero");
    return Value::Float(a / b);
  }
  if (op == "//") {
    if (b == 0.0) return absl::InvalidArgumentError("float floor division by zero");
    return Value::Float(std::floor(a / b));
  }
  if (op == "%") {
    if (b == 0.0) return absl::InvalidArgumentError("float modulo");
    return Value::Float(PyFloatMod(a, b));
  }
  if (a == 0.0 && b < 0) return absl::InvalidArgumentError("0.0 cannot be raised to a negative power");
  double result = std::pow(a, b);
  if (std::isnan(result) && !std::isnan(a) && !std::isnan(b)) {
    return absl::InvalidArgumentError("negative number cannot be raised to a fractional power");
  }
  if (std::isinf(result) && std::isfinite(a) && std::isfinite(b)) {
    return absl::InvalidArgumentError("float power overflow: numerical result out of range");
  }
  return Value::Float(result);
}

// Python's ordering for the types templates compare.
absl::StatusOr<int> Order(const Value& a, const Value& b, std::string_view op) {
  if (a.is_undefined()) return UndefinedError(a);
  if (b.is_undefined()) return UndefinedError(b);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) {
      double x = a.AsDouble();
      double y = b.AsDouble();
      if (std::isnan(x) || std::isnan(y)) return 2;  // every ordering is false
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    int64_t x = a.AsInt();
    int64_t y = b.AsInt();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    int c = a.AsString().compare(b.AsString());
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    const auto& x = a.AsList().items;
    const auto& y = b.AsList().items;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (PyEquals(x[i], y[i])) continue;
      return Order(x[i], y[i], op);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  return TypeError(StrCat("'", op, "' not supported between instances of '", a.TypeName(), "' and '",
                                b.TypeName(), "'"));
}

// Normalizes a Python index; false when out of range.
bool NormalizeIndex(int64_t index, int64_t length, int64_t* out) {
  if (index < 0) index += length;
  if (index < 0 || index >= length) return false;
  *out = index;
  return true;
}

absl::StatusOr<std::optional<int64_t>> SliceBound(const Value& bound) {
  if (bound.is_none()) return std::optional<int64_t>();
  if (bound.is_int() || bound.is_bool()) return std::optional<int64_t>(bound.AsInt());
  return TypeError("slice indices must be integers or None");
}

std::string NoAttributeHint(const Value& object, std::string_view name) {
  if (object.is_none()) return StrCat("'None' has no attribute '", name, "'");
  return StrCat("'", object.TypeName(), " object' has no attribute '", name, "'");
}

}  // namespace

absl::Status UndefinedError(const Value& undefined) {
  const std::string& hint = undefined.UndefinedHint();
  return absl::InvalidArgumentError(hint.empty() ? "undefined value used" : hint);
}

absl::StatusOr<Value> BinaryOperation(std::string_view op, const Value& left, const Value& right,
                                      int64_t max_result_bytes) {
  if (left.is_undefined()) return UndefinedError(left);
  if (right.is_undefined()) return UndefinedError(right);
  if (left.is_number() && right.is_number()) {
    if (left.is_float() || right.is_float() || (op == "/")) {
      if (op == "/" && !left.is_float() && !right.is_float()) {
        return IntArithmetic(op, left.AsInt(), right.AsInt());
      }
      return FloatArithmetic(op, left.AsDouble(), right.AsDouble());
    }
    return IntArithmetic(op, left.AsInt(), right.AsInt());
  }
  if (op == "+") {
    if (left.is_string() && right.is_string()) {
      if (static_cast<int64_t>(left.AsString().size() + right.AsString().size()) > max_result_bytes) {
        return TooLarge(max_result_bytes);
      }
      return Value::String(left.AsString() + right.AsString());
    }
    if (left.is_list() && right.is_list() && left.is_tuple() == right.is_tuple()) {
      std::vector<Value> items = left.AsList().items;
      const auto& more = right.AsList().items;
      if (static_cast<int64_t>(items.size() + more.size()) > max_result_bytes) return TooLarge(max_result_bytes);
      items.insert(items.end(), more.begin(), more.end());
      return Value::MakeList(std::move(items), left.is_tuple());
    }
    if (left.is_string() || left.is_list()) {
      return TypeError(StrCat("can only concatenate ", left.TypeName(), " (not \"", right.TypeName(),
                                    "\") to ", left.TypeName()));
    }
    return UnsupportedOperands(op, left, right);
  }
  if (op == "*") {
    if ((left.is_string() || left.is_list()) && (right.is_int() || right.is_bool())) {
      return Repeat(left, right.AsInt(), max_result_bytes);
    }
    if ((right.is_string() || right.is_list()) && (left.is_int() || left.is_bool())) {
      return Repeat(right, left.AsInt(), max_result_bytes);
    }
  }
  if (op == "%" && left.is_string()) {
    return TypeError("printf-style string formatting ('%') is not supported in chat templates");
  }
  return UnsupportedOperands(op, left, right);
}

absl::StatusOr<Value> Negate(const Value& operand, bool minus) {
  if (operand.is_undefined()) return UndefinedError(operand);
  if (operand.is_float()) return Value::Float(minus ? -operand.AsDouble() : operand.AsDouble());
  if (operand.is_int() || operand.is_bool()) {
    int64_t value = operand.AsInt();
    if (!minus) return Value::Int(value);
    if (value == INT64_MIN) return Overflow();
    return Value::Int(-value);
  }
  return TypeError(StrCat("bad operand type for unary ", minus ? "-" : "+", ": '", operand.TypeName(), "'"));
}

absl::StatusOr<bool> Compare(std::string_view op, const Value& left, const Value& right) {
  if (op == "==") return PyEquals(left, right);
  if (op == "!=") return !PyEquals(left, right);
  if (op == "in") return Contains(right, left);
  if (op == "notin") {
    DUET_ASSIGN_OR_RETURN(bool contained, Contains(right, left));
    return !contained;
  }
  DUET_ASSIGN_OR_RETURN(int order, Order(left, right, op));
  if (order == 2) return false;
  if (op == "<") return order < 0;
  if (op == "<=") return order <= 0;
  if (op == ">") return order > 0;
  return order >= 0;
}

absl::StatusOr<bool> Contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined:
      return false;
    case Value::Kind::kString:
      if (!item.is_string()) {
        return TypeError(StrCat("'in <string>' requires string as left operand, not ", item.TypeName()));
      }
      return container.AsString().find(item.AsString()) != std::string::npos;
    case Value::Kind::kList:
      for (const Value& element : container.AsList().items) {
        if (PyEquals(element, item)) return true;
      }
      return false;
    case Value::Kind::kDict:
      if ((item.is_list() && !item.is_tuple()) || item.is_dict()) {
        return TypeError(StrCat("unhashable type: '", item.TypeName(), "'"));
      }
      return container.AsDict().Find(item) != nullptr;
    default:
      return TypeError(StrCat("argument of type '", container.TypeName(), "' is not iterable"));
  }
}

absl::StatusOr<Value> GetAttribute(const Value& object, std::string_view name) {
  if (object.is_undefined()) return UndefinedError(object);
  if (std::optional<Value> method = LookupMethod(object, name)) return *std::move(method);
  if (object.is_dict()) {
    if (const Value* found = object.AsDict().Find(name)) return *found;
  } else if (object.is_object()) {
    if (const Value* found = object.AsObject().Find(name)) return *found;
  }
  return Value::Undefined(NoAttributeHint(object, name));
}

absl::StatusOr<Value> GetItem(const Value& object, const Value& key) {
  if (object.is_undefined()) return UndefinedError(object);
  if (object.is_dict()) {
    if (const Value* found = object.AsDict().Find(key)) return *found;
  } else if (object.is_list() && (key.is_int() || key.is_bool())) {
    const auto& items = object.AsList().items;
    int64_t index;
    if (NormalizeIndex(key.AsInt(), static_cast<int64_t>(items.size()), &index)) return items[index];
  } else if (object.is_string() && (key.is_int() || key.is_bool())) {
    std::vector<size_t> offsets = CodePointOffsets(object.AsString());
    int64_t index;
    if (NormalizeIndex(key.AsInt(), static_cast<int64_t>(offsets.size()) - 1, &index)) {
      return Value::String(object.AsString().substr(offsets[index], offsets[index + 1] - offsets[index]));
    }
  } else if (object.is_object() && key.is_string()) {
    if (const Value* found = object.AsObject().Find(key.AsString())) return *found;
  }
  if (key.is_string()) {
    if (std::optional<Value> method = LookupMethod(object, key.AsString())) return *std::move(method);
    return Value::Undefined(NoAttributeHint(object, key.AsString()));
  }
  return Value::Undefined(StrCat("'", object.TypeName(), " object' has no element ", ToPyRepr(key)));
}

absl::StatusOr<Value> GetSlice(const Value& object, const Value& start_value, const Value& stop_value,
                               const Value& step_value) {
  if (object.is_undefined()) return UndefinedError(object);
  // jinja2 slices with Python's own operator (not environment.getitem), so
  // slicing a non-sequence is a TypeError, not Undefined.
  if (!object.is_string() && !object.is_list()) {
    return TypeError(StrCat("'", object.TypeName(), "' object is not subscriptable"));
  }
  DUET_ASSIGN_OR_RETURN(std::optional<int64_t> start, SliceBound(start_value));
  DUET_ASSIGN_OR_RETURN(std::optional<int64_t> stop, SliceBound(stop_value));
  DUET_ASSIGN_OR_RETURN(std::optional<int64_t> step_opt, SliceBound(step_value));
  const int64_t step = step_opt.value_or(1);
  if (step == 0) return absl::InvalidArgumentError("slice step cannot be zero");
  std::vector<size_t> offsets;
  int64_t length;
  if (object.is_string()) {
    offsets = CodePointOffsets(object.AsString());
    length = static_cast<int64_t>(offsets.size()) - 1;
  } else {
    length = static_cast<int64_t>(object.AsList().items.size());
  }
  // CPython's PySlice_AdjustIndices.
  const auto adjust = [&](std::optional<int64_t> bound, int64_t fallback) {
    if (!bound) return fallback;
    int64_t v = *bound;
    if (v < 0) {
      v += length;
      if (v < 0) v = step < 0 ? -1 : 0;
    } else if (v >= length) {
      v = step < 0 ? length - 1 : length;
    }
    return v;
  };
  const int64_t begin = adjust(start, step < 0 ? length - 1 : 0);
  const int64_t end = adjust(stop, step < 0 ? -1 : length);
  std::vector<int64_t> indices;
  for (int64_t i = begin; step > 0 ? i < end : i > end; i += step) indices.push_back(i);
  if (object.is_string()) {
    std::string out;
    for (int64_t i : indices) out.append(object.AsString(), offsets[i], offsets[i + 1] - offsets[i]);
    return Value::String(std::move(out));
  }
  std::vector<Value> items;
  items.reserve(indices.size());
  for (int64_t i : indices) items.push_back(object.AsList().items[i]);
  return Value::MakeList(std::move(items), object.is_tuple());
}

absl::StatusOr<std::vector<Value>> Iterate(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kUndefined:
      return std::vector<Value>();
    case Value::Kind::kList:
      return value.AsList().items;
    case Value::Kind::kDict: {
      std::vector<Value> keys;
      for (const auto& [key, item] : value.AsDict().entries) keys.push_back(key);
      return keys;
    }
    case Value::Kind::kString: {
      const std::string& text = value.AsString();
      std::vector<size_t> offsets = CodePointOffsets(text);
      std::vector<Value> chars;
      for (size_t i = 0; i + 1 < offsets.size(); ++i) {
        chars.push_back(Value::String(text.substr(offsets[i], offsets[i + 1] - offsets[i])));
      }
      return chars;
    }
    default:
      return TypeError(StrCat("'", value.TypeName(), "' object is not iterable"));
  }
}

absl::StatusOr<int64_t> Length(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kUndefined: return 0;
    case Value::Kind::kString: return static_cast<int64_t>(CodePointCount(value.AsString()));
    case Value::Kind::kList: return static_cast<int64_t>(value.AsList().items.size());
    case Value::Kind::kDict: return static_cast<int64_t>(value.AsDict().entries.size());
    case Value::Kind::kObject:
      if (const Value* length = value.AsObject().Find("length");
          value.AsObject().type_name == "LoopContext" && length != nullptr && length->is_int()) {
        return length->AsInt();  // the loop object: len(loop) == loop.length
      }
      [[fallthrough]];
    default: return TypeError(StrCat("object of type '", value.TypeName(), "' has no len()"));
  }
}

}  // namespace duet::chat_template
