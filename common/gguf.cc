#include "common/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "common/status_macros.h"
#include "common/str_cat.h"

namespace duet {
namespace {

constexpr uint64_t kDefaultAlignment = 32;
constexpr int kMaxRank = 4;         // ggml's GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 8;   // arrays of arrays, nested at most this deep

// A bounds-checked little-endian cursor over the image. Every read reports
// what it was reading and where, so a broken file says which field broke.
class Reader {
 public:
  explicit Reader(std::span<const std::byte> bytes) : bytes_(bytes) {}

  uint64_t offset() const { return offset_; }
  uint64_t remaining() const { return bytes_.size() - offset_; }

  absl::Status Error(std::string_view what, std::string_view problem) const {
    return absl::InvalidArgumentError(StrCat("at byte ", offset_, ": ", what, ": ", problem));
  }

  template <typename T>
  absl::StatusOr<T> Read(std::string_view what) {
    if (remaining() < sizeof(T)) {
      return Error(what, StrCat("needs ", sizeof(T), " bytes but the file ends after ", remaining()));
    }
    T value;
    std::memcpy(&value, bytes_.data() + offset_, sizeof(T));
    offset_ += sizeof(T);
    return value;
  }

  absl::StatusOr<std::string> ReadString(std::string_view what) {
    DUET_ASSIGN_OR_RETURN(const uint64_t length, Read<uint64_t>(what));
    if (length > remaining()) {
      return Error(what, StrCat("string of ", length, " bytes but the file ends after ", remaining()));
    }
    std::string value(reinterpret_cast<const char*>(bytes_.data() + offset_), length);
    offset_ += length;
    return value;
  }

  // Checks that `count` items of at least `min_bytes` each can still fit, so
  // a corrupt count fails here instead of in a huge allocation.
  absl::Status CheckCount(std::string_view what, uint64_t count, uint64_t min_bytes) const {
    if (count > remaining() / min_bytes) {
      return Error(what, StrCat("count ", count, " cannot fit in the ", remaining(),
                                " bytes left in the file"));
    }
    return absl::OkStatus();
  }

 private:
  std::span<const std::byte> bytes_;
  uint64_t offset_ = 0;
};

bool IsIntegerType(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kBool:
      return true;
    default:
      return false;
  }
}

bool IsFloatType(GgufValueType type) {
  return type == GgufValueType::kFloat32 || type == GgufValueType::kFloat64;
}

// The smallest encoding of one value of `type`, for CheckCount.
uint64_t MinValueBytes(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kArray:
      return 12;  // element type and length
    default:
      return 8;
  }
}

absl::StatusOr<GgufValueType> ReadValueType(Reader& reader, std::string_view what) {
  DUET_ASSIGN_OR_RETURN(const uint32_t raw, reader.Read<uint32_t>(what));
  if (raw > static_cast<uint32_t>(GgufValueType::kFloat64)) {
    return reader.Error(what, StrCat("unknown value type ", raw));
  }
  return static_cast<GgufValueType>(raw);
}

absl::StatusOr<int64_t> ReadInteger(Reader& reader, GgufValueType type, std::string_view what) {
  switch (type) {
    case GgufValueType::kUint8: return reader.Read<uint8_t>(what);
    case GgufValueType::kInt8: return reader.Read<int8_t>(what);
    case GgufValueType::kUint16: return reader.Read<uint16_t>(what);
    case GgufValueType::kInt16: return reader.Read<int16_t>(what);
    case GgufValueType::kUint32: return reader.Read<uint32_t>(what);
    case GgufValueType::kInt32: return reader.Read<int32_t>(what);
    case GgufValueType::kInt64: return reader.Read<int64_t>(what);
    case GgufValueType::kUint64: {
      DUET_ASSIGN_OR_RETURN(const uint64_t value, reader.Read<uint64_t>(what));
      if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return reader.Error(what, StrCat("uint64 value ", value, " is too large"));
      }
      return static_cast<int64_t>(value);
    }
    case GgufValueType::kBool: {
      DUET_ASSIGN_OR_RETURN(const uint8_t value, reader.Read<uint8_t>(what));
      if (value > 1) return reader.Error(what, StrCat("bool value ", int{value}, " is not 0 or 1"));
      return int64_t{value};
    }
    default:
      return reader.Error(what, "not an integer type");
  }
}

absl::StatusOr<double> ReadFloat(Reader& reader, GgufValueType type, std::string_view what) {
  if (type == GgufValueType::kFloat32) return reader.Read<float>(what);
  return reader.Read<double>(what);
}

