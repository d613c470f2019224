// Typed access to the fields of a parsed JSON object (config.json and
// friends), with errors that name the file and the field.
#ifndef DUET_COMMON_JSON_FIELDS_H_
#define DUET_COMMON_JSON_FIELDS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace duet {

// Parses `text` as JSON; InvalidArgument naming `file_name` (and nlohmann's
// byte position) when it is not valid JSON.
absl::StatusOr<nlohmann::json> ParseJsonText(std::string_view text, std::string_view file_name);

// Reads fields of one JSON object. A field that is absent or JSON null counts
// as missing. Integers must be JSON integers (4096.0 is rejected); doubles
// accept any JSON number. Every error is InvalidArgument and reads
// "<file>: field \"<prefix><key>\": <problem>".
//
// Borrows `object`, which must outlive the reader. Not thread-safe to share
// while `object` is being modified; otherwise read-only.
class JsonFields {
 public:
  // `object` must be a JSON object (CHECKed: callers test it with
  // ExpectObject first). `prefix` is prepended to keys in messages, e.g.
  // "rope_scaling.".
  JsonFields(const nlohmann::json& object, std::string file_name, std::string prefix = "");

  // InvalidArgument naming `what` unless `value` is a JSON object.
  static absl::Status ExpectObject(const nlohmann::json& value, std::string_view file_name,
                                   std::string_view what);

  // True when the key is present and not null.
  bool Has(std::string_view key) const;
  // The value, or nullptr when missing (absent or null).
  const nlohmann::json* Find(std::string_view key) const;

  absl::StatusOr<int64_t> RequiredInt(std::string_view key) const;
  absl::StatusOr<std::optional<int64_t>> OptionalInt(std::string_view key) const;
  absl::StatusOr<int64_t> IntOr(std::string_view key, int64_t default_value) const;

  absl::StatusOr<double> RequiredDouble(std::string_view key) const;
  absl::StatusOr<std::optional<double>> OptionalDouble(std::string_view key) const;
  absl::StatusOr<double> DoubleOr(std::string_view key, double default_value) const;

  absl::StatusOr<std::optional<bool>> OptionalBool(std::string_view key) const;
  absl::StatusOr<bool> BoolOr(std::string_view key, bool default_value) const;

  absl::StatusOr<std::string> RequiredString(std::string_view key) const;
  absl::StatusOr<std::optional<std::string>> OptionalString(std::string_view key) const;

  // An InvalidArgument error about `key` in this file, for checks the caller
  // makes itself (ranges, consistency).
  absl::Status Error(std::string_view key, std::string_view problem) const;

  const std::string& file_name() const { return file_name_; }

 private:
  absl::StatusOr<int64_t> ToInt(std::string_view key, const nlohmann::json& value) const;

  const nlohmann::json& object_;
  std::string file_name_;
  std::string prefix_;
};

// The JSON type name used in messages ("string", "array", ...).
std::string_view JsonTypeName(const nlohmann::json& value);

}  // namespace duet

#endif  // DUET_COMMON_JSON_FIELDS_H_
