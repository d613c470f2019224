// AVX2/FMA versions of the vector kernels (compiled with -mavx2 -mfma; called
// only when the CPU has them). Anonymous namespace throughout so nothing
// compiled for AVX2 leaks into other code through the linker. Leftover
// elements (n % 8) take the scalar path.
#include <immintrin.h>

#include <algorithm>

#include <cmath>
#include <cstring>

#include "kernels/cpu/vector_kernels.h"

namespace duet::kernels::cpu {
namespace {

// Lanes (0+4, 1+5, 2+6, 3+7), then (0+2, 1+3), then 0+1.
inline float HorizontalSum(__m256 v) {
  __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
  sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
  return _mm_cvtss_f32(sum);
}

inline float HorizontalMax(__m256 v) {
  __m128 result = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  result = _mm_max_ps(result, _mm_movehl_ps(result, result));
  result = _mm_max_ss(result, _mm_movehdup_ps(result));
  return _mm_cvtss_f32(result);
}

// exp(x) to ~2 ulp: x = n·ln2 + r with |r| <= ln2/2 (ln2 split in two so the
// reduction is exact enough), a degree-6 polynomial for exp(r) (Cephes'
// expf coefficients), then scaling by 2^n through the exponent bits. Inputs
// are clamped to [-87.34, 88] so 2^n stays a normal float; below -87.34 the
// result is 0 (the true value is below FLT_MIN).
inline __m256 Exp(__m256 x) {
  const __m256 min_input = _mm256_set1_ps(-87.3365447504f);
  const __m256 clamped = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.0f)), min_input);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(clamped, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), clamped);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
  p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
  const __m256i exponent =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  const __m256 result = _mm256_mul_ps(p, _mm256_castsi256_ps(exponent));
  return _mm256_blendv_ps(result, _mm256_setzero_ps(), _mm256_cmp_ps(x, min_input, _CMP_LT_OQ));
}

// Row values as fp32: fp32 as they are, bf16 widened (exactly: the 16 bits
// become the high half of the fp32 word).
inline float Widen(float x) { return x; }
inline float Widen(uint16_t x) {
  const uint32_t bits = uint32_t{x} << 16;
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}
inline __m256 Load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 Load8(const uint16_t* p) {
  const __m128i halves = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(halves), 16));
}

template <typename T>
float Dot(const float* a, const T* b, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), Load8(b + i), acc);
  float sum = HorizontalSum(acc);
  for (; i < n; ++i) sum += a[i] * Widen(b[i]);
  return sum;
}

// Four queries at a time: four independent FMA chains per k load.
template <typename T>
void Dots(const float* queries, int64_t num_queries, const T* k, int64_t n, float* out, int64_t out_stride) {
  int64_t g = 0;
  for (; g + 4 <= num_queries; g += 4) {
    const float* q = queries + g * n;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const __m256 k8 = Load8(k + i);
      acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), k8, acc0);
      acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + n + i), k8, acc1);
      acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 2 * n + i), k8, acc2);
      acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 3 * n + i), k8, acc3);
    }
    float sums[4] = {HorizontalSum(acc0), HorizontalSum(acc1), HorizontalSum(acc2),
                     HorizontalSum(acc3)};
    for (int j = 0; j < 4; ++j) {
      for (int64_t tail = i; tail < n; ++tail) sums[j] += q[j * n + tail] * Widen(k[tail]);
      out[(g + j) * out_stride] = sums[j];
    }
  }
  for (; g < num_queries; ++g) out[g * out_stride] = Dot(queries + g * n, k, n);
}

