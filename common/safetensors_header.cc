#include "common/safetensors_header.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "common/json_fields.h"
#include "common/status_macros.h"
#include "common/str_cat.h"
#include "nlohmann/json.hpp"

namespace duet {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kMetadataKey = "__metadata__";

absl::Status FileError(std::string_view file_name, std::string_view problem) {
  return absl::InvalidArgumentError(StrCat(file_name, ": ", problem));
}

absl::Status TensorError(std::string_view file_name, std::string_view tensor,
                         std::string_view problem) {
  return absl::InvalidArgumentError(StrCat(file_name, ": tensor \"", tensor, "\": ", problem));
}

// nlohmann keeps the last of duplicate keys silently; a callback sees every
// key, so a duplicated tensor name can be reported instead of hidden.
absl::StatusOr<Json> ParseHeaderJson(std::string_view header_json, std::string_view file_name) {
  std::set<std::string, std::less<>> top_level_keys;
  std::string duplicate_key;
  bool has_duplicate = false;
  const Json::parser_callback_t callback = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::key && depth == 1 && !has_duplicate) {
      std::string key = parsed.get<std::string>();
      if (!top_level_keys.insert(key).second) {
        has_duplicate = true;
        duplicate_key = std::move(key);
      }
    }
    return true;
  };
  Json header;
  try {
    header = Json::parse(header_json.begin(), header_json.end(), callback);
  } catch (const Json::exception& error) {  // parse_error, or out_of_range for 1e999
    return FileError(file_name, StrCat("header is not valid JSON: ", error.what()));
  }
  if (!header.is_object()) {
    return FileError(file_name, StrCat("header must be a JSON object, got ", JsonTypeName(header)));
  }
  if (has_duplicate) {
    if (duplicate_key == kMetadataKey) return FileError(file_name, "header has two __metadata__");
    return TensorError(file_name, duplicate_key, "appears twice in the header");
  }
  return header;
}

absl::StatusOr<std::map<std::string, std::string>> ParseMetadata(const Json& value,
                                                                 std::string_view file_name) {
  if (!value.is_object()) {
    return FileError(file_name,
                     StrCat("__metadata__ must be an object, got ", JsonTypeName(value)));
  }
  std::map<std::string, std::string> metadata;
  for (const auto& [key, item] : value.items()) {
    if (!item.is_string()) {
      return FileError(file_name, StrCat("__metadata__ entry \"", key, "\" must be a string, got ",
                                         JsonTypeName(item)));
    }
    metadata.emplace(key, item.get<std::string>());
  }
  return metadata;
}

// A JSON integer >= 0 that fits in uint64, or nullopt.
std::optional<uint64_t> AsNonNegativeInteger(const Json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    return static_cast<uint64_t>(value.get<int64_t>());
  }
  return std::nullopt;
}

std::string ShapeString(const Json& shape) { return shape.dump(); }

absl::StatusOr<SafetensorsEntry> ParseEntry(const std::string& name, const Json& value,
                                            uint64_t data_size_bytes, std::string_view file_name) {
  if (!value.is_object()) {
    return TensorError(file_name, name,
                       StrCat("entry must be a JSON object, got ", JsonTypeName(value)));
  }
  SafetensorsEntry entry;
  entry.name = name;

  const auto dtype_it = value.find("dtype");
  if (dtype_it == value.end() || !dtype_it->is_string()) {
    return TensorError(file_name, name, "\"dtype\" must be a string");
  }
  const std::string& dtype_name = dtype_it->get_ref<const std::string&>();
  const std::optional<DType> dtype = ParseDTypeName(dtype_name);
  if (!dtype.has_value()) {
    return TensorError(file_name, name, StrCat("unsupported dtype \"", dtype_name, "\""));
  }
  entry.dtype = *dtype;

  const auto shape_it = value.find("shape");
  if (shape_it == value.end() || !shape_it->is_array()) {
    return TensorError(file_name, name, "\"shape\" must be an array of integers");
  }
  int64_t num_elements = 1;
  for (const Json& dim_value : *shape_it) {
    const std::optional<uint64_t> dim = AsNonNegativeInteger(dim_value);
    if (!dim.has_value()) {
      return TensorError(file_name, name,
                         StrCat("shape ", ShapeString(*shape_it),
                                " must hold non-negative integers, found ", dim_value.dump()));
    }
    if (*dim > static_cast<uint64_t>(INT64_MAX) ||
        __builtin_mul_overflow(num_elements, static_cast<int64_t>(*dim), &num_elements)) {
      return TensorError(file_name, name,
                         StrCat("shape ", ShapeString(*shape_it), " has too many elements"));
    }
    entry.shape.push_back(static_cast<int64_t>(*dim));
  }
  uint64_t expected_bytes = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(num_elements),
                             static_cast<uint64_t>(DTypeSizeBytes(entry.dtype)), &expected_bytes)) {
    return TensorError(
        file_name, name,
        StrCat("shape ", ShapeString(*shape_it), " of ", dtype_name, " overflows the byte size"));
  }

  const auto offsets_it = value.find("data_offsets");
  if (offsets_it == value.end() || !offsets_it->is_array() || offsets_it->size() != 2) {
    return TensorError(file_name, name, "\"data_offsets\" must be an array [begin, end]");
  }
  const std::optional<uint64_t> begin = AsNonNegativeInteger((*offsets_it)[0]);
  const std::optional<uint64_t> end = AsNonNegativeInteger((*offsets_it)[1]);
  if (!begin.has_value() || !end.has_value()) {
    return TensorError(
        file_name, name,
        StrCat("data_offsets ", offsets_it->dump(), " must be non-negative integers"));
  }
  if (*begin > *end) {
    return TensorError(file_name, name,
                       StrCat("data_offsets ", offsets_it->dump(), " has begin > end"));
  }
  if (*end > data_size_bytes) {
    return absl::DataLossError(StrCat(file_name, ": tensor \"", name, "\": data_offsets ",
                                      offsets_it->dump(), " end past the data area of ",
                                      data_size_bytes, " bytes (truncated file?)"));
  }
  if (*end - *begin != expected_bytes) {
    return TensorError(
        file_name, name,
        StrCat("data_offsets ", offsets_it->dump(), " span ", *end - *begin, " bytes but shape ",
               ShapeString(*shape_it), " of ", dtype_name, " needs ", expected_bytes));
  }
  entry.data_begin = *begin;
  entry.data_end = *end;
  return entry;
}

