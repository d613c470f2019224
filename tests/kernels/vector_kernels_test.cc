// The CPU vector kernels that promise an exact order of operations: checked
// bit for bit against the kernels they stand for, on every instruction set
// this CPU has.
#include "kernels/cpu/vector_kernels.h"

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace duet::kernels::cpu
