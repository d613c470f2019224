#include "common/half.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "gtest/gtest.h"

namespace duet {
namespace {

float FromBits(uint32_t bits) { return std::bit_cast<float>(bits); }
uint32_t Bits(float value) { return std::bit_cast<uint32_t>(value); }

bool IsF16NaN(uint16_t bits) { return (bits & 0x7c00u) == 0x7c00u && (bits & 0x3ffu) != 0; }
bool IsBf16NaN(uint16_t bits) { return (bits & 0x7f80u) == 0x7f80u && (bits & 0x7fu) != 0; }

TEST(HalfTest, Bf16ToFloatKnownPatterns) {
  EXPECT_EQ(Bf16ToFloat(0x0000), 0.0f);
  EXPECT_EQ(Bits(Bf16ToFloat(0x8000)), 0x80000000u);
  EXPECT_EQ(Bf16ToFloat(0x3f80), 1.0f);
  EXPECT_EQ(Bf16ToFloat(0xc000), -2.0f);
  EXPECT_EQ(Bf16ToFloat(0x4049), FromBits(0x40490000u));  // 3.140625
  EXPECT_EQ(Bf16ToFloat(0x0001), FromBits(0x00010000u));  // subnormal
  EXPECT_EQ(Bf16ToFloat(0x7f7f), FromBits(0x7f7f0000u));  // largest finite
  EXPECT_EQ(Bf16ToFloat(0x7f80), std::numeric_limits<float>::infinity());
  EXPECT_EQ(Bf16ToFloat(0xff80), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(Bf16ToFloat(0x7fc0)));
  EXPECT_TRUE(std::isnan(Bf16ToFloat(0x7f81)));
}

TEST(HalfTest, FloatToBf16RoundsToNearestEven) {
  EXPECT_EQ(FloatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(FloatToBf16(FromBits(0x3f807fffu)), 0x3f80);              // below half: down
  EXPECT_EQ(FloatToBf16(FromBits(0x3f808000u)), 0x3f80);              // tie, even stays
  EXPECT_EQ(FloatToBf16(FromBits(0x3f808001u)), 0x3f81);              // above half: up
  EXPECT_EQ(FloatToBf16(FromBits(0x3f818000u)), 0x3f82);              // tie from odd: up
  EXPECT_EQ(FloatToBf16(FromBits(0xbf818000u)), 0xbf82);              // same for negatives
  EXPECT_EQ(FloatToBf16(FromBits(0x00018000u)), 0x0002);              // subnormal tie from odd
  EXPECT_EQ(FloatToBf16(FromBits(0x00008000u)), 0x0000);              // subnormal tie to zero
  EXPECT_EQ(FloatToBf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds to inf
  EXPECT_EQ(FloatToBf16(FromBits(0x7f7f7fffu)), 0x7f7f);
  EXPECT_EQ(FloatToBf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(FloatToBf16(-std::numeric_limits<float>::infinity()), 0xff80);
  EXPECT_EQ(FloatToBf16(-0.0f), 0x8000);
}

TEST(HalfTest, FloatToBf16KeepsNaN) {
  // A NaN whose payload sits only in the low 16 bits must not become inf.
  EXPECT_TRUE(IsBf16NaN(FloatToBf16(FromBits(0x7f800001u))));
  EXPECT_TRUE(IsBf16NaN(FloatToBf16(FromBits(0x7fffffffu))));
  const uint16_t negative_nan = FloatToBf16(FromBits(0xff800001u));
  EXPECT_TRUE(IsBf16NaN(negative_nan));
  EXPECT_EQ(negative_nan & 0x8000, 0x8000);
  EXPECT_TRUE(IsBf16NaN(FloatToBf16(std::numeric_limits<float>::quiet_NaN())));
}

TEST(HalfTest, Bf16RoundTripsEveryPattern) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const auto bf16 = static_cast<uint16_t>(bits);
    if (IsBf16NaN(bf16)) {
      EXPECT_TRUE(IsBf16NaN(FloatToBf16(Bf16ToFloat(bf16)))) << bits;
    } else {
      ASSERT_EQ(FloatToBf16(Bf16ToFloat(bf16)), bf16) << bits;
    }
  }
}

TEST(HalfTest, F16ToFloatKnownPatterns) {
  EXPECT_EQ(F16ToFloat(0x0000), 0.0f);
  EXPECT_EQ(Bits(F16ToFloat(0x8000)), 0x80000000u);
  EXPECT_EQ(F16ToFloat(0x3c00), 1.0f);
  EXPECT_EQ(F16ToFloat(0xc000), -2.0f);
  EXPECT_EQ(F16ToFloat(0x3555), FromBits(0x3eaaa000u));  // 0.333251953125
  EXPECT_EQ(F16ToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(F16ToFloat(0x0400), 0x1p-14f);  // smallest normal
  EXPECT_EQ(F16ToFloat(0x0001), 0x1p-24f);  // smallest subnormal
  EXPECT_EQ(F16ToFloat(0x03ff), 1023 * 0x1p-24f);
  EXPECT_EQ(F16ToFloat(0x8001), -0x1p-24f);
  EXPECT_EQ(F16ToFloat(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(F16ToFloat(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(F16ToFloat(0x7e00)));
  EXPECT_TRUE(std::isnan(F16ToFloat(0x7c01)));
  EXPECT_TRUE(std::signbit(F16ToFloat(0xfe00)));
}

TEST(HalfTest, F16ToFloatMatchesDefinition) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const uint32_t exponent = (bits >> 10) & 0x1f;
    const uint32_t mantissa = bits & 0x3ff;
    if (exponent == 0x1f) continue;
    const double magnitude =
        exponent == 0 ? std::ldexp(static_cast<double>(mantissa), -24)
                      : std::ldexp(1.0 + mantissa / 1024.0, static_cast<int>(exponent) - 15);
    const double expected = (bits & 0x8000) ? -magnitude : magnitude;
    ASSERT_EQ(F16ToFloat(static_cast<uint16_t>(bits)), static_cast<float>(expected)) << bits;
  }
}

TEST(HalfTest, FloatToF16RoundsToNearestEven) {
  EXPECT_EQ(FloatToF16(1.0f), 0x3c00);
  EXPECT_EQ(FloatToF16(-2.0f), 0xc000);
  EXPECT_EQ(FloatToF16(-0.0f), 0x8000);
  // 1 + 2^-11 lies halfway between 0x3c00 and 0x3c01: even wins.
  EXPECT_EQ(FloatToF16(1.0f + 0x1p-11f), 0x3c00);
  EXPECT_EQ(FloatToF16(1.0f + 0x1p-11f + 0x1p-23f), 0x3c01);
  EXPECT_EQ(FloatToF16(1.0f + 3 * 0x1p-11f), 0x3c02);  // tie from odd: up
  // Overflow: 65520 is the midpoint between 65504 and 2^16, which rounds to inf.
  EXPECT_EQ(FloatToF16(65504.0f), 0x7bff);
  EXPECT_EQ(FloatToF16(std::nextafter(65520.0f, 0.0f)), 0x7bff);
  EXPECT_EQ(FloatToF16(65520.0f), 0x7c00);
  EXPECT_EQ(FloatToF16(-1e9f), 0xfc00);
  EXPECT_EQ(FloatToF16(std::numeric_limits<float>::infinity()), 0x7c00);
  // Subnormals: ties to even around 2^-25 steps.
  EXPECT_EQ(FloatToF16(0x1p-25f), 0x0000);
  EXPECT_EQ(FloatToF16(std::nextafter(0x1p-25f, 1.0f)), 0x0001);
  EXPECT_EQ(FloatToF16(3 * 0x1p-25f), 0x0002);
  EXPECT_EQ(FloatToF16(-3 * 0x1p-25f), 0x8002);
  EXPECT_EQ(FloatToF16(0x1p-24f), 0x0001);
  EXPECT_EQ(FloatToF16(1e-10f), 0x0000);
  // The largest subnormal plus half an ulp rounds up into the normals.
  EXPECT_EQ(FloatToF16(1023.5f * 0x1p-24f), 0x0400);
  EXPECT_EQ(FloatToF16(0x1p-14f), 0x0400);
}

TEST(HalfTest, FloatToF16KeepsNaN) {
  EXPECT_TRUE(IsF16NaN(FloatToF16(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(IsF16NaN(FloatToF16(FromBits(0x7f800001u))));
  const uint16_t negative_nan = FloatToF16(FromBits(0xffc00000u));
  EXPECT_TRUE(IsF16NaN(negative_nan));
  EXPECT_EQ(negative_nan & 0x8000, 0x8000);
}

// Every f16 survives f16 -> f32 -> f16, and every midpoint between two
// neighbours rounds to the even one.
TEST(HalfTest, F16RoundTripsAndTiesEveryPattern) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const auto f16 = static_cast<uint16_t>(bits);
    if (IsF16NaN(f16)) {
      EXPECT_TRUE(IsF16NaN(FloatToF16(F16ToFloat(f16)))) << bits;
      continue;
    }
    ASSERT_EQ(FloatToF16(F16ToFloat(f16)), f16) << bits;
    if ((bits & 0x7fff) >= 0x7bff) continue;  // no finite upper neighbour
    const double low = F16ToFloat(f16);
    const double high = F16ToFloat(static_cast<uint16_t>(bits + 1));
    const auto midpoint = static_cast<float>((low + high) / 2);  // exact in fp32
    const uint16_t even = (bits & 1) ? static_cast<uint16_t>(bits + 1) : f16;
    ASSERT_EQ(FloatToF16(midpoint), even) << bits;
    ASSERT_EQ(FloatToF16(std::nextafter(midpoint, static_cast<float>(low))), f16) << bits;
    ASSERT_EQ(FloatToF16(std::nextafter(midpoint, static_cast<float>(high))), bits + 1) << bits;
  }
}

#if defined(__FLT16_MAX__)
// The compiler's _Float16 conversion is an independent IEEE reference.
TEST(HalfTest, FloatToF16MatchesCompilerFloat16) {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<uint32_t> any_bits;
  std::uniform_int_distribution<uint32_t> f16_range_bits(0x33000000u, 0x47800000u);
  for (int i = 0; i < 1'000'000; ++i) {
    uint32_t bits =
        (i % 2 == 0) ? any_bits(rng) : (f16_range_bits(rng) | (any_bits(rng) & 0x80000000u));
    const float value = FromBits(bits);
    if (std::isnan(value)) continue;
    const auto expected = std::bit_cast<uint16_t>(static_cast<_Float16>(value));
    ASSERT_EQ(FloatToF16(value), expected) << std::hex << bits;
  }
}
#endif

// Every finite e4m3 code round-trips, the midpoint between neighbours goes to
// the even code and anything past it to the nearer one, beyond 448 saturates.
TEST(HalfTest, FloatToF8E4M3RoundsToNearestEvenAndSaturates) {
  for (int code = 0; code < 256; ++code) {
    if ((code & 0x7f) == 0x7f) continue;
    EXPECT_EQ(FloatToF8E4M3(F8E4M3ToFloat(static_cast<uint8_t>(code))), code) << code;
  }
  for (int code = 0; code < 0x7e; ++code) {
    const float low = F8E4M3ToFloat(static_cast<uint8_t>(code));
    const float high = F8E4M3ToFloat(static_cast<uint8_t>(code + 1));
    const float mid = 0.5f * (low + high);
    const int even = (code % 2 == 0) ? code : code + 1;
    EXPECT_EQ(FloatToF8E4M3(mid), even) << code;
    EXPECT_EQ(FloatToF8E4M3(-mid), even | 0x80) << code;
    EXPECT_EQ(FloatToF8E4M3(std::nextafter(mid, 0.0f)), code) << code;
    EXPECT_EQ(FloatToF8E4M3(std::nextafter(mid, 1e9f)), code + 1) << code;
  }
  EXPECT_EQ(FloatToF8E4M3(448.0f), 0x7e);
  EXPECT_EQ(FloatToF8E4M3(463.9f), 0x7e);
  EXPECT_EQ(FloatToF8E4M3(464.0f), 0x7e);
  EXPECT_EQ(FloatToF8E4M3(1e30f), 0x7e);
  EXPECT_EQ(FloatToF8E4M3(-std::numeric_limits<float>::infinity()), 0xfe);
  EXPECT_EQ(FloatToF8E4M3(std::numeric_limits<float>::quiet_NaN()), 0x7f);
  EXPECT_EQ(FloatToF8E4M3(1e-30f), 0x00);
  EXPECT_EQ(FloatToF8E4M3(-0.0f), 0x80);
}

}  // namespace
}  // namespace duet
