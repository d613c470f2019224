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
// exactly (already rounded to `type`).
struct TestWeight {
  WeightType type;
  int64_t rows;
  int64_t cols;
  std::vector<uint8_t> bytes;
  std::vector<float> values;

  Weight view() const { return {bytes.data(), type, rows, cols}; }
  // The same matrix with |w| elements.
  TestWeight Abs() const;
};

inline TestWeight MakeTestWeight(WeightType type, int64_t rows, int64_t cols, uint32_t seed) {
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

inline TestWeight TestWeight::Abs() const {
  TestWeight result = *this;
  const int size = WeightTypeSize(type);
  for (size_t i = 0; i < values.size(); ++i) {
    result.values[i] = std::fabs(values[i]);
    result.bytes[size * i + size - 1] &= 0x7f;  // little-endian sign bit
  }
  return result;
}

inline std::string WeightTypeName(WeightType type) {
  switch (type) {
    case WeightType::kF32:
      return "f32";
    case WeightType::kF16:
      return "f16";
    case WeightType::kBF16:
      return "bf16";
  }
  return "?";
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