// Reads an array's elements into `value`; arrays of arrays are walked to stay
// in step with the file and kept as their length only.
absl::Status ReadArray(Reader& reader, GgufValue& value, int depth, std::string_view what) {
  if (depth > kMaxArrayDepth) return reader.Error(what, "arrays nested too deeply");
  DUET_ASSIGN_OR_RETURN(value.element_type, ReadValueType(reader, what));
  DUET_ASSIGN_OR_RETURN(value.array_length, reader.Read<uint64_t>(what));
  DUET_RETURN_IF_ERROR(
      reader.CheckCount(what, value.array_length, MinValueBytes(value.element_type)));
  const GgufValueType type = value.element_type;
  if (IsIntegerType(type)) {
    value.integers.reserve(value.array_length);
    for (uint64_t i = 0; i < value.array_length; ++i) {
      DUET_ASSIGN_OR_RETURN(const int64_t element, ReadInteger(reader, type, what));
      value.integers.push_back(element);
    }
  } else if (IsFloatType(type)) {
    value.reals.reserve(value.array_length);
    for (uint64_t i = 0; i < value.array_length; ++i) {
      DUET_ASSIGN_OR_RETURN(const double element, ReadFloat(reader, type, what));
      value.reals.push_back(element);
    }
  } else if (type == GgufValueType::kString) {
    value.strings.reserve(value.array_length);
    for (uint64_t i = 0; i < value.array_length; ++i) {
      DUET_ASSIGN_OR_RETURN(std::string element, reader.ReadString(what));
      value.strings.push_back(std::move(element));
    }
  } else {
    for (uint64_t i = 0; i < value.array_length; ++i) {
      GgufValue nested;
      DUET_RETURN_IF_ERROR(ReadArray(reader, nested, depth + 1, what));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<GgufValue> ReadValue(Reader& reader, std::string_view what) {
  GgufValue value;
  DUET_ASSIGN_OR_RETURN(value.type, ReadValueType(reader, what));
  if (IsIntegerType(value.type)) {
    DUET_ASSIGN_OR_RETURN(value.integer, ReadInteger(reader, value.type, what));
  } else if (IsFloatType(value.type)) {
    DUET_ASSIGN_OR_RETURN(value.real, ReadFloat(reader, value.type, what));
  } else if (value.type == GgufValueType::kString) {
    DUET_ASSIGN_OR_RETURN(value.string, reader.ReadString(what));
  } else {
    DUET_RETURN_IF_ERROR(ReadArray(reader, value, 1, what));
  }
  return value;
}

// The byte size of a tensor, with every product checked for overflow.
absl::StatusOr<uint64_t> TensorBytes(const GgufTensor& tensor, const GgmlTypeTraits& traits) {
  int64_t elements = 1;
  for (const int64_t dim : tensor.dims) {
    if (__builtin_mul_overflow(elements, dim, &elements)) {
      return absl::InvalidArgumentError("element count overflows");
    }
  }
  if (tensor.dims[0] % traits.block_elements != 0) {
    return absl::InvalidArgumentError(StrCat("innermost dim ", tensor.dims[0],
                                             " is not a multiple of the ", traits.name,
                                             " block of ", traits.block_elements));
  }
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(elements / traits.block_elements),
                             static_cast<uint64_t>(traits.block_bytes), &bytes)) {
    return absl::InvalidArgumentError("byte size overflows");
  }
  return bytes;
}

absl::StatusOr<GgufTensor> ReadTensorInfo(Reader& reader, size_t index) {
  GgufTensor tensor;
  DUET_ASSIGN_OR_RETURN(tensor.name, reader.ReadString(StrCat("tensor #", index, " name")));
  const std::string what = StrCat("tensor \"", tensor.name, "\"");
  DUET_ASSIGN_OR_RETURN(const uint32_t rank, reader.Read<uint32_t>(what));
  if (rank < 1 || rank > kMaxRank) {
    return reader.Error(what, StrCat("rank ", rank, " is not 1..", kMaxRank));
  }
  for (uint32_t d = 0; d < rank; ++d) {
    DUET_ASSIGN_OR_RETURN(const int64_t dim, reader.Read<int64_t>(what));
    if (dim < 0) return reader.Error(what, StrCat("dim ", d, " is negative (", dim, ")"));
    tensor.dims.push_back(dim);
  }
  DUET_ASSIGN_OR_RETURN(tensor.type_id, reader.Read<uint32_t>(what));
  if (!GgmlTypeInfo(tensor.type_id)) {
    return reader.Error(what, StrCat("unknown ggml type ", tensor.type_id));
  }
  DUET_ASSIGN_OR_RETURN(tensor.offset, reader.Read<uint64_t>(what));
  return tensor;
}

}  // namespace

