#include "common/dtype.h"

#include <cmath>

#include "gtest/gtest.h"

namespace duet {
namespace {

TEST(DTypeTest, SizesAndNames) {
  const struct {
    DType dtype;
    std::string_view name;
    size_t size_bytes;
  } cases[] = {
      {DType::kF32, "F32", 4}, {DType::kF16, "F16", 2},        {DType::kBF16, "BF16", 2},
      {DType::kI8, "I8", 1},   {DType::kU8, "U8", 1},          {DType::kI32, "I32", 4},
      {DType::kI64, "I64", 8}, {DType::kF8E4M3, "F8_E4M3", 1},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(DTypeName(c.dtype), c.name);
    EXPECT_EQ(DTypeSizeBytes(c.dtype), c.size_bytes) << c.name;
    EXPECT_EQ(ParseDTypeName(c.name), c.dtype) << c.name;
  }
}

TEST(DTypeTest, RejectsOtherNames) {
  for (std::string_view name : {"", "f32", "F64", "BOOL", "F8_E5M2", "U16", "I16", "F32 "}) {
    EXPECT_FALSE(ParseDTypeName(name).has_value()) << name;
  }
}

TEST(DTypeTest, F8E4M3KnownValues) {
  EXPECT_EQ(F8E4M3ToFloat(0x00), 0.0f);
  EXPECT_TRUE(std::signbit(F8E4M3ToFloat(0x80)));
  EXPECT_EQ(F8E4M3ToFloat(0x80), 0.0f);
  EXPECT_EQ(F8E4M3ToFloat(0x38), 1.0f);
  EXPECT_EQ(F8E4M3ToFloat(0x3c), 1.5f);
  EXPECT_EQ(F8E4M3ToFloat(0x40), 2.0f);
  EXPECT_EQ(F8E4M3ToFloat(0xc0), -2.0f);
  EXPECT_EQ(F8E4M3ToFloat(0x7e), 448.0f);  // largest finite
  EXPECT_EQ(F8E4M3ToFloat(0xfe), -448.0f);
  EXPECT_EQ(F8E4M3ToFloat(0x78), 256.0f);   // exponent all ones is still finite
  EXPECT_EQ(F8E4M3ToFloat(0x08), 0x1p-6f);  // smallest normal
  EXPECT_EQ(F8E4M3ToFloat(0x01), 0x1p-9f);  // smallest subnormal
  EXPECT_EQ(F8E4M3ToFloat(0x07), 7 * 0x1p-9f);
  EXPECT_EQ(F8E4M3ToFloat(0x81), -0x1p-9f);
  EXPECT_TRUE(std::isnan(F8E4M3ToFloat(0x7f)));
  EXPECT_TRUE(std::isnan(F8E4M3ToFloat(0xff)));
}

TEST(DTypeTest, F8E4M3IsMonotonicAndSymmetric) {
  for (int bits = 1; bits < 0x7f; ++bits) {
    EXPECT_LT(F8E4M3ToFloat(static_cast<uint8_t>(bits - 1)),
              F8E4M3ToFloat(static_cast<uint8_t>(bits)))
        << bits;
    EXPECT_EQ(F8E4M3ToFloat(static_cast<uint8_t>(bits | 0x80)),
              -F8E4M3ToFloat(static_cast<uint8_t>(bits)))
        << bits;
  }
}

// Every e4m3fn value from its definition: (-1)^s * 2^(e-7) * (1 + m/8), or
// 2^-6 * m/8 for e == 0.
TEST(DTypeTest, F8E4M3MatchesDefinition) {
  for (int bits = 0; bits < 256; ++bits) {
    const int exponent = (bits >> 3) & 0xf;
    const int mantissa = bits & 0x7;
    if (exponent == 0xf && mantissa == 0x7) continue;
    const double magnitude = exponent == 0 ? std::ldexp(mantissa / 8.0, -6)
                                           : std::ldexp(1.0 + mantissa / 8.0, exponent - 7);
    const double expected = (bits & 0x80) ? -magnitude : magnitude;
    EXPECT_EQ(F8E4M3ToFloat(static_cast<uint8_t>(bits)), static_cast<float>(expected)) << bits;
  }
}

}  // namespace
}  // namespace duet
