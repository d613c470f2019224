// The CPU vector kernels that promise an exact order of operations: checked
// bit for bit against the kernels they stand for, on every instruction set
// this CPU has.
#include "kernels/cpu/vector_kernels.h"

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "common/half.h"
#include "kernels/cpu/cpu_isa.h"

namespace duet::kernels::cpu {
namespace {

std::vector<const VectorKernels*> AllKernels() {
  std::vector<const VectorKernels*> all = {&ScalarVectorKernels()};
  if (IsaSupported(Isa::kAvx2)) all.push_back(&Avx2VectorKernels());
  return all;
}

// weighted_rows is, per element, the axpys of each row in turn.
TEST(VectorKernelsTest, WeightedRowsEqualsAxpysInOrder) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  for (const VectorKernels* vec : AllKernels()) {
    for (int64_t n : {1, 7, 16, 64, 72, 128, 131}) {
      for (int64_t num_weights : {1, 3, 4, 5, 8}) {
        for (int64_t count : {1, 2, 16}) {
          constexpr int64_t kStride = 20, kOffset = 3;
          std::vector<std::vector<float>> storage(count, std::vector<float>(n + kOffset));
          std::vector<const float*> rows;
          for (auto& row : storage) {
            for (float& x : row) x = value(rng);
            rows.push_back(row.data());
          }
          std::vector<float> weights(num_weights * kStride);
          for (float& w : weights) w = value(rng);
          std::vector<float> y(num_weights * n);
          for (float& v : y) v = value(rng);
          std::vector<float> expected = y;
          for (int64_t g = 0; g < num_weights; ++g) {
            for (int64_t t = 0; t < count; ++t) {
              vec->axpy(weights[g * kStride + t], rows[t] + kOffset, expected.data() + g * n, n);
            }
          }
          vec->weighted_rows(weights.data(), num_weights, kStride, rows.data(), kOffset, count, y.data(), n);
          EXPECT_EQ(std::memcmp(y.data(), expected.data(), y.size() * sizeof(float)), 0)
              << "n " << n << ", weights " << num_weights << ", rows " << count;
        }
      }
    }
  }
}

// The bf16 row kernels are the fp32 ones on the widened rows, to the bit.
TEST(VectorKernelsTest, Bf16RowKernelsAreTheFp32KernelsOnTheWidenedRows) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> value(-2.0f, 2.0f);
  for (const VectorKernels* vec : AllKernels()) {
    for (int64_t n : {1, 7, 8, 16, 64, 72, 128, 131}) {
      constexpr int64_t kOffset = 3, kStride = 20;
      constexpr int64_t kCount = 17;
      std::vector<std::vector<uint16_t>> bits(kCount, std::vector<uint16_t>(n + kOffset));
      std::vector<std::vector<float>> widened(kCount, std::vector<float>(n + kOffset));
      std::vector<const uint16_t*> bf16_rows;
      std::vector<const float*> fp32_rows;
      for (int64_t t = 0; t < kCount; ++t) {
        for (int64_t i = 0; i < n + kOffset; ++i) {
          bits[t][i] = FloatToBf16(value(rng));
          widened[t][i] = Bf16ToFloat(bits[t][i]);
        }
        bf16_rows.push_back(bits[t].data());
        fp32_rows.push_back(widened[t].data());
      }
      for (int64_t num_queries : {1, 3, 4, 5, 8}) {
        std::vector<float> queries(num_queries * n);
        for (float& q : queries) q = value(rng);
        std::vector<float> expected(num_queries * 2), got(num_queries * 2);
        vec->dots(queries.data(), num_queries, widened[0].data(), n, expected.data(), 2);
        vec->dots_bf16(queries.data(), num_queries, bits[0].data(), n, got.data(), 2);
        for (int64_t g = 0; g < num_queries; ++g) {
          EXPECT_EQ(std::memcmp(&got[g * 2], &expected[g * 2], sizeof(float)), 0)
              << "dots n " << n << " queries " << num_queries << " g " << g;
        }
        std::vector<float> weights(num_queries * kStride);
        for (float& w : weights) w = value(rng);
        std::vector<float> y(num_queries * n);
        for (float& v : y) v = value(rng);
        std::vector<float> y_expected = y;
        vec->weighted_rows(weights.data(), num_queries, kStride, fp32_rows.data(), kOffset, kCount,
                           y_expected.data(), n);
        vec->weighted_rows_bf16(weights.data(), num_queries, kStride, bf16_rows.data(), kOffset, kCount, y.data(),
                                n);
        EXPECT_EQ(std::memcmp(y.data(), y_expected.data(), y.size() * sizeof(float)), 0)
            << "weighted_rows n " << n << " weights " << num_queries;
      }
    }
  }
}

}  // namespace
}  // namespace duet::kernels::cpu
