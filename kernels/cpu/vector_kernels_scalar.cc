// Portable versions of the vector kernels.
#include <cmath>

#include "common/half.h"
#include "kernels/cpu/vector_kernels.h"

namespace duet::kernels::cpu {
namespace {

// A row value as fp32: fp32 as it is, bf16 widened (exactly).
inline float Widen(float x) { return x; }
inline float Widen(uint16_t x) { return Bf16ToFloat(x); }

template <typename T>
float Dot(const float* a, const T* b, int64_t n) {
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * Widen(b[i]);
  return sum;
}

template <typename T>
void Dots(const float* queries, int64_t num_queries, const T* k, int64_t n, float* out, int64_t out_stride) {
  for (int64_t g = 0; g < num_queries; ++g) out[g * out_stride] = Dot(queries + g * n, k, n);
}

template <typename T>
void Axpy(float alpha, const T* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * Widen(x[i]);
}

template <typename T>
void WeightedRows(const float* weights, int64_t num_weights, int64_t weight_stride, const T* const* rows,
                  int64_t row_offset, int64_t count, float* y, int64_t n) {
  for (int64_t g = 0; g < num_weights; ++g) {
    for (int64_t t = 0; t < count; ++t) Axpy(weights[g * weight_stride + t], rows[t] + row_offset, y + g * n, n);
  }
}

void Scale(float* x, float factor, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= factor;
}

float SumSquares(const float* x, int64_t n) { return Dot(x, x, n); }

void RmsApply(const float* x, float inv_rms, const float* weight, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * inv_rms) * weight[i];
}

float Max(const float* x, int64_t n) {
  float result = x[0];
  for (int64_t i = 1; i < n; ++i) result = std::fmax(result, x[i]);
  return result;
}

float ExpShiftSum(float* x, float shift, int64_t n) {
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - shift);
    sum += x[i];
  }
  return sum;
}

void SiluMul(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void RotateHalf(float* x, const float* cos, const float* sin, int64_t half) {
  for (int64_t i = 0; i < half; ++i) {
    const float a = x[i];
    const float b = x[i + half];
    x[i] = a * cos[i] + (-b) * sin[i];
    x[i + half] = b * cos[i] + a * sin[i];
  }
}

}  // namespace

const VectorKernels& ScalarVectorKernels() {
  static const VectorKernels kernels = {Dots<float>,    Axpy<float>,          WeightedRows<float>, Scale,
                                        SumSquares,     RmsApply,             Max,                 ExpShiftSum,
                                        SiluMul,        RotateHalf,           Dots<uint16_t>,      WeightedRows<uint16_t>};
  return kernels;
}

}  // namespace duet::kernels::cpu
