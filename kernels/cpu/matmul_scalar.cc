// Portable matmul for CPUs without AVX2/FMA: eight emulated lanes per output
// element (matmul_kernels.h's order with L = 8), one element at a time.
#include <cmath>
#include <vector>

#include "common/half.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/group_quant.h"

namespace duet::kernels::cpu {
namespace {

constexpr int kLanes = 8;

float ToFloat(float value) { return value; }

struct Bf16 {
  uint16_t bits;
};
struct F16 {
  uint16_t bits;
};
float ToFloat(Bf16 value) { return Bf16ToFloat(value.bits); }
float ToFloat(F16 value) { return F16ToFloat(value.bits); }

// Lanes (0+4, 1+5, 2+6, 3+7), then (0+2, 1+3), then 0+1, as the AVX2 kernel.
float HorizontalSum(const float (&lanes)[kLanes]) {
  const float s0 = lanes[0] + lanes[4], s1 = lanes[1] + lanes[5];
  const float s2 = lanes[2] + lanes[6], s3 = lanes[3] + lanes[7];
  return (s0 + s2) + (s1 + s3);
}

template <typename Element>
void Columns(const float* x, int64_t m, const Weight& w, float* y, int64_t n_begin, int64_t n_end) {
  const auto* weights = static_cast<const Element*>(w.data);
  const int64_t k = w.cols;
  const int64_t k_vector = k / kLanes * kLanes;
  for (int64_t r = 0; r < m; ++r) {
    const float* x_row = x + r * k;
    for (int64_t n = n_begin; n < n_end; ++n) {
      const Element* w_row = weights + n * k;
      float lanes[kLanes] = {};
      for (int64_t kk = 0; kk < k_vector; kk += kLanes) {
        for (int l = 0; l < kLanes; ++l) lanes[l] += x_row[kk + l] * ToFloat(w_row[kk + l]);
      }
      float sum = HorizontalSum(lanes);
      for (int64_t kk = k_vector; kk < k; ++kk) sum += x_row[kk] * ToFloat(w_row[kk]);
      y[r * w.rows + n] = sum;
    }
  }
}

}  // namespace

void MatmulColumnsScalar(const float* x, int64_t m, const Weight& w, float* y, int64_t n_begin,
                         int64_t n_end) {
  switch (w.type) {
    case WeightType::kF32:
      return Columns<float>(x, m, w, y, n_begin, n_end);
    case WeightType::kF16:
      return Columns<F16>(x, m, w, y, n_begin, n_end);
    case WeightType::kBF16:
      return Columns<Bf16>(x, m, w, y, n_begin, n_end);
    case WeightType::kQ8_0:
    case WeightType::kQ4_0:
    case WeightType::kQ4_1:
    case WeightType::kQ4_K:
    case WeightType::kQ5_K:
    case WeightType::kQ6_K:
    case WeightType::kAwqInt4:
    case WeightType::kInt4:
    case WeightType::kF8E4M3:
      // Dequantised to fp32 panels by cpu_backend.cc before they get here.
      __builtin_trap();
  }
}

void MatmulAwqScalar(const float* x, int64_t m, const Weight& w, float* y, int64_t n_begin,
                     int64_t n_end) {
  const int64_t k = w.cols;
  std::vector<float> column(static_cast<size_t>(k));
  for (int64_t n = n_begin; n < n_end; ++n) {
    for (int64_t i = 0; i < k; ++i) column[i] = GroupQuantElement(w, n, i);
    for (int64_t r = 0; r < m; ++r) {
      float acc = 0.0f;
      for (int64_t i = 0; i < k; ++i) acc = std::fma(x[r * k + i], column[i], acc);
      y[r * w.rows + n] = acc;
    }
  }
}

void QuantizeInt8RowsScalar(const float* x, int64_t r_begin, int64_t r_end, Int8Rows* out) {
  for (int64_t r = r_begin; r < r_end; ++r) QuantizeInt8Row(x, r, out);
}

void MatmulInt8ColumnsScalar(const Int8Rows& x, const Weight& w, float* y, int64_t n_begin,
                             int64_t n_end) {
  const int64_t row_bytes = WeightRowBytes(w.type, w.cols);
  for (int64_t n = n_begin; n < n_end; ++n) {
    const void* row = static_cast<const uint8_t*>(w.data) + n * row_bytes;
    for (int64_t r = 0; r < x.rows; ++r) y[r * w.rows + n] = Int8Dot(w.type, row, x, r);
  }
}

void MatmulGroupInt8ColumnsScalar(const Int8Rows& x, const Weight& w, float* y, int64_t n_begin,
                                  int64_t n_end) {
  for (int64_t n = n_begin; n < n_end; ++n) {
    for (int64_t r = 0; r < x.rows; ++r) y[r * w.rows + n] = GroupInt8Dot(w, n, x, r);
  }
}

}  // namespace duet::kernels::cpu
