#include "common/json_fields.h"

#include <limits>
#include <utility>

#include "common/str_cat.h"
#include "glog/logging.h"

namespace duet {

absl::StatusOr<nlohmann::json> ParseJsonText(std::string_view text, std::string_view file_name) {
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& error) {  // parse_error, or out_of_range for 1e999
    return absl::InvalidArgumentError(StrCat(file_name, ": not valid JSON: ", error.what()));
  }
}

std::string_view JsonTypeName(const nlohmann::json& value) {
  if (value.is_number_integer()) return "integer";
  if (value.is_number_float()) return "number";
  return value.type_name();
}

JsonFields::JsonFields(const nlohmann::json& object, std::string file_name, std::string prefix)
    : object_(object), file_name_(std::move(file_name)), prefix_(std::move(prefix)) {
  CHECK(object_.is_object()) << file_name_ << ": JsonFields needs an object";
}

absl::Status JsonFields::ExpectObject(const nlohmann::json& value, std::string_view file_name,
                                      std::string_view what) {
  if (value.is_object()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      StrCat(file_name, ": ", what, " must be a JSON object, got ", JsonTypeName(value)));
}

bool JsonFields::Has(std::string_view key) const { return Find(key) != nullptr; }

const nlohmann::json* JsonFields::Find(std::string_view key) const {
  const auto it = object_.find(key);
  if (it == object_.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::Status JsonFields::Error(std::string_view key, std::string_view problem) const {
  return absl::InvalidArgumentError(
      StrCat(file_name_, ": field \"", prefix_, key, "\": ", problem));
}

absl::StatusOr<int64_t> JsonFields::ToInt(std::string_view key, const nlohmann::json& value) const {
  if (value.is_number_unsigned()) {
    const auto unsigned_value = value.get<uint64_t>();
    if (unsigned_value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Error(key, "integer out of range");
    }
    return static_cast<int64_t>(unsigned_value);
  }
  if (value.is_number_integer()) return value.get<int64_t>();
  return Error(key, StrCat("expected an integer, got ", JsonTypeName(value)));
}

absl::StatusOr<int64_t> JsonFields::RequiredInt(std::string_view key) const {
  const nlohmann::json* value = Find(key);
  if (value == nullptr) return Error(key, "required field is missing");
  return ToInt(key, *value);
}

absl::StatusOr<std::optional<int64_t>> JsonFields::OptionalInt(std::string_view key) const {
  const nlohmann::json* value = Find(key);
  if (value == nullptr) return std::optional<int64_t>();
  absl::StatusOr<int64_t> result = ToInt(key, *value);
  if (!result.ok()) return result.status();
  return std::optional<int64_t>(*result);
}

absl::StatusOr<int64_t> JsonFields::IntOr(std::string_view key, int64_t default_value) const {
  const nlohmann::json* value = Find(key);
  if (value == nullptr) return default_value;
  return ToInt(key, *value);
}

absl::StatusOr<std::optional<double>> JsonFields::OptionalDouble(std::string_view key) const {
  const nlohmann::json* value = Find(key);
  if (value == nullptr) return std::optional<double>();
  if (!value->is_number()) {
    return Error(key, StrCat("expected a number, got ", JsonTypeName(*value)));
  }
  return std::optional<double>(value->get<double>());
}

absl::StatusOr<double> JsonFields::RequiredDouble(std::string_view key) const {
  absl::StatusOr<std::optional<double>> value = OptionalDouble(key);
  if (!value.ok()) return value.status();
  if (!value->has_value()) return Error(key, "required field is missing");
  return **value;
}

absl::StatusOr<double> JsonFields::DoubleOr(std::string_view key, double default_value) const {
  absl::StatusOr<std::optional<double>> value = OptionalDouble(key);
  if (!value.ok()) return value.status();
  return value->value_or(default_value);
}

absl::StatusOr<std::optional<bool>> JsonFields::OptionalBool(std::string_view key) const {
  const nlohmann::json* value = Find(key);
  if (value == nullptr) return std::optional<bool>();
  if (!value->is_boolean()) {
    return Error(key, StrCat("expected a boolean, got ", JsonTypeName(*value)));
  }
  return std::optional<bool>(value->get<bool>());
}

absl::StatusOr<bool> JsonFields::BoolOr(std::string_view key, bool default_value) const {
  absl::StatusOr<std::optional<bool>> value = OptionalBool(key);
  if (!value.ok()) return value.status();
  return value->value_or(default_value);
}

absl::StatusOr<std::optional<std::string>> JsonFields::OptionalString(std::string_view key) const {
  const nlohmann::json* value = Find(key);
  if (value == nullptr) return std::optional<std::string>();
  if (!value->is_string()) {
    return Error(key, StrCat("expected a string, got ", JsonTypeName(*value)));
  }
  return std::optional<std::string>(value->get<std::string>());
}

absl::StatusOr<std::string> JsonFields::RequiredString(std::string_view key) const {
  absl::StatusOr<std::optional<std::string>> value = OptionalString(key);
  if (!value.ok()) return value.status();
  if (!value->has_value()) return Error(key, "required field is missing");
  return **value;
}

}  // namespace duet
