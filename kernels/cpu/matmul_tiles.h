// The tile loop shared by the SIMD matmul kernels (matmul_avx2.cc,
// matmul_avx512.cc). Each of those translation units is compiled for its
// instruction set and instantiates these templates with its own `Simd` and
// weight-loader types, declared in its anonymous namespace: instantiations
// with internal-linkage arguments have internal linkage themselves, so no
// code compiled for one instruction set can be picked by the linker for
// another. Nothing here is a non-template function for the same reason.
//
// Simd provides: `Vec`, `kLanes`, `Zero()`, `LoadF32(const float*)`,
// `Fma(a, b, acc)`, `HorizontalSum(Vec)` (a fixed tree) and `Fma1(a, b, c)`
// (scalar fused multiply-add). A weight loader W provides `Element`,
// `Load(const Element*)` (kLanes weights as fp32) and `Load1(const Element*)`.
// The per-element accumulation order is the one matmul_kernels.h specifies.
#ifndef DUET_KERNELS_CPU_MATMUL_TILES_H_
#define DUET_KERNELS_CPU_MATMUL_TILES_H_

#include <cstdint>

#include "kernels/ops.h"

namespace duet::kernels::cpu {

// y[r * ldy + j] for r < kRows, j < kCols. x: [kRows, k]; w: [kCols, k].
template <typename S, typename W, int kRows, int kCols>
void Tile(const float* x, const typename W::Element* w, int64_t k, float* y, int64_t ldy) {
  typename S::Vec acc[kRows][kCols];
#pragma GCC unroll 4
  for (int r = 0; r < kRows; ++r) {
#pragma GCC unroll 4
    for (int j = 0; j < kCols; ++j) acc[r][j] = S::Zero();
  }
  const int64_t k_vector = k - k % S::kLanes;
  for (int64_t kk = 0; kk < k_vector; kk += S::kLanes) {
    typename S::Vec weights[kCols];
#pragma GCC unroll 4
    for (int j = 0; j < kCols; ++j) weights[j] = W::Load(w + j * k + kk);
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) {
      const typename S::Vec activations = S::LoadF32(x + r * k + kk);
#pragma GCC unroll 4
      for (int j = 0; j < kCols; ++j) acc[r][j] = S::Fma(activations, weights[j], acc[r][j]);
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int j = 0; j < kCols; ++j) {
      float sum = S::HorizontalSum(acc[r][j]);
      for (int64_t kk = k_vector; kk < k; ++kk) {
        sum = S::Fma1(x[r * k + kk], W::Load1(w + j * k + kk), sum);
      }
      y[r * ldy + j] = sum;
    }
  }
}

template <typename S, typename W>
using TileFn = void (*)(const float*, const typename W::Element*, int64_t, float*, int64_t);

// kTiles<S, W>[rows - 1][cols - 1].
template <typename S, typename W>
constexpr TileFn<S, W> kTiles[4][4] = {
    {Tile<S, W, 1, 1>, Tile<S, W, 1, 2>, Tile<S, W, 1, 3>, Tile<S, W, 1, 4>},
    {Tile<S, W, 2, 1>, Tile<S, W, 2, 2>, Tile<S, W, 2, 3>, Tile<S, W, 2, 4>},
    {Tile<S, W, 3, 1>, Tile<S, W, 3, 2>, Tile<S, W, 3, 3>, Tile<S, W, 3, 4>},
    {Tile<S, W, 4, 1>, Tile<S, W, 4, 2>, Tile<S, W, 4, 3>, Tile<S, W, 4, 4>},
};

// Output columns [n_begin, n_end) of y = x · wᵀ. Decode (m = 1) streams each
// weight row once, four rows at a time; prefill tiles 4 activation rows ×
// kPrefillCols weight rows so each loaded weight vector feeds 4 FMAs.
template <typename S, typename W, int kPrefillCols>
void MatmulColumns(const float* x, int64_t m, const Weight& w, float* y, int64_t n_begin,
                   int64_t n_end) {
  const auto* weights = static_cast<const typename W::Element*>(w.data);
  const int64_t k = w.cols;
  const int64_t ldy = w.rows;
  if (m == 1) {
    for (int64_t n = n_begin; n < n_end; n += 4) {
      const int64_t cols = n_end - n < 4 ? n_end - n : 4;
      kTiles<S, W>[0][cols - 1](x, weights + n * k, k, y + n, ldy);
    }
    return;
  }
  // Rows of x are taken in blocks of ~256 KiB that stay in L2 while every
  // weight tile of this column band passes over them.
  const int64_t fitting_rows = k == 0 ? m : (256 * 1024 / 4) / k / 4 * 4;
  const int64_t block_rows = fitting_rows > 4 ? fitting_rows : 4;
  for (int64_t r0 = 0; r0 < m; r0 += block_rows) {
    const int64_t r_end = m - r0 < block_rows ? m : r0 + block_rows;
    for (int64_t n = n_begin; n < n_end; n += kPrefillCols) {
      const int64_t cols = n_end - n < kPrefillCols ? n_end - n : kPrefillCols;
      for (int64_t r = r0; r < r_end; r += 4) {
        const int64_t rows = r_end - r < 4 ? r_end - r : 4;
        kTiles<S, W>[rows - 1][cols - 1](x + r * k, weights + n * k, k, y + r * ldy + n, ldy);
      }
    }
  }
}

// Dispatches on the weight type to the loader for it.
template <typename S, typename F32, typename F16, typename Bf16, int kPrefillCols>
void MatmulColumnsForType(const float* x, int64_t m, const Weight& w, float* y, int64_t n_begin,
                          int64_t n_end) {
  switch (w.type) {
    case WeightType::kF32:
      return MatmulColumns<S, F32, kPrefillCols>(x, m, w, y, n_begin, n_end);
    case WeightType::kF16:
      return MatmulColumns<S, F16, kPrefillCols>(x, m, w, y, n_begin, n_end);
    case WeightType::kBF16:
      return MatmulColumns<S, Bf16, kPrefillCols>(x, m, w, y, n_begin, n_end);
    case WeightType::kQ8_0:
    case WeightType::kQ4_0:
    case WeightType::kQ4_1:
    case WeightType::kQ4_K:
    case WeightType::kQ5_K:
    case WeightType::kQ6_K:
    case WeightType::kAwqInt4:
    case WeightType::kInt4:
    case WeightType::kF8E4M3:
      // cpu_backend.cc dequantises block-quantized weights to fp32 panels
      // before they reach a kernel.
      __builtin_trap();
  }
}

}  // namespace duet::kernels::cpu

#endif  // DUET_KERNELS_CPU_MATMUL_TILES_H_
