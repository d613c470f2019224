// Parsing and validation of the safetensors layout, free of file I/O so the
// fuzzer and tests call it on bytes in memory.
//
// File layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
// (the header), then the data area. The header maps tensor names to
// {"dtype", "shape", "data_offsets": [begin, end]} with offsets relative to
// the data area, plus an optional "__metadata__" object of strings.
#ifndef DUET_COMMON_SAFETENSORS_HEADER_H_
#define DUET_COMMON_SAFETENSORS_HEADER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/dtype.h"

namespace duet {

// Larger headers are rejected before they are parsed (the reference
// implementation's bound is similar: 100 MB).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = uint64_t{100} << 20;

// One validated tensor. Invariants: every dim >= 0, the element count and
// byte size fit in int64 / uint64 without overflow,
// data_end - data_begin == num_elements * DTypeSizeBytes(dtype), and
// data_end <= the data area size the header was parsed against.
struct SafetensorsEntry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;  // [rank]; empty for a scalar
  uint64_t data_begin;         // byte offset into the data area
  uint64_t data_end;           // one past the last byte

  uint64_t num_bytes() const { return data_end - data_begin; }
  int64_t num_elements() const;  // 1 for a scalar
};

struct SafetensorsHeader {
  // Sorted by data_begin (file order). Together the ranges tile the data area
  // exactly: no overlap, no hole, nothing after the last tensor.
  std::vector<SafetensorsEntry> tensors;
  std::map<std::string, std::string> metadata;  // "__metadata__", if any
};

// Validates the JSON header `header_json` of `file_name` (used only in
// messages) against a data area of `data_size_bytes` bytes. Rejects, with a
// message naming the file and, where there is one, the tensor:
//   InvalidArgument: not JSON, not an object, a duplicate name, an entry or
//     field of the wrong JSON type, an unknown/unsupported dtype, a negative or
//     non-integer dim, a shape whose byte size overflows, begin > end, a byte
//     range that does not match the shape, overlapping tensors, a hole between
//     tensors or bytes left over after the last one (the format forbids holes),
//     a non-string metadata value;
//   DataLoss: a tensor that ends past the data area (a truncated file).
absl::StatusOr<SafetensorsHeader> ParseSafetensorsHeader(std::string_view header_json,
                                                         uint64_t data_size_bytes,
                                                         std::string_view file_name);

// Where the pieces of a safetensors file lie inside its bytes.
struct SafetensorsLayout {
  SafetensorsHeader header;
  uint64_t data_offset_bytes;  // start of the data area in the file: 8 + N
};

// Reads the length prefix of the whole file `file_bytes` and validates the
// header against the rest. Errors name `file_name`: DataLoss when the file is
// shorter than 8 bytes or than the header length it declares, InvalidArgument
// when the declared length exceeds kMaxSafetensorsHeaderBytes, and everything
// ParseSafetensorsHeader reports.
absl::StatusOr<SafetensorsLayout> ParseSafetensorsFileBytes(std::span<const std::byte> file_bytes,
                                                            std::string_view file_name);

}  // namespace duet

#endif  // DUET_COMMON_SAFETENSORS_HEADER_H_
