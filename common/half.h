// Scalar conversions between fp32 and the 16-bit float formats checkpoints
// store (IEEE binary16 "F16" and bfloat16 "BF16"), and from float8_e4m3fn
// ("F8_E4M3"). Header-only; vectorised
// variants live next to the kernels that need them.
#ifndef DUET_COMMON_HALF_H_
#define DUET_COMMON_HALF_H_

#include <bit>
#include <cstdint>
#include <limits>

namespace duet {

inline float Bf16ToFloat(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

// Round to nearest even, as torch does; NaN stays NaN.
inline uint16_t FloatToBf16(float value) {
  uint32_t bits = std::bit_cast<uint32_t>(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

inline float F16ToFloat(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1fu;
  uint32_t mantissa = bits & 0x3ffu;
  if (exponent == 0x1f) {  // inf / NaN
    return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  }
  if (exponent == 0) {
    if (mantissa == 0) return std::bit_cast<float>(sign);
    // Subnormal: value = mantissa * 2^-24.
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return sign ? -magnitude : magnitude;
  }
  return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

// Round to nearest even; overflow becomes inf.
inline uint16_t FloatToF16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t abs_bits = bits & 0x7fffffffu;
  if (abs_bits > 0x7f800000u) return sign | 0x7e00u;                 // NaN
  if (abs_bits >= 0x477ff000u) return sign | 0x7c00u;                // >= 65520: inf
  if (abs_bits < 0x38800000u) {                                      // subnormal or zero
    const float magnitude = std::bit_cast<float>(abs_bits);
    // Scale so one subnormal ulp (2^-24) becomes 1.0 and let the FPU round.
    const float scaled = magnitude * 0x1p24f;
    const uint32_t rounded = static_cast<uint32_t>(__builtin_nearbyintf(scaled));
    return sign | static_cast<uint16_t>(rounded);
  }
  uint32_t rounded = abs_bits + 0xfffu + ((abs_bits >> 13) & 1u);
  return sign | static_cast<uint16_t>((rounded - (112u << 23)) >> 13);
}

// Decodes one float8_e4m3fn value (1 sign, 4 exponent bits with bias 7, 3
// mantissa bits). Every e4m3fn value is exactly representable in fp32, so no
// rounding happens. 0x7f and 0xff (exponent and mantissa all ones) are NaN;
// the format has no infinities, so 0x78..0x7e are ordinary finite values up to
// 448. Subnormals (exponent 0) are mantissa * 2^-9.
inline float F8E4M3ToFloat(uint8_t bits) {
  const bool negative = (bits & 0x80u) != 0;
  const uint32_t exponent = (bits >> 3) & 0xfu;
  const uint32_t mantissa = bits & 0x7u;
  float magnitude;
  if (exponent == 0xf && mantissa == 0x7) {
    magnitude = std::numeric_limits<float>::quiet_NaN();
  } else if (exponent == 0) {
    magnitude = static_cast<float>(mantissa) * 0x1p-9f;
  } else {
    // Rebias 7 -> 127 and widen the mantissa from 3 to 23 bits.
    magnitude = std::bit_cast<float>(((exponent + 120u) << 23) | (mantissa << 20));
  }
  return negative ? -magnitude : magnitude;
}

}  // namespace duet

// Encodes `value` as float8_e4m3fn, rounding to nearest even and saturating
// to ±448 (the format has no infinities); NaN becomes 0x7f with its sign.
inline uint8_t FloatToF8E4M3(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80u);
  const uint32_t abs_bits = bits & 0x7fffffffu;
  if (abs_bits > 0x7f800000u) return sign | 0x7fu;
  const float magnitude = std::bit_cast<float>(abs_bits);
  if (magnitude >= 464.0f) return sign | 0x7eu;  // 448 and the ties above it
  if (magnitude < 0x1p-6f) {
    // Subnormal or zero: multiples of 2^-9; let the FPU round to even.
    return sign | static_cast<uint8_t>(__builtin_nearbyintf(magnitude * 0x1p9f));
  }
  // Normal: keep 3 of fp32's 23 mantissa bits, rounding to nearest even; a
  // carry into the exponent is the correct next binade (448 at most here).
  const uint32_t rounded = abs_bits + 0x7ffffu + ((abs_bits >> 20) & 1u);
  return sign | static_cast<uint8_t>((rounded - (120u << 23)) >> 20);
}

#endif  // DUET_COMMON_HALF_H_
