// Element types of checkpoint tensors, named as safetensors names them.
#ifndef DUET_COMMON_DTYPE_H_
#define DUET_COMMON_DTYPE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "common/half.h"

namespace duet {

enum class DType : uint8_t {
  kF32,
  kF16,
  kBF16,
  kI8,
  kU8,
  kI32,
  kI64,
  kF8E4M3,  // float8_e4m3fn: no infinities, one NaN pattern per sign.
};

// Bytes per element.
size_t DTypeSizeBytes(DType dtype);

// The safetensors spelling: "F32", "F16", "BF16", "I8", "U8", "I32", "I64",
// "F8_E4M3".
std::string_view DTypeName(DType dtype);

// Inverse of DTypeName; nullopt for any other string (including the
// safetensors dtypes duet does not support, such as "F64" or "BOOL").
std::optional<DType> ParseDTypeName(std::string_view name);

// F8E4M3ToFloat, the float8_e4m3fn decoder, is in common/half.h.

}  // namespace duet

#endif  // DUET_COMMON_DTYPE_H_
