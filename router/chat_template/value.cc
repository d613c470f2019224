#include "router/chat_template/value.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "common/str_cat.h"
#include "glog/logging.h"

namespace duet::chat_template {
namespace {

absl::Status CheckChild(const Value& child, int* depth) {
  if (child.is_object()) {
    return absl::InvalidArgumentError(
        StrCat("a ", child.AsObject().type_name, " object cannot be stored in a list or dict"));
  }
  *depth = std::max(*depth, child.depth() + 1);
  if (*depth > kMaxValueDepth) {
    return absl::ResourceExhaustedError(
        StrCat("value nesting exceeds the limit of ", kMaxValueDepth, " levels"));
  }
  return absl::OkStatus();
}

const std::string& EmptyString() {
  static const std::string* const kEmpty = new std::string();
  return *kEmpty;
}

}  // namespace

Value::Value() : data_(UndefinedData{}) {}

Value Value::Undefined(std::string hint) {
  return Value(UndefinedData{std::make_shared<const std::string>(std::move(hint))});
}
Value Value::None() { return Value(NoneData{}); }
Value Value::Bool(bool b) { return Value(b); }
Value Value::Int(int64_t i) { return Value(i); }
Value Value::Float(double d) { return Value(d); }
Value Value::String(std::string s) {
  return Value(std::make_shared<const std::string>(std::move(s)));
}

absl::StatusOr<Value> Value::MakeList(std::vector<Value> items, bool is_tuple) {
  auto list = std::make_shared<List>();
  for (const Value& item : items) {
    absl::Status status = CheckChild(item, &list->depth);
    if (!status.ok()) return status;
  }
  list->items = std::move(items);
  list->is_tuple = is_tuple;
  return Value(std::shared_ptr<const List>(std::move(list)));
}

absl::StatusOr<Value> Value::MakeDict(std::vector<std::pair<Value, Value>> entries) {
  auto dict = std::make_shared<Dict>();
  dict->entries.reserve(entries.size());
  for (auto& entry : entries) {
    if ((entry.first.is_list() && !entry.first.is_tuple()) || entry.first.is_dict()) {
      return absl::InvalidArgumentError(StrCat("unhashable type: '", entry.first.TypeName(), "'"));
    }
    absl::Status status = CheckChild(entry.first, &dict->depth);
    if (status.ok()) status = CheckChild(entry.second, &dict->depth);
    if (!status.ok()) return status;
    // Python dict literals keep the first key's position and the last value.
    auto it = std::find_if(dict->entries.begin(), dict->entries.end(),
                           [&](const auto& existing) { return PyEquals(existing.first, entry.first); });
    if (it != dict->entries.end()) {
      it->second = std::move(entry.second);
    } else {
      dict->entries.push_back(std::move(entry));
    }
  }
  return Value(std::shared_ptr<const Dict>(std::move(dict)));
}

Value Value::MakeObject(std::string type_name, bool is_namespace) {
  auto object = std::make_shared<Object>();
  object->type_name = std::move(type_name);
  object->is_namespace = is_namespace;
  return Value(std::move(object));
}

Value Value::MakeCallable(std::string name, NativeFunction function) {
  return Value(std::make_shared<const Callable>(Callable{std::move(name), std::move(function)}));
}

absl::StatusOr<Value> Value::FromJson(const nlohmann::ordered_json& json, std::string_view field) {
  // Depth is checked before recursing so hostile input cannot exhaust the stack.
  struct Converter {
    std::string_view field;
    absl::StatusOr<Value> Convert(const nlohmann::ordered_json& j, int depth) {
      if (depth > kMaxValueDepth) {
        return absl::InvalidArgumentError(StrCat(
            "'", field, "' nests deeper than ", kMaxValueDepth, " levels"));
      }
      switch (j.type()) {
        case nlohmann::ordered_json::value_t::null:
          return Value::None();
        case nlohmann::ordered_json::value_t::boolean:
          return Value::Bool(j.get<bool>());
        case nlohmann::ordered_json::value_t::number_integer:
          return Value::Int(j.get<int64_t>());
        case nlohmann::ordered_json::value_t::number_unsigned: {
          uint64_t u = j.get<uint64_t>();
          if (u > static_cast<uint64_t>(INT64_MAX)) {
            return absl::InvalidArgumentError(
                StrCat("'", field, "' holds an integer too large: ", u));
          }
          return Value::Int(static_cast<int64_t>(u));
        }
        case nlohmann::ordered_json::value_t::number_float:
          return Value::Float(j.get<double>());
        case nlohmann::ordered_json::value_t::string:
          return Value::String(j.get<std::string>());
        case nlohmann::ordered_json::value_t::array: {
          std::vector<Value> items;
          items.reserve(j.size());
          for (const auto& element : j) {
            absl::StatusOr<Value> item = Convert(element, depth + 1);
            if (!item.ok()) return item.status();
            items.push_back(*std::move(item));
          }
          return Value::MakeList(std::move(items));
        }
        case nlohmann::ordered_json::value_t::object: {
          std::vector<std::pair<Value, Value>> entries;
          entries.reserve(j.size());
          for (const auto& [key, element] : j.items()) {
            absl::StatusOr<Value> item = Convert(element, depth + 1);
            if (!item.ok()) return item.status();
            entries.emplace_back(Value::String(key), *std::move(item));
          }
          return Value::MakeDict(std::move(entries));
        }
        default:
          return absl::InvalidArgumentError(
              StrCat("'", field, "' holds a JSON value of unsupported type ", j.type_name()));
      }
    }
  };
  Converter converter{field};
  return converter.Convert(json, 1);
}

bool Value::is_tuple() const { return is_list() && AsList().is_tuple; }
bool Value::is_namespace() const { return is_object() && AsObject().is_namespace; }

bool Value::AsBool() const {
  CHECK(is_bool());
  return std::get<bool>(data_);
}
int64_t Value::AsInt() const {
  if (is_bool()) return std::get<bool>(data_) ? 1 : 0;
  CHECK(is_int());
  return std::get<int64_t>(data_);
}
double Value::AsDouble() const {
  if (is_float()) return std::get<double>(data_);
  return static_cast<double>(AsInt());
}
const std::string& Value::AsString() const {
  CHECK(is_string());
  return *std::get<std::shared_ptr<const std::string>>(data_);
}
const List& Value::AsList() const {
  CHECK(is_list());
  return *std::get<std::shared_ptr<const List>>(data_);
}
const Dict& Value::AsDict() const {
  CHECK(is_dict());
  return *std::get<std::shared_ptr<const Dict>>(data_);
}
Object& Value::AsObject() const {
  CHECK(is_object());
  return *std::get<std::shared_ptr<Object>>(data_);
}
const Callable& Value::AsCallable() const {
  CHECK(is_callable());
  return *std::get<std::shared_ptr<const Callable>>(data_);
}
const std::string& Value::UndefinedHint() const {
  CHECK(is_undefined());
  const auto& hint = std::get<UndefinedData>(data_).hint;
  return hint ? *hint : EmptyString();
}

int Value::depth() const {
  if (is_list()) return AsList().depth;
  if (is_dict()) return AsDict().depth;
  return 0;
}

bool Value::Truthy() const {
  switch (kind()) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return AsBool();
    case Kind::kInt:
      return AsInt() != 0;
    case Kind::kFloat:
      return AsDouble() != 0.0;
    case Kind::kString:
      return !AsString().empty();
    case Kind::kList:
      return !AsList().items.empty();
    case Kind::kDict:
      return !AsDict().entries.empty();
    case Kind::kObject:
    case Kind::kCallable:
      return true;
  }
  return false;
}

