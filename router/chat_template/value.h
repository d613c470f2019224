// The data a chat template computes with: a dynamically typed value with the
// semantics of the Python objects jinja2 hands to templates (None, bool, int,
// float, str, list, tuple, dict with insertion order, jinja2's Undefined,
// namespace objects and callables).
//
// Values are immutable once built (the sandbox, like jinja2's
// ImmutableSandboxedEnvironment, offers no mutating methods) except Object
// attributes, which `{% set ns.attr = ... %}` changes. Copies are cheap: every
// payload larger than a number is shared. Not thread-safe to mutate; a Value
// graph belongs to one render.
//
// Invariants that keep every operation bounded and every destruction shallow:
// lists and dicts never hold Objects (so no reference cycles), and container
// nesting never exceeds kMaxValueDepth.
#ifndef DUET_ROUTER_CHAT_TEMPLATE_VALUE_H_
#define DUET_ROUTER_CHAT_TEMPLATE_VALUE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace duet::chat_template {

// Deepest list/dict nesting a value may have (JSON input included).
inline constexpr int kMaxValueDepth = 64;

class Value;
class Interpreter;

// Arguments of a call: f(a, b, key=c).
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

// A native function or a template macro. `interpreter` is the render in
// progress (macros run their body in it; builtins use its limits).
using NativeFunction =
    std::function<absl::StatusOr<Value>(Interpreter& interpreter, const CallArgs& args)>;

struct Callable {
  std::string name;
  NativeFunction function;
};

struct List;
struct Dict;
struct Object;

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kObject, kCallable };

  // Undefined with no hint.
  Value();
  static Value Undefined(std::string hint);  // hint: "'x' is undefined"
  static Value None();
  static Value Bool(bool b);
  static Value Int(int64_t i);
  static Value Float(double d);
  static Value String(std::string s);
  // Fails when an item is an Object or nesting would exceed kMaxValueDepth.
  static absl::StatusOr<Value> MakeList(std::vector<Value> items, bool is_tuple = false);
  static absl::StatusOr<Value> MakeDict(std::vector<std::pair<Value, Value>> entries);
  static Value MakeObject(std::string type_name, bool is_namespace);
  static Value MakeCallable(std::string name, NativeFunction function);
  // Converts JSON data (insertion-ordered objects) into a Value; `field` names
  // the input in error messages.
  static absl::StatusOr<Value> FromJson(const nlohmann::ordered_json& json, std::string_view field);

  Kind kind() const { return static_cast<Kind>(data_.index()); }
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_float() const { return kind() == Kind::kFloat; }
  // Python numbers: bool is an int.
  bool is_number() const { return is_bool() || is_int() || is_float(); }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_list() const { return kind() == Kind::kList; }
  bool is_tuple() const;
  bool is_dict() const { return kind() == Kind::kDict; }
  bool is_object() const { return kind() == Kind::kObject; }
  bool is_namespace() const;
  bool is_callable() const { return kind() == Kind::kCallable; }

  // Accessors; CHECK-fail on the wrong kind (programmer error).
  bool AsBool() const;
  int64_t AsInt() const;  // bool or int
  double AsDouble() const;  // any number
  const std::string& AsString() const;
  const List& AsList() const;
  const Dict& AsDict() const;
  Object& AsObject() const;
  const Callable& AsCallable() const;
  const std::string& UndefinedHint() const;

  // List/dict nesting depth: 0 for scalars.
  int depth() const;
  // Python truthiness (Undefined is false).
  bool Truthy() const;
  // Python type name for error messages: 'str', 'int', 'NoneType', ...
  std::string TypeName() const;

 private:
  struct UndefinedData {
    std::shared_ptr<const std::string> hint;
  };
  struct NoneData {};
  using Data = std::variant<UndefinedData, NoneData, bool, int64_t, double,
                            std::shared_ptr<const std::string>, std::shared_ptr<const List>,
                            std::shared_ptr<const Dict>, std::shared_ptr<Object>,
                            std::shared_ptr<const Callable>>;
  explicit Value(Data data) : data_(std::move(data)) {}
  Data data_;
};

struct List {
  std::vector<Value> items;
  bool is_tuple = false;
  int depth = 1;
};

// Insertion-ordered mapping; keys compare with Python equality (1 == 1.0 ==
// True). Lookup is linear: template dicts are small.
struct Dict {
  std::vector<std::pair<Value, Value>> entries;
  int depth = 1;
  const Value* Find(const Value& key) const;
  const Value* Find(std::string_view key) const;
};

// A mutable attribute bag: jinja2's namespace() and the loop object.
struct Object {
  std::string type_name;  // "Namespace", "LoopContext"
  bool is_namespace = false;
  std::vector<std::pair<std::string, Value>> attributes;
  const Value* Find(std::string_view name) const;
  // Fails (InvalidArgument) when `value` holds an Object: objects never nest.
  absl::Status Set(std::string_view name, Value value);
};

// Python `==` (Undefined equals only Undefined).
bool PyEquals(const Value& a, const Value& b);

}  // namespace duet::chat_template

#endif  // DUET_ROUTER_CHAT_TEMPLATE_VALUE_H_