// The format requires the tensors to tile the data area; holes would let a
// file carry bytes no reader accounts for.
absl::Status CheckTiling(const std::vector<SafetensorsEntry>& sorted_tensors,
                         uint64_t data_size_bytes, std::string_view file_name) {
  uint64_t covered_end = 0;
  const SafetensorsEntry* previous = nullptr;
  for (const SafetensorsEntry& tensor : sorted_tensors) {
    if (tensor.data_begin < covered_end) {
      return TensorError(
          file_name, tensor.name,
          StrCat("bytes [", tensor.data_begin, ", ", tensor.data_end, ") overlap tensor \"",
                 previous->name, "\" [", previous->data_begin, ", ", previous->data_end, ")"));
    }
    if (tensor.data_begin > covered_end) {
      return TensorError(
          file_name, tensor.name,
          StrCat("starts at byte ", tensor.data_begin, " leaving a hole after byte ", covered_end));
    }
    covered_end = tensor.data_end;
    previous = &tensor;
  }
  if (covered_end != data_size_bytes) {
    return FileError(file_name, StrCat("data area has ", data_size_bytes - covered_end,
                                       " bytes after the last tensor"));
  }
  return absl::OkStatus();
}

}  // namespace

int64_t SafetensorsEntry::num_elements() const {
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;  // cannot overflow: checked when parsed
  return count;
}

absl::StatusOr<SafetensorsHeader> ParseSafetensorsHeader(std::string_view header_json,
                                                         uint64_t data_size_bytes,
                                                         std::string_view file_name) {
  DUET_ASSIGN_OR_RETURN(const Json json, ParseHeaderJson(header_json, file_name));
  SafetensorsHeader header;
  for (const auto& [name, value] : json.items()) {
    if (name == kMetadataKey) {
      DUET_ASSIGN_OR_RETURN(header.metadata, ParseMetadata(value, file_name));
      continue;
    }
    DUET_ASSIGN_OR_RETURN(SafetensorsEntry entry,
                          ParseEntry(name, value, data_size_bytes, file_name));
    header.tensors.push_back(std::move(entry));
  }
  std::sort(header.tensors.begin(), header.tensors.end(),
            [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
              return std::tie(a.data_begin, a.data_end, a.name) <
                     std::tie(b.data_begin, b.data_end, b.name);
            });
  DUET_RETURN_IF_ERROR(CheckTiling(header.tensors, data_size_bytes, file_name));
  return header;
}

absl::StatusOr<SafetensorsLayout> ParseSafetensorsFileBytes(std::span<const std::byte> file_bytes,
                                                            std::string_view file_name) {
  constexpr size_t kLengthBytes = 8;
  if (file_bytes.size() < kLengthBytes) {
    return absl::DataLossError(StrCat(file_name, ": file is ", file_bytes.size(),
                                      " bytes, too short for the 8-byte header length"));
  }
  uint64_t header_bytes = 0;
  for (size_t i = 0; i < kLengthBytes; ++i) {
    header_bytes |= static_cast<uint64_t>(file_bytes[i]) << (8 * i);
  }
  if (header_bytes > kMaxSafetensorsHeaderBytes) {
    return FileError(file_name, StrCat("header length ", header_bytes, " exceeds the limit of ",
                                       kMaxSafetensorsHeaderBytes, " bytes"));
  }
  const uint64_t bytes_after_length = file_bytes.size() - kLengthBytes;
  if (header_bytes > bytes_after_length) {
    return absl::DataLossError(StrCat(file_name, ": header length ", header_bytes, " exceeds the ",
                                      bytes_after_length,
                                      " bytes that follow it (truncated file?)"));
  }
  const std::string_view header_json(
      reinterpret_cast<const char*>(file_bytes.data()) + kLengthBytes, header_bytes);
  SafetensorsLayout layout;
  layout.data_offset_bytes = kLengthBytes + header_bytes;
  DUET_ASSIGN_OR_RETURN(
      layout.header,
      ParseSafetensorsHeader(header_json, bytes_after_length - header_bytes, file_name));
  return layout;
}

}  // namespace duet