std::string Value::TypeName() const {
  switch (kind()) {
    case Kind::kUndefined:
      return "Undefined";
    case Kind::kNone:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kList:
      return is_tuple() ? "tuple" : "list";
    case Kind::kDict:
      return "dict";
    case Kind::kObject:
      return AsObject().type_name;
    case Kind::kCallable:
      return "function";
  }
  return "object";
}

const Value* Dict::Find(const Value& key) const {
  for (const auto& [k, v] : entries) {
    if (PyEquals(k, key)) return &v;
  }
  return nullptr;
}

const Value* Dict::Find(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (k.is_string() && k.AsString() == key) return &v;
  }
  return nullptr;
}

const Value* Object::Find(std::string_view name) const {
  for (const auto& [k, v] : attributes) {
    if (k == name) return &v;
  }
  return nullptr;
}

absl::Status Object::Set(std::string_view name, Value value) {
  if (value.is_object()) {
    return absl::InvalidArgumentError(StrCat(
        "a ", value.AsObject().type_name, " object cannot be stored in another object"));
  }
  for (auto& [k, v] : attributes) {
    if (k == name) {
      v = std::move(value);
      return absl::OkStatus();
    }
  }
  attributes.emplace_back(std::string(name), std::move(value));
  return absl::OkStatus();
}

bool PyEquals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.AsDouble() == b.AsDouble();
    return a.AsInt() == b.AsInt();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return true;
    case Value::Kind::kString:
      return a.AsString() == b.AsString();
    case Value::Kind::kList: {
      const List& x = a.AsList();
      const List& y = b.AsList();
      if (x.is_tuple != y.is_tuple || x.items.size() != y.items.size()) return false;
      for (size_t i = 0; i < x.items.size(); ++i) {
        if (!PyEquals(x.items[i], y.items[i])) return false;
      }
      return true;
    }
    case Value::Kind::kDict: {
      const Dict& x = a.AsDict();
      const Dict& y = b.AsDict();
      if (x.entries.size() != y.entries.size()) return false;
      for (const auto& [key, value] : x.entries) {
        const Value* other = y.Find(key);
        if (other == nullptr || !PyEquals(value, *other)) return false;
      }
      return true;
    }
    case Value::Kind::kObject:
      return &a.AsObject() == &b.AsObject();
    case Value::Kind::kCallable:
      return &a.AsCallable() == &b.AsCallable();
    default:
      return false;
  }
}

}  // namespace duet::chat_template
