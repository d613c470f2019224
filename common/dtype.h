// Element types of checkpoint tensors, named as safetensors names them.
#ifndef DUET_COMMON_DTYPE_H_
#define DUET_COMMON_DTYPE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

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

// Decodes one float8_e4m3fn value (1 sign, 4 exponent bits with bias 7, 3
// mantissa bits). Every e4m3fn value is exactly representable in fp32, so no
// rounding happens. 0x7f and 0xff (exponent and mantissa all ones) are NaN;
// the format has no infinities, so 0x78..0x7e are ordinary finite values up to
// 448. Subnormals (exponent 0) are mantissa * 2^-9.
float F8E4M3ToFloat(uint8_t bits);

}  // namespace duet

#endif  // DUET_COMMON_DTYPE_H_
