// Helpers shared by the kernel tests: deterministic random inputs, weights in
// every stored dtype, and tolerance checks that report the worst element.
#ifndef DUET_TESTS_KERNELS_TEST_UTIL_H_
#define DUET_TESTS_KERNELS_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/half.h"
#include "kernels/block_quant.h"
#include "kernels/ops.h"

namespace duet::kernels::testing {

// fp32's unit roundoff.
constexpr double kUnitRoundoff = 0x1p-24;

inline std::vector<float> RandomFloats(size_t count, uint32_t seed, float lo = -1.0f,
                                       float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> values(count);
  for (float& v : values) v = dist(rng);
  return values;
}

// A weight matrix [rows, cols] stored as `type`; `values` are its elements
// exactly (already rounded to `type`, or dequantised from its blocks).
struct TestWeight {
  WeightType type;
  int64_t rows;
  int64_t cols;
  std::vector<uint8_t> bytes;
  std::vector<float> values;

  Weight view() const { return {bytes.data(), type, rows, cols}; }
  // The matrix of |w| elements, stored as fp32.
  TestWeight AbsF32() const;
};

// Where the fp16 scale fields of a `type` block lie (byte offsets).
inline std::vector<int> BlockScaleOffsets(WeightType type) {
  switch (type) {
    case WeightType::kQ8_0:
    case WeightType::kQ4_0:
      return {0};
    case WeightType::kQ4_1:
    case WeightType::kQ4_K:
    case WeightType::kQ5_K:
      return {0, 2};
    case WeightType::kQ6_K:
      return {208};
    default:
      return {};
  }
}

// Random blocks: random quantized bits, and fp16 scales (and mins) drawn so
// the values stay within about ±1, whatever the block type.
inline std::vector<uint8_t> RandomBlocks(WeightType type, int64_t rows, int64_t cols,
                                         uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> bytes(rows * WeightRowBytes(type, cols));
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
  // Largest |quantized value| the scale multiplies (for K types: up to 63
  // times a 6-bit sub-block scale).
  float max_q = 0;
  switch (type) {
    case WeightType::kQ8_0: max_q = 128; break;
    case WeightType::kQ4_0: max_q = 8; break;
    case WeightType::kQ4_1: max_q = 15; break;
    case WeightType::kQ4_K: max_q = 15 * 63; break;
    case WeightType::kQ5_K: max_q = 31 * 63; break;
    case WeightType::kQ6_K: max_q = 32 * 128; break;
    default: break;
  }
  std::uniform_real_distribution<float> scale(0.1f / max_q, 1.0f / max_q);
  std::uniform_real_distribution<float> min(-1.0f / 63, 1.0f / 63);
  const int64_t block_bytes = WeightTypeBlockBytes(type);
  const std::vector<int> offsets = BlockScaleOffsets(type);
  for (size_t block = 0; block * block_bytes < bytes.size(); ++block) {
    for (size_t f = 0; f < offsets.size(); ++f) {
      // The second field is a min: Q4_1 adds it, the K types subtract it.
      const float value = f == 0 ? scale(rng) : (type == WeightType::kQ4_1 ? -0.5f : 0.0f) + min(rng);
      const uint16_t bits = FloatToF16(value);
      std::memcpy(bytes.data() + block * block_bytes + offsets[f], &bits, 2);
    }
  }
  return bytes;
}

inline TestWeight MakeTestWeight(WeightType type, int64_t rows, int64_t cols, uint32_t seed) {
  if (IsBlockQuantized(type)) {
    TestWeight w{type, rows, cols, RandomBlocks(type, rows, cols, seed),
                 std::vector<float>(rows * cols)};
    const int64_t row_bytes = WeightRowBytes(type, cols);
    for (int64_t r = 0; r < rows; ++r) {
      DequantizeRow(type, w.bytes.data() + r * row_bytes, cols, w.values.data() + r * cols);
    }
    return w;
  }
  TestWeight w{type, rows, cols, {}, RandomFloats(rows * cols, seed)};
  w.bytes.resize(w.values.size() * WeightTypeSize(type));
  for (size_t i = 0; i < w.values.size(); ++i) {
    if (type == WeightType::kF32) {
      std::memcpy(w.bytes.data() + 4 * i, &w.values[i], 4);
      continue;
    }
    const uint16_t bits =
        type == WeightType::kBF16 ? FloatToBf16(w.values[i]) : FloatToF16(w.values[i]);
    w.values[i] = type == WeightType::kBF16 ? Bf16ToFloat(bits) : F16ToFloat(bits);
    std::memcpy(w.bytes.data() + 2 * i, &bits, 2);
  }
  return w;
}

// The same matrix stored as fp32.
inline TestWeight AsF32(const TestWeight& w) {
  TestWeight result{WeightType::kF32, w.rows, w.cols, std::vector<uint8_t>(w.values.size() * 4),
                    w.values};
  std::memcpy(result.bytes.data(), w.values.data(), result.bytes.size());
  return result;
}

inline TestWeight TestWeight::AbsF32() const {
  TestWeight result = AsF32(*this);
  for (float& v : result.values) v = std::fabs(v);
  std::memcpy(result.bytes.data(), result.values.data(), result.bytes.size());
  return result;
}

// Expects |actual[i] - expected[i]| <= bound[i] for every i, reporting the
// worst violation (and how many there are) once.
inline void ExpectWithin(const std::vector<float>& actual, const std::vector<float>& expected,
                         const std::vector<double>& bound, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  size_t violations = 0;
  size_t worst = 0;
  double worst_ratio = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double error = std::fabs(double{actual[i]} - expected[i]);
    const double ratio = error / bound[i];
    if (!(error <= bound[i])) {
      ++violations;
      if (!(ratio <= worst_ratio)) {
        worst_ratio = ratio;
        worst = i;
      }
    }
  }
  EXPECT_EQ(violations, 0u) << what << ": worst at index " << worst << ": got " << actual[worst]
                            << ", expected " << expected[worst] << ", bound " << bound[worst];
}

// Bound rel·|expected| + abs for every element.
inline void ExpectClose(const std::vector<float>& actual, const std::vector<float>& expected,
                        double rel, double abs, const std::string& what) {
  std::vector<double> bound(expected.size());
  for (size_t i = 0; i < expected.size(); ++i) bound[i] = rel * std::fabs(expected[i]) + abs;
  ExpectWithin(actual, expected, bound, what);
}

}  // namespace duet::kernels::testing

#endif  // DUET_TESTS_KERNELS_TEST_UTIL_H_
