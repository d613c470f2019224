// Block-quantized matmul with 8-bit activations (kernels/quant_dot.h): the
// rounding of the activations on hand-made rows, the definition (Int8Dot)
// against the exact product of the dequantised weights within that rounding,
// and the CPU backend's kernels against the definition bit for bit.
#include "kernels/quant_dot.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/ops.h"
#include "tests/kernels/test_util.h"

namespace duet::kernels::testing {
namespace {

constexpr WeightType kBlockTypes[] = {WeightType::kQ8_0, WeightType::kQ4_0, WeightType::kQ4_1,
                                      WeightType::kQ4_K, WeightType::kQ5_K, WeightType::kQ6_K};

Int8Rows Quantize(const std::vector<float>& x, int64_t rows, int64_t block) {
  Int8Rows out;
  out.Resize(rows, static_cast<int64_t>(x.size()) / rows, block);
  for (int64_t r = 0; r < rows; ++r) QuantizeInt8Row(x.data(), r, &out);
  return out;
}

TEST(QuantDotTest, ActivationBlocks) {
  EXPECT_EQ(Int8ActivationBlock(WeightType::kQ8_0), 32);
  EXPECT_EQ(Int8ActivationBlock(WeightType::kQ4_1), 32);
  EXPECT_EQ(Int8ActivationBlock(WeightType::kQ4_K), 256);
  EXPECT_EQ(Int8ActivationBlock(WeightType::kQ6_K), 256);
  EXPECT_DEATH(Int8ActivationBlock(WeightType::kBF16), "block-quantized");
}

// The largest magnitude maps to ±127, the rest round half to even, each
// block on its own scale; zero blocks stay zero and a NaN poisons its block.
TEST(QuantDotTest, RoundsEachBlockToItsLargestValue) {
  std::vector<float> x(4 * 32, 0.0f);
  x[0] = -2.0f;     // block 0: scale 2/127
  x[1] = 1.0f;      // 63.5 -> 64 (half to even)
  x[2] = 1.0f / 127;  // 0.5 -> 0
  x[3] = 3.0f / 127;  // 1.5 -> 2
  x[32] = 0.5f;     // block 1: scale 0.5/127
  x[33] = -0.25f;   // -63.5 -> -64
  // block 2 all zero
  x[96] = NAN;      // block 3
  x[97] = 1.0f;
  const Int8Rows q = Quantize(x, 1, 32);
  EXPECT_FLOAT_EQ(q.scales[0], 2.0f / 127);
  EXPECT_EQ(q.q[0], -127);
  EXPECT_EQ(q.q[1], 64);
  EXPECT_EQ(q.q[2], 0);
  EXPECT_EQ(q.q[3], 2);
  EXPECT_FLOAT_EQ(q.scales[1], 0.5f / 127);
  EXPECT_EQ(q.q[32], 127);
  EXPECT_EQ(q.q[33], -64);
  EXPECT_EQ(q.scales[2], 0.0f);
  EXPECT_EQ(q.q[64], 0);
  EXPECT_TRUE(std::isnan(q.scales[3]));
  EXPECT_EQ(q.q[97], 0);
  EXPECT_EQ(q.sums[0], -127 + 64 + 2);
  EXPECT_EQ(q.sums[1], 0);
  EXPECT_EQ(q.sums[2], 127 - 64);
}

// Int8Dot is the exact product of the dequantised weights and the rounded
// activations, up to fp32 rounding; so it is within Σ|w|·d_x/2 of the exact
// product with the original activations.
TEST(QuantDotTest, DotIsTheExactProductWithinTheActivationRounding) {
  uint32_t seed = 7;
  for (WeightType type : kBlockTypes) {
    const int64_t rows = 5, cols = 4 * 256;
    const TestWeight w = MakeTestWeight(type, rows, cols, ++seed);
    std::vector<float> x = RandomFloats(cols, ++seed, -2, 2);
    x[300] = 9.0f;  // an outlier widens one block's step
    const int64_t block = Int8ActivationBlock(type);
    const Int8Rows q = Quantize(x, 1, block);
    for (int64_t n = 0; n < rows; ++n) {
      const float* wn = w.values.data() + n * cols;
      double exact = 0, rounded = 0, abs_sum = 0, bound = 0;
      for (int64_t i = 0; i < cols; ++i) {
        const double x_hat = static_cast<double>(q.q[i]) * q.scales[i / block];
        exact += double{wn[i]} * x[i];
        rounded += double{wn[i]} * x_hat;
        abs_sum += std::fabs(double{wn[i]} * x_hat);
        bound += std::fabs(wn[i]) * (0.5 * q.scales[i / block] + 1e-6 * std::fabs(x[i]));
      }
      const float dot = Int8Dot(type, w.bytes.data() + n * WeightRowBytes(type, cols), q, 0);
      const std::string what = absl::StrCat(std::string(WeightTypeName(type)), " row ", n);
      EXPECT_NEAR(dot, rounded, 1e-5 * abs_sum + 1e-6) << what;
      EXPECT_NEAR(dot, exact, bound + 1e-5 * abs_sum) << what;
      EXPECT_GT(std::fabs(dot - exact), 0) << what << ": the rounding is visible";
    }
  }
}

// The SIMD rounding gives QuantizeInt8Row's bytes, scales and sums.
TEST(QuantDotTest, SimdQuantizerEqualsDefinition) {
  if (!cpu::IsaSupported(cpu::Isa::kAvx2)) GTEST_SKIP() << "no AVX2";
  uint32_t seed = 20;
  for (int64_t block : {32, 256}) {
    const int64_t rows = 3, cols = 3 * 256;
    std::vector<float> x = RandomFloats(rows * cols, ++seed, -3, 3);
    for (int i = 0; i < 32; ++i) x[128 + i] = 1e-40f * static_cast<float>(i - 16);  // 127/max overflows
    for (int i = 0; i < 32; ++i) x[cols + 64 + i] = 0.0f;
    x[2 * cols + 7] = INFINITY;
    Int8Rows expected, simd;
    expected.Resize(rows, cols, block);
    simd.Resize(rows, cols, block);
    cpu::QuantizeInt8RowsScalar(x.data(), 0, rows, &expected);
    cpu::QuantizeInt8RowsAvx2(x.data(), 0, rows, &simd);
    EXPECT_EQ(simd.q, expected.q) << block;
    EXPECT_EQ(simd.sums, expected.sums) << block;
    ASSERT_EQ(simd.scales.size(), expected.scales.size());
    EXPECT_EQ(std::memcmp(simd.scales.data(), expected.scales.data(), simd.scales.size() * 4), 0)
        << block;
  }
}

// Every ISA's int8 matmul, through the backend, is Int8Dot element by element
// bit for bit: for every type, row count (tiles of 1-4 rows, ragged ones),
// thread count and column split.
TEST(QuantDotTest, CpuInt8MatmulEqualsInt8Dot) {
  uint32_t seed = 60;
  for (const cpu::Isa isa : {cpu::Isa::kScalar, cpu::Isa::kAvx2, cpu::Isa::kAvx512}) {
    if (!cpu::IsaSupported(isa)) continue;
    for (int threads : {1, 3}) {
      std::unique_ptr<Backend> backend = cpu::MakeCpuBackendForIsa(isa, threads, QuantizedMatmul::kInt8);
      for (WeightType type : kBlockTypes) {
        for (int64_t m : {1, 2, 5, 8, 9, 13}) {
          for (int64_t k : {256, 2048}) {
            const int64_t n = isa == cpu::Isa::kScalar ? 37 : 301;
            const std::string what = absl::StrCat(std::string(backend->name()), " ",
                                                  std::string(WeightTypeName(type)), " m ", m, " k ", k);
            const TestWeight w = MakeTestWeight(type, n, k, ++seed);
            const std::vector<float> x = RandomFloats(m * k, ++seed);
            std::vector<float> actual(m * n);
            backend->Matmul(x.data(), w.view(), actual.data(), m);
            const Int8Rows q = Quantize(x, m, Int8ActivationBlock(type));
            std::vector<float> expected(m * n);
            for (int64_t r = 0; r < m; ++r) {
              for (int64_t c = 0; c < n; ++c) {
                expected[r * n + c] = Int8Dot(type, w.bytes.data() + c * WeightRowBytes(type, k), q, r);
              }
            }
            EXPECT_EQ(std::memcmp(actual.data(), expected.data(), actual.size() * 4), 0) << what;
          }
        }
      }
    }
  }
}

// A NaN activation makes its row NaN, as the fp32 path would.
TEST(QuantDotTest, NanActivationGivesNan) {
  std::unique_ptr<Backend> backend = MakeCpuBackend(2, QuantizedMatmul::kInt8);
  const TestWeight w = MakeTestWeight(WeightType::kQ4_K, 8, 512, 3);
  std::vector<float> x = RandomFloats(2 * 512, 4);
  x[700] = NAN;  // row 1
  std::vector<float> y(2 * 8);
  backend->Matmul(x.data(), w.view(), y.data(), 2);
  for (int c = 0; c < 8; ++c) {
    EXPECT_FALSE(std::isnan(y[c])) << c;
    EXPECT_TRUE(std::isnan(y[8 + c])) << c;
  }
}

TEST(QuantDotTest, ModeNames) {
  QuantizedMatmul mode;
  ASSERT_TRUE(ParseQuantizedMatmul("fp32", &mode));
  EXPECT_EQ(mode, QuantizedMatmul::kFloat);
  ASSERT_TRUE(ParseQuantizedMatmul("int8", &mode));
  EXPECT_EQ(mode, QuantizedMatmul::kInt8);
  EXPECT_EQ(QuantizedMatmulName(QuantizedMatmul::kFloat), "fp32");
  EXPECT_FALSE(ParseQuantizedMatmul("int4", &mode));
}

}  // namespace
}  // namespace duet::kernels::testing
