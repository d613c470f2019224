// Portable versions of the vector kernels.
#include <cmath>

#include "kernels/cpu/vector_kernels.h"

namespace duet::kernels::cpu {
namespace {

float Dot(const float* a, const float* b, int64_t n) {
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

void Dots(const float* queries, int64_t num_queries, const float* k, int64_t n, float* out,
          int64_t out_stride) {
  for (int64_t g = 0; g < num_queries; ++g) out[g * out_stride] = Dot(queries + g * n, k, n);
}

void Axpy(float alpha, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

void WeightedRows(const float* weights, int64_t num_weights, int64_t weight_stride, const float* const* rows,
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
  static const VectorKernels kernels = {Dots, Axpy,        WeightedRows, Scale,     SumSquares,
                                        RmsApply, Max,  ExpShiftSum,  SiluMul,   RotateHalf};
  return kernels;
}

}  // namespace duet::kernels::cpu