std::optional<GgmlTypeTraits> GgmlTypeInfo(uint32_t type_id) {
  switch (static_cast<GgmlType>(type_id)) {
    case GgmlType::kF32: return GgmlTypeTraits{"F32", 1, 4};
    case GgmlType::kF16: return GgmlTypeTraits{"F16", 1, 2};
    case GgmlType::kQ4_0: return GgmlTypeTraits{"Q4_0", 32, 18};
    case GgmlType::kQ4_1: return GgmlTypeTraits{"Q4_1", 32, 20};
    case GgmlType::kQ5_0: return GgmlTypeTraits{"Q5_0", 32, 22};
    case GgmlType::kQ5_1: return GgmlTypeTraits{"Q5_1", 32, 24};
    case GgmlType::kQ8_0: return GgmlTypeTraits{"Q8_0", 32, 34};
    case GgmlType::kQ8_1: return GgmlTypeTraits{"Q8_1", 32, 36};
    case GgmlType::kQ2_K: return GgmlTypeTraits{"Q2_K", 256, 84};
    case GgmlType::kQ3_K: return GgmlTypeTraits{"Q3_K", 256, 110};
    case GgmlType::kQ4_K: return GgmlTypeTraits{"Q4_K", 256, 144};
    case GgmlType::kQ5_K: return GgmlTypeTraits{"Q5_K", 256, 176};
    case GgmlType::kQ6_K: return GgmlTypeTraits{"Q6_K", 256, 210};
    case GgmlType::kQ8_K: return GgmlTypeTraits{"Q8_K", 256, 292};
    case GgmlType::kI8: return GgmlTypeTraits{"I8", 1, 1};
    case GgmlType::kI16: return GgmlTypeTraits{"I16", 1, 2};
    case GgmlType::kI32: return GgmlTypeTraits{"I32", 1, 4};
    case GgmlType::kI64: return GgmlTypeTraits{"I64", 1, 8};
    case GgmlType::kF64: return GgmlTypeTraits{"F64", 1, 8};
    case GgmlType::kBF16: return GgmlTypeTraits{"BF16", 1, 2};
  }
  return std::nullopt;
}

std::string_view GgufValueTypeName(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8: return "uint8";
    case GgufValueType::kInt8: return "int8";
    case GgufValueType::kUint16: return "uint16";
    case GgufValueType::kInt16: return "int16";
    case GgufValueType::kUint32: return "uint32";
    case GgufValueType::kInt32: return "int32";
    case GgufValueType::kFloat32: return "float32";
    case GgufValueType::kBool: return "bool";
    case GgufValueType::kString: return "string";
    case GgufValueType::kArray: return "array";
    case GgufValueType::kUint64: return "uint64";
    case GgufValueType::kInt64: return "int64";
    case GgufValueType::kFloat64: return "float64";
  }
  return "unknown";
}

int64_t GgufTensor::num_elements() const {
  int64_t elements = 1;
  for (const int64_t dim : dims) elements *= dim;
  return elements;
}

