#include "router/chat_template/builtins.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "common/str_cat.h"
#include "absl/time/time.h"
#include "router/chat_template/call_args.h"
#include "router/chat_template/interpreter.h"
#include "router/chat_template/py_format.h"
#include "common/status_macros.h"

namespace duet::chat_template {
namespace {

constexpr absl::string_view kRaisedPayload = "duet.chat_template.raised";

absl::StatusOr<Value> Range(Interpreter& interpreter, const CallArgs& args) {
  if (!args.keyword.empty()) return absl::InvalidArgumentError("range() takes no keyword arguments");
  if (args.positional.empty() || args.positional.size() > 3) {
    return absl::InvalidArgumentError("range() takes 1 to 3 arguments");
  }
  std::vector<int64_t> bounds;
  for (const Value& arg : args.positional) {
    if (!arg.is_int() && !arg.is_bool()) {
      return absl::InvalidArgumentError(
          StrCat("range(): '", arg.TypeName(), "' object cannot be interpreted as an integer"));
    }
    bounds.push_back(arg.AsInt());
  }
  int64_t start = 0, stop, step = 1;
  if (bounds.size() == 1) {
    stop = bounds[0];
  } else {
    start = bounds[0];
    stop = bounds[1];
    if (bounds.size() == 3) step = bounds[2];
  }
  if (step == 0) return absl::InvalidArgumentError("range() arg 3 must not be zero");
  // Count first (in wide arithmetic) so a huge range is refused before
  // anything is allocated.
  __int128 count = 0;
  if (step > 0 && stop > start) count = ((__int128)stop - start + step - 1) / step;
  if (step < 0 && stop < start) count = ((__int128)start - stop - step - 1) / -step;
  if (count > interpreter.limits().max_loop_iterations) {
    return absl::ResourceExhaustedError(StrCat("range() of ", static_cast<int64_t>(count),
                                                     " items exceeds the loop iteration limit"));
  }
  DUET_RETURN_IF_ERROR(interpreter.ChargeIterations(static_cast<int64_t>(count)));
  std::vector<Value> items;
  items.reserve(static_cast<size_t>(count));
  for (int64_t i = 0; i < static_cast<int64_t>(count); ++i) items.push_back(Value::Int(start + i * step));
  return Value::MakeList(std::move(items));
}

// namespace(mapping?, **kwargs) and dict(mapping?, **kwargs) share this.
absl::StatusOr<std::vector<std::pair<std::string, Value>>> CollectAttributes(std::string_view function,
                                                                              const CallArgs& args) {
  std::vector<std::pair<std::string, Value>> attributes;
  if (args.positional.size() > 1) return absl::InvalidArgumentError(StrCat(function, "() takes at most 1 positional argument"));
  if (args.positional.size() == 1) {
    const Value& mapping = args.positional[0];
    if (!mapping.is_dict()) {
      return absl::InvalidArgumentError(StrCat(function, "() argument must be a mapping, not ", mapping.TypeName()));
    }
    for (const auto& [key, value] : mapping.AsDict().entries) {
      if (!key.is_string()) return absl::InvalidArgumentError(StrCat(function, "() keys must be strings"));
      attributes.emplace_back(key.AsString(), value);
    }
  }
  for (const auto& [name, value] : args.keyword) attributes.emplace_back(name, value);
  return attributes;
}

absl::StatusOr<Value> MakeNamespace(Interpreter&, const CallArgs& args) {
  DUET_ASSIGN_OR_RETURN(auto attributes, CollectAttributes("namespace", args));
  Value ns = Value::MakeObject("Namespace", /*is_namespace=*/true);
  for (auto& [name, value] : attributes) DUET_RETURN_IF_ERROR(ns.AsObject().Set(name, std::move(value)));
  return ns;
}

absl::StatusOr<Value> MakeDict(Interpreter&, const CallArgs& args) {
  DUET_ASSIGN_OR_RETURN(auto attributes, CollectAttributes("dict", args));
  std::vector<std::pair<Value, Value>> entries;
  for (auto& [name, value] : attributes) entries.emplace_back(Value::String(name), std::move(value));
  return Value::MakeDict(std::move(entries));
}

absl::StatusOr<Value> RaiseException(Interpreter&, const CallArgs& args) {
  DUET_ASSIGN_OR_RETURN(BoundArgs bound, BoundArgs::Bind("raise_exception", args, {"message"}, 1));
  absl::Status status = absl::InvalidArgumentError(ToPyStr(*bound.Get(0)));
  status.SetPayload(kRaisedPayload, absl::Cord("1"));
  return status;
}

absl::StatusOr<Value> StrftimeNow(Interpreter& interpreter, const CallArgs& args) {
  DUET_ASSIGN_OR_RETURN(BoundArgs bound, BoundArgs::Bind("strftime_now", args, {"format"}, 1));
  DUET_ASSIGN_OR_RETURN(std::string format, bound.GetString(0, ""));
  return Value::String(absl::FormatTime(format, interpreter.now(), absl::LocalTimeZone()));
}

}  // namespace

std::optional<Value> LookupGlobal(std::string_view name) {
  if (name == "range") return Value::MakeCallable("range", Range);
  if (name == "namespace") return Value::MakeCallable("namespace", MakeNamespace);
  if (name == "dict") return Value::MakeCallable("dict", MakeDict);
  if (name == "raise_exception") return Value::MakeCallable("raise_exception", RaiseException);
  if (name == "strftime_now") return Value::MakeCallable("strftime_now", StrftimeNow);
  return std::nullopt;
}

bool IsRaisedByTemplate(const absl::Status& status) { return status.GetPayload(kRaisedPayload).has_value(); }

}  // namespace duet::chat_template