void Axpy(float alpha, const float* x, float* y, int64_t n) {
  const __m256 alpha8 = _mm256_set1_ps(alpha);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i,
                     _mm256_fmadd_ps(alpha8, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += alpha * x[i];
}

template <typename T>
void WeightedRows(const float* weights, int64_t num_weights, int64_t weight_stride, const T* const* rows,
                  int64_t row_offset, int64_t count, float* y, int64_t n) {
  constexpr int kGroup = 4;  // weights at once: 8 accumulators, 2 row loads
  for (int64_t g0 = 0; g0 < num_weights; g0 += kGroup) {
    const int group = static_cast<int>(std::min<int64_t>(kGroup, num_weights - g0));
    const float* w = weights + g0 * weight_stride;
    float* out = y + g0 * n;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      __m256 acc[kGroup][2];
      for (int g = 0; g < group; ++g) {
        acc[g][0] = _mm256_loadu_ps(out + g * n + i);
        acc[g][1] = _mm256_loadu_ps(out + g * n + i + 8);
      }
      for (int64_t t = 0; t < count; ++t) {
        const T* x = rows[t] + row_offset + i;
        const __m256 x0 = Load8(x), x1 = Load8(x + 8);
#pragma GCC unroll 4
        for (int g = 0; g < kGroup; ++g) {
          if (g >= group) break;
          const __m256 alpha = _mm256_broadcast_ss(w + g * weight_stride + t);
          acc[g][0] = _mm256_fmadd_ps(alpha, x0, acc[g][0]);
          acc[g][1] = _mm256_fmadd_ps(alpha, x1, acc[g][1]);
        }
      }
      for (int g = 0; g < group; ++g) {
        _mm256_storeu_ps(out + g * n + i, acc[g][0]);
        _mm256_storeu_ps(out + g * n + i + 8, acc[g][1]);
      }
    }
    if (i < n) {  // the rest as Axpy does it
      for (int g = 0; g < group; ++g) {
        for (int64_t t = 0; t < count; ++t) {
          const T* x = rows[t] + row_offset;
          const float alpha = w[g * weight_stride + t];
          const __m256 alpha8 = _mm256_set1_ps(alpha);
          int64_t j = i;
          for (; j + 8 <= n; j += 8) {
            _mm256_storeu_ps(out + g * n + j, _mm256_fmadd_ps(alpha8, Load8(x + j), _mm256_loadu_ps(out + g * n + j)));
          }
          for (; j < n; ++j) out[g * n + j] += alpha * Widen(x[j]);
        }
      }
    }
  }
}

void Scale(float* x, float factor, int64_t n) {
  const __m256 factor8 = _mm256_set1_ps(factor);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), factor8));
  for (; i < n; ++i) x[i] *= factor;
}

float SumSquares(const float* x, int64_t n) { return Dot(x, x, n); }

void RmsApply(const float* x, float inv_rms, const float* weight, float* y, int64_t n) {
  const __m256 inv_rms8 = _mm256_set1_ps(inv_rms);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 normed = _mm256_mul_ps(_mm256_loadu_ps(x + i), inv_rms8);
    _mm256_storeu_ps(y + i, _mm256_mul_ps(normed, _mm256_loadu_ps(weight + i)));
  }
  for (; i < n; ++i) y[i] = (x[i] * inv_rms) * weight[i];
}

float Max(const float* x, int64_t n) {
  float result = x[0];
  int64_t i = 0;
  if (n >= 8) {
    __m256 max8 = _mm256_loadu_ps(x);
    for (i = 8; i + 8 <= n; i += 8) max8 = _mm256_max_ps(max8, _mm256_loadu_ps(x + i));
    result = HorizontalMax(max8);
  }
  for (; i < n; ++i) result = result > x[i] ? result : x[i];
  return result;
}

float ExpShiftSum(float* x, float shift, int64_t n) {
  const __m256 shift8 = _mm256_set1_ps(shift);
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = Exp(_mm256_sub_ps(_mm256_loadu_ps(x + i), shift8));
    _mm256_storeu_ps(x + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  float sum = HorizontalSum(acc);
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - shift);
    sum += x[i];
  }
  return sum;
}

void SiluMul(const float* gate, const float* up, float* out, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 e = Exp(_mm256_sub_ps(_mm256_setzero_ps(), g));
    const __m256 silu = _mm256_div_ps(g, _mm256_add_ps(one, e));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(silu, _mm256_loadu_ps(up + i)));
  }
  for (; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void RotateHalf(float* x, const float* cos, const float* sin, int64_t half) {
  int64_t i = 0;
  for (; i + 8 <= half; i += 8) {
    const __m256 a = _mm256_loadu_ps(x + i);
    const __m256 b = _mm256_loadu_ps(x + i + half);
    const __m256 c = _mm256_loadu_ps(cos + i);
    const __m256 s = _mm256_loadu_ps(sin + i);
    _mm256_storeu_ps(x + i, _mm256_sub_ps(_mm256_mul_ps(a, c), _mm256_mul_ps(b, s)));
    _mm256_storeu_ps(x + i + half, _mm256_add_ps(_mm256_mul_ps(b, c), _mm256_mul_ps(a, s)));
  }
  for (; i < half; ++i) {
    const float a = x[i];
    const float b = x[i + half];
    x[i] = a * cos[i] - b * sin[i];
    x[i + half] = b * cos[i] + a * sin[i];
  }
}

}  // namespace

const VectorKernels& Avx2VectorKernels() {
  static const VectorKernels kernels = {Dots<float>,    Axpy,                 WeightedRows<float>, Scale,
                                        SumSquares,     RmsApply,             Max,                 ExpShiftSum,
                                        SiluMul,        RotateHalf,           Dots<uint16_t>,      WeightedRows<uint16_t>};
  return kernels;
}

}  // namespace duet::kernels::cpu