absl::StatusOr<GgufContents> ParseGgufBytes(std::span<const std::byte> bytes) {
  Reader reader(bytes);
  GgufContents contents;
  DUET_ASSIGN_OR_RETURN(const uint32_t magic, reader.Read<uint32_t>("magic"));
  if (std::memcmp(&magic, "GGUF", 4) != 0) {
    return absl::InvalidArgumentError("not a GGUF file: it does not start with \"GGUF\"");
  }
  DUET_ASSIGN_OR_RETURN(contents.version, reader.Read<uint32_t>("version"));
  if (contents.version != 2 && contents.version != 3) {
    return absl::InvalidArgumentError(
        StrCat("GGUF version ", contents.version,
               " is not supported (versions 2 and 3 are; a huge number means a big-endian file)"));
  }
  DUET_ASSIGN_OR_RETURN(const uint64_t tensor_count, reader.Read<uint64_t>("tensor count"));
  DUET_ASSIGN_OR_RETURN(const uint64_t metadata_count, reader.Read<uint64_t>("metadata count"));
  // A key/value pair takes at least 8 (key length) + 4 (type) + 1 bytes.
  DUET_RETURN_IF_ERROR(reader.CheckCount("metadata count", metadata_count, 13));
  contents.metadata.reserve(metadata_count);
  absl::flat_hash_map<std::string, size_t> seen_keys;
  for (uint64_t i = 0; i < metadata_count; ++i) {
    DUET_ASSIGN_OR_RETURN(std::string key, reader.ReadString(StrCat("metadata key #", i)));
    const std::string what = StrCat("metadata \"", key, "\"");
    if (seen_keys.contains(key)) return reader.Error(what, "key appears twice");
    DUET_ASSIGN_OR_RETURN(GgufValue value, ReadValue(reader, what));
    if (key == "general.alignment") {
      if (value.type != GgufValueType::kUint32) {
        return reader.Error(what, StrCat("must be a uint32, not ", GgufValueTypeName(value.type)));
      }
      if (value.integer == 0 || (value.integer & (value.integer - 1)) != 0) {
        return reader.Error(what, StrCat(value.integer, " is not a power of two"));
      }
      contents.alignment = static_cast<uint64_t>(value.integer);
    }
    seen_keys.emplace(key, i);
    contents.metadata.emplace_back(std::move(key), std::move(value));
  }

  // A tensor info takes at least 8 (name) + 4 (rank) + 8 (one dim) + 4 + 8.
  DUET_RETURN_IF_ERROR(reader.CheckCount("tensor count", tensor_count, 32));
  contents.tensors.reserve(tensor_count);
  absl::flat_hash_map<std::string, size_t> seen_tensors;
  for (uint64_t i = 0; i < tensor_count; ++i) {
    DUET_ASSIGN_OR_RETURN(GgufTensor tensor, ReadTensorInfo(reader, i));
    if (!seen_tensors.emplace(tensor.name, i).second) {
      return reader.Error(StrCat("tensor \"", tensor.name, "\""), "name appears twice");
    }
    contents.tensors.push_back(std::move(tensor));
  }

  const uint64_t header_end = reader.offset();
  contents.data_offset = (header_end + contents.alignment - 1) / contents.alignment * contents.alignment;
  if (contents.tensors.empty()) return contents;
  if (contents.data_offset > bytes.size()) {
    return absl::InvalidArgumentError(StrCat("the data area would start at byte ",
                                             contents.data_offset, ", past the end of the file (",
                                             bytes.size(), " bytes)"));
  }
  const uint64_t data_size = bytes.size() - contents.data_offset;
  for (GgufTensor& tensor : contents.tensors) {
    const GgmlTypeTraits traits = *GgmlTypeInfo(tensor.type_id);
    const absl::StatusOr<uint64_t> num_bytes = TensorBytes(tensor, traits);
    if (!num_bytes.ok()) {
      return absl::InvalidArgumentError(
          StrCat("tensor \"", tensor.name, "\": ", num_bytes.status().message()));
    }
    if (tensor.offset % contents.alignment != 0) {
      return absl::InvalidArgumentError(StrCat("tensor \"", tensor.name, "\": offset ",
                                               tensor.offset, " is not a multiple of the alignment ",
                                               contents.alignment));
    }
    if (tensor.offset > data_size || *num_bytes > data_size - tensor.offset) {
      return absl::InvalidArgumentError(
          StrCat("tensor \"", tensor.name, "\": its ", *num_bytes, " bytes at offset ",
                 tensor.offset, " of the data area run past its end (", data_size, " bytes)"));
    }
    tensor.num_bytes = *num_bytes;
    tensor.data = bytes.data() + contents.data_offset + tensor.offset;
  }
  std::vector<const GgufTensor*> by_offset;
  for (const GgufTensor& tensor : contents.tensors) by_offset.push_back(&tensor);
  // Ties go to the smaller tensor, so a zero-size tensor sharing another's
  // start never reads as overlapping it, whatever the file order.
  std::sort(by_offset.begin(), by_offset.end(), [](const GgufTensor* a, const GgufTensor* b) {
    return a->offset != b->offset ? a->offset < b->offset : a->num_bytes < b->num_bytes;
  });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const GgufTensor& before = *by_offset[i - 1];
    if (before.offset + before.num_bytes > by_offset[i]->offset) {
      return absl::InvalidArgumentError(StrCat("tensors \"", before.name, "\" and \"",
                                               by_offset[i]->name, "\" overlap"));
    }
  }
  return contents;
}

