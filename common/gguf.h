// Zero-copy access to a GGUF file (llama.cpp's model format): its metadata
// key/value pairs and its tensors, read in place from a memory mapping.
//
// Layout (versions 2 and 3, little-endian): "GGUF", uint32 version, uint64
// tensor count, uint64 metadata count; the metadata (string key, uint32 value
// type, value); one info record per tensor (string name, uint32 rank, uint64
// dims[rank] innermost first, uint32 ggml type, uint64 offset); padding to
// `general.alignment` (32 when absent); the tensor data, each tensor at its
// offset from the start of that area. Strings are a uint64 length and bytes.
#ifndef DUET_COMMON_GGUF_H_
#define DUET_COMMON_GGUF_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/mapped_file.h"

namespace duet {

// The tensor element types of ggml, numbered as in the file.
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kBF16 = 30,
};

struct GgmlTypeTraits {
  std::string_view name;   // "F32", "Q4_K", ...
  int64_t block_elements;  // elements per block (1 for plain types)
  int64_t block_bytes;     // bytes per block
};

// nullopt for a type id this reader does not know (its tensors cannot be
// sized, so such a file is rejected).
std::optional<GgmlTypeTraits> GgmlTypeInfo(uint32_t type_id);

// The metadata value types, numbered as in the file.
enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

std::string_view GgufValueTypeName(GgufValueType type);

// One decoded metadata value. Integers (every width, and bools as 0/1) are
// held as int64 (a uint64 above INT64_MAX is rejected at parse time), floats
// as double. Arrays of arrays are kept as their length only.
struct GgufValue {
  GgufValueType type = GgufValueType::kUint8;
  GgufValueType element_type = GgufValueType::kUint8;  // arrays only
  int64_t integer = 0;
  double real = 0;
  std::string string;
  std::vector<int64_t> integers;     // arrays of integers or bools
  std::vector<double> reals;         // arrays of floats
  std::vector<std::string> strings;  // arrays of strings
  uint64_t array_length = 0;         // arrays only
};

struct GgufTensor {
  std::string name;
  std::vector<int64_t> dims;  // dims[0] is the innermost (contiguous) one
  uint32_t type_id = 0;       // a GgmlType
  uint64_t offset = 0;        // from the start of the data area
  const std::byte* data = nullptr;
  size_t num_bytes = 0;

  int64_t num_elements() const;
};

// The parsed header of a GGUF image: everything but the tensor bytes, which
// `tensors[i].data` points into.
struct GgufContents {
  uint32_t version = 0;
  uint64_t alignment = 32;
  uint64_t data_offset = 0;  // start of the data area in the image
  std::vector<std::pair<std::string, GgufValue>> metadata;  // in file order
  std::vector<GgufTensor> tensors;                          // in file order
};

// Parses and validates a whole GGUF image held in `bytes` (which must outlive
// the result). Every error is InvalidArgument and names the byte offset and
// the key or tensor it was reading: bad magic, unsupported version, truncated
// or oversized fields, unknown value or tensor types, duplicate keys or
// tensor names, a bad alignment, tensors misaligned, overlapping or past the
// end of the image, sizes that overflow.
absl::StatusOr<GgufContents> ParseGgufBytes(std::span<const std::byte> bytes);

// One open GGUF file.
//
// Thread-safety: immutable after Open; share freely across threads.
// Lifetime: everything returned borrows from this object.
class GgufFile {
 public:
  // Maps and parses `path`; errors are those of MappedFile::Open and
  // ParseGgufBytes, prefixed with the path.
  static absl::StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& path);

  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return file_.path(); }
  uint32_t version() const { return contents_.version; }
  uint64_t alignment() const { return contents_.alignment; }

  // nullptr when the key is absent.
  const GgufValue* FindMetadata(std::string_view key) const;
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const {
    return contents_.metadata;
  }

  // Typed getters: NotFound when the key is absent, InvalidArgument when it
  // holds another type; both name the file and the key. GetInt takes any
  // integer type, GetFloat any float or integer type.
  absl::StatusOr<std::string_view> GetString(std::string_view key) const;
  absl::StatusOr<int64_t> GetInt(std::string_view key) const;
  absl::StatusOr<double> GetFloat(std::string_view key) const;
  absl::StatusOr<bool> GetBool(std::string_view key) const;
  absl::StatusOr<std::span<const std::string>> GetStringArray(std::string_view key) const;
  absl::StatusOr<std::vector<int64_t>> GetIntArray(std::string_view key) const;
  absl::StatusOr<std::vector<double>> GetFloatArray(std::string_view key) const;

  const std::vector<GgufTensor>& tensors() const { return contents_.tensors; }
  // nullptr when the file has no tensor of that name.
  const GgufTensor* FindTensor(std::string_view name) const;

 private:
  GgufFile(MappedFile file, GgufContents contents);

  absl::StatusOr<const GgufValue*> Require(std::string_view key) const;
  absl::Status WrongType(std::string_view key, const GgufValue& value,
                         std::string_view wanted) const;

  MappedFile file_;
  GgufContents contents_;
  absl::flat_hash_map<std::string_view, size_t> metadata_index_;  // keys borrow contents_
  absl::flat_hash_map<std::string_view, size_t> tensor_index_;
};

}  // namespace duet

#endif  // DUET_COMMON_GGUF_H_
