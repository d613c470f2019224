// AVX-512 matmul (compiled with -mavx512f -mavx512bw -mavx512vl; called only
// when the CPU has them). The same structure as matmul_avx2.cc with 16-lane
// accumulators; with 32 registers the prefill tile is 4 × 4. Everything here
// is in an anonymous namespace so no inline function compiled for AVX-512 can
// be picked by the linker for other code.
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/matmul_kernels.h"

namespace duet::kernels::cpu {
namespace {

struct F32Weights {
  using Element = float;
  static __m512 Load16(const float* p) { return _mm512_loadu_ps(p); }
  static float Load1(const float* p) { return *p; }
};

struct Bf16Weights {
  using Element = uint16_t;
  static __m512 Load16(const uint16_t* p) {
    const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16));
  }
  static float Load1(const uint16_t* p) {
    return _mm_cvtss_f32(_mm_castsi128_ps(_mm_cvtsi32_si128(static_cast<int>(uint32_t{*p} << 16))));
  }
};

struct F16Weights {
  using Element = uint16_t;
  static __m512 Load16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static float Load1(const uint16_t* p) {
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(*p)));
  }
};

// Lanes (i + i+8), then (i + i+4), then (0+2, 1+3), then 0+1.
inline float HorizontalSum(__m512 v) {
  const __m256 half = _mm256_add_ps(
      _mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  __m128 sum = _mm_add_ps(_mm256_castps256_ps128(half), _mm256_extractf128_ps(half, 1));
  sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
  sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
  return _mm_cvtss_f32(sum);
}

inline float FusedMultiplyAdd(float a, float b, float c) {
  return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}

// y[r * ldy + j] for r < kRows, j < kCols. x: [kRows, k]; w: [kCols, k].
template <typename W, int kRows, int kCols>
void Tile(const float* x, const typename W::Element* w, int64_t k, float* y, int64_t ldy) {
  __m512 acc[kRows][kCols];
#pragma GCC unroll 4
  for (int r = 0; r < kRows; ++r) {
#pragma GCC unroll 4
    for (int j = 0; j < kCols; ++j) acc[r][j] = _mm512_setzero_ps();
  }
  const int64_t k_vector = k & ~int64_t{15};
  for (int64_t kk = 0; kk < k_vector; kk += 16) {
    __m512 weights[kCols];
#pragma GCC unroll 4
    for (int j = 0; j < kCols; ++j) weights[j] = W::Load16(w + j * k + kk);
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) {
      const __m512 activations = _mm512_loadu_ps(x + r * k + kk);
#pragma GCC unroll 4
      for (int j = 0; j < kCols; ++j) {
        acc[r][j] = _mm512_fmadd_ps(activations, weights[j], acc[r][j]);
      }
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int j = 0; j < kCols; ++j) {
      float sum = HorizontalSum(acc[r][j]);
      for (int64_t kk = k_vector; kk < k; ++kk) {
        sum = FusedMultiplyAdd(x[r * k + kk], W::Load1(w + j * k + kk), sum);
      }
      y[r * ldy + j] = sum;
    }
  }
}

template <typename W>
using TileFn = void (*)(const float*, const typename W::Element*, int64_t, float*, int64_t);

// kTiles<W>[rows - 1][cols - 1].
template <typename W>
constexpr TileFn<W> kTiles[4][4] = {
    {Tile<W, 1, 1>, Tile<W, 1, 2>, Tile<W, 1, 3>, Tile<W, 1, 4>},
    {Tile<W, 2, 1>, Tile<W, 2, 2>, Tile<W, 2, 3>, Tile<W, 2, 4>},
    {Tile<W, 3, 1>, Tile<W, 3, 2>, Tile<W, 3, 3>, Tile<W, 3, 4>},
    {Tile<W, 4, 1>, Tile<W, 4, 2>, Tile<W, 4, 3>, Tile<W, 4, 4>},
};

inline int64_t Min(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t Max(int64_t a, int64_t b) { return a > b ? a : b; }

template <typename W>
void Columns(const float* x, int64_t m, const Weight& w, float* y, int64_t n_begin, int64_t n_end) {
  const auto* weights = static_cast<const typename W::Element*>(w.data);
  const int64_t k = w.cols;
  const int64_t ldy = w.rows;
  if (m == 1) {
    for (int64_t n = n_begin; n < n_end; n += 4) {
      const int64_t cols = Min(4, n_end - n);
      kTiles<W>[0][cols - 1](x, weights + n * k, k, y + n, ldy);
    }
    return;
  }
  // Rows of x are taken in blocks of ~256 KiB that stay in L2 while every
  // weight tile of this column band passes over them.
  const int64_t block_rows = k == 0 ? m : Max(4, (256 * 1024 / 4) / k / 4 * 4);
  for (int64_t r0 = 0; r0 < m; r0 += block_rows) {
    const int64_t r_end = Min(m, r0 + block_rows);
    for (int64_t n = n_begin; n < n_end; n += 4) {
      const int64_t cols = Min(4, n_end - n);
      for (int64_t r = r0; r < r_end; r += 4) {
        const int64_t rows = Min(4, r_end - r);
        kTiles<W>[rows - 1][cols - 1](x + r * k, weights + n * k, k, y + r * ldy + n, ldy);
      }
    }
  }
}

}  // namespace

void MatmulColumnsAvx512(const float* x, int64_t m, const Weight& w, float* y, int64_t n_begin,
                         int64_t n_end) {
  switch (w.type) {
    case WeightType::kF32:
      return Columns<F32Weights>(x, m, w, y, n_begin, n_end);
    case WeightType::kF16:
      return Columns<F16Weights>(x, m, w, y, n_begin, n_end);
    case WeightType::kBF16:
      return Columns<Bf16Weights>(x, m, w, y, n_begin, n_end);
  }
}

}  // namespace duet::kernels::cpu