GgufFile::GgufFile(MappedFile file, GgufContents contents)
    : file_(std::move(file)), contents_(std::move(contents)) {
  for (size_t i = 0; i < contents_.metadata.size(); ++i) {
    metadata_index_.emplace(contents_.metadata[i].first, i);
  }
  for (size_t i = 0; i < contents_.tensors.size(); ++i) {
    tensor_index_.emplace(contents_.tensors[i].name, i);
  }
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  DUET_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  absl::StatusOr<GgufContents> contents = ParseGgufBytes(file.bytes());
  if (!contents.ok()) {
    return absl::Status(contents.status().code(), StrCat(path, ": ", contents.status().message()));
  }
  return std::unique_ptr<GgufFile>(new GgufFile(std::move(file), *std::move(contents)));
}

const GgufValue* GgufFile::FindMetadata(std::string_view key) const {
  const auto it = metadata_index_.find(key);
  return it == metadata_index_.end() ? nullptr : &contents_.metadata[it->second].second;
}

const GgufTensor* GgufFile::FindTensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &contents_.tensors[it->second];
}

absl::StatusOr<const GgufValue*> GgufFile::Require(std::string_view key) const {
  const GgufValue* value = FindMetadata(key);
  if (value == nullptr) return absl::NotFoundError(StrCat(path(), ": no metadata key ", key));
  return value;
}

absl::Status GgufFile::WrongType(std::string_view key, const GgufValue& value,
                                 std::string_view wanted) const {
  std::string actual(GgufValueTypeName(value.type));
  if (value.type == GgufValueType::kArray) {
    actual = StrCat("array of ", GgufValueTypeName(value.element_type));
  }
  return absl::InvalidArgumentError(
      StrCat(path(), ": metadata ", key, " is ", actual, ", expected ", wanted));
}

absl::StatusOr<std::string_view> GgufFile::GetString(std::string_view key) const {
  DUET_ASSIGN_OR_RETURN(const GgufValue* value, Require(key));
  if (value->type != GgufValueType::kString) return WrongType(key, *value, "a string");
  return std::string_view(value->string);
}

absl::StatusOr<int64_t> GgufFile::GetInt(std::string_view key) const {
  DUET_ASSIGN_OR_RETURN(const GgufValue* value, Require(key));
  if (!IsIntegerType(value->type) || value->type == GgufValueType::kBool) {
    return WrongType(key, *value, "an integer");
  }
  return value->integer;
}

absl::StatusOr<double> GgufFile::GetFloat(std::string_view key) const {
  DUET_ASSIGN_OR_RETURN(const GgufValue* value, Require(key));
  if (IsFloatType(value->type)) return value->real;
  if (IsIntegerType(value->type) && value->type != GgufValueType::kBool) {
    return static_cast<double>(value->integer);
  }
  return WrongType(key, *value, "a number");
}

absl::StatusOr<bool> GgufFile::GetBool(std::string_view key) const {
  DUET_ASSIGN_OR_RETURN(const GgufValue* value, Require(key));
  if (value->type != GgufValueType::kBool) return WrongType(key, *value, "a bool");
  return value->integer != 0;
}

absl::StatusOr<std::span<const std::string>> GgufFile::GetStringArray(std::string_view key) const {
  DUET_ASSIGN_OR_RETURN(const GgufValue* value, Require(key));
  if (value->type != GgufValueType::kArray || value->element_type != GgufValueType::kString) {
    return WrongType(key, *value, "an array of strings");
  }
  return std::span<const std::string>(value->strings);
}

absl::StatusOr<std::vector<int64_t>> GgufFile::GetIntArray(std::string_view key) const {
  DUET_ASSIGN_OR_RETURN(const GgufValue* value, Require(key));
  if (value->type != GgufValueType::kArray || !IsIntegerType(value->element_type) ||
      value->element_type == GgufValueType::kBool) {
    return WrongType(key, *value, "an array of integers");
  }
  return value->integers;
}

absl::StatusOr<std::vector<double>> GgufFile::GetFloatArray(std::string_view key) const {
  DUET_ASSIGN_OR_RETURN(const GgufValue* value, Require(key));
  if (value->type != GgufValueType::kArray) return WrongType(key, *value, "an array of numbers");
  if (IsFloatType(value->element_type)) return value->reals;
  if (IsIntegerType(value->element_type) && value->element_type != GgufValueType::kBool) {
    return std::vector<double>(value->integers.begin(), value->integers.end());
  }
  return WrongType(key, *value, "an array of numbers");
}

}  // namespace duet
