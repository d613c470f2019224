#include "router/chat_template/call_args.h"

#include <utility>

#include "absl/status/status.h"
#include "common/str_cat.h"

namespace duet::chat_template {

absl::StatusOr<BoundArgs> BoundArgs::Bind(std::string_view function, const CallArgs& args,
                                          std::vector<std::string_view> params, size_t num_required,
                                          bool extra_positional_ok) {
  BoundArgs bound;
  bound.function_ = std::string(function);
  bound.values_.resize(params.size());
  bound.given_.assign(params.size(), false);
  for (size_t i = 0; i < args.positional.size(); ++i) {
    if (i < params.size()) {
      bound.values_[i] = args.positional[i];
      bound.given_[i] = true;
    } else if (extra_positional_ok) {
      bound.extra_positional_.push_back(args.positional[i]);
    } else {
      return absl::InvalidArgumentError(StrCat(function, "() takes at most ", params.size(),
                                                     " argument(s), ", args.positional.size(), " given"));
    }
  }
  for (const auto& [name, value] : args.keyword) {
    size_t index = 0;
    while (index < params.size() && params[index] != name) ++index;
    if (index == params.size()) {
      return absl::InvalidArgumentError(StrCat(function, "() got an unexpected keyword argument '", name, "'"));
    }
    if (bound.given_[index]) {
      return absl::InvalidArgumentError(StrCat(function, "() got multiple values for argument '", name, "'"));
    }
    bound.values_[index] = value;
    bound.given_[index] = true;
  }
  for (size_t i = 0; i < num_required && i < params.size(); ++i) {
    if (!bound.given_[i]) {
      return absl::InvalidArgumentError(
          StrCat(function, "() missing required argument '", params[i], "'"));
    }
  }
  bound.params_ = std::move(params);
  return bound;
}

absl::StatusOr<std::string> BoundArgs::GetString(size_t i, std::string fallback) const {
  const Value* value = Get(i);
  if (value == nullptr) return fallback;
  if (!value->is_string()) {
    return absl::InvalidArgumentError(StrCat(function_, "(): argument '", params_[i],
                                                   "' must be a string, not ", value->TypeName()));
  }
  return value->AsString();
}

absl::StatusOr<int64_t> BoundArgs::GetInt(size_t i, int64_t fallback) const {
  const Value* value = Get(i);
  if (value == nullptr) return fallback;
  if (!value->is_int() && !value->is_bool()) {
    return absl::InvalidArgumentError(StrCat(function_, "(): argument '", params_[i],
                                                   "' must be an integer, not ", value->TypeName()));
  }
  return value->AsInt();
}

bool BoundArgs::GetTruthy(size_t i, bool fallback) const {
  const Value* value = Get(i);
  return value == nullptr ? fallback : value->Truthy();
}

}  // namespace duet::chat_template
