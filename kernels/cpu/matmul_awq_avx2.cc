// AWQ-INT4 matmul with AVX2/FMA (compiled with -mavx2 -mfma -mf16c; called
// only when the CPU has them; the AVX-512 backend uses it too), and the AVX2
// row dequantiser of the other group-quantized types.
//
// AutoAWQ stores the weights input feature first: one int32 row of
// rows / 8 words per input feature, each word 8 consecutive outputs. So the
// natural loop runs over input features and keeps a vector accumulator per 8
// outputs: a tile of 8 words (64 outputs) takes one 32-byte load per input
// feature, splits it into its 8 nibbles (one vector each, lane j = word j),
// dequantises each as fma(q, s, −(z·s)) with the group's per-output
// constants, and feeds one FMA chain per output. Every output is thereby one
// fused multiply-add chain over k in order (matmul_kernels.h's AWQ order),
// for every m: up to kFusedRows rows straight from the packed words; beyond,
// a panel of the tile's weights is dequantised once per group into L1 and
// every row of x runs over it (the same chains, the weights unpacked once).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cpu/matmul_group_tiles.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/group_quant.h"

namespace duet::kernels::cpu {
namespace {

struct Avx2 {};  // the Simd tag matmul_group_tiles.h's templates take here

// AWQ's pack order: nibble k of a word holds output kOrder[k] of its 8.
constexpr int kOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};
constexpr int kTileWords = 8;
constexpr int64_t kFusedRows = 8;

float HalfToFloat(const void* base, int64_t index) {
  uint16_t bits;
  std::memcpy(&bits, static_cast<const uint8_t*>(base) + index * 2, sizeof(bits));
  return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits)));
}

uint32_t WordAt(const void* base, int64_t index) {
  uint32_t word;
  std::memcpy(&word, static_cast<const uint8_t*>(base) + index * 4, sizeof(word));
  return word;
}

// One tile of `words` (≤ 8) words starting at word j0, over the input
// features of group g: the per-nibble scales s[k][j] and offsets −(z·s)
// (lanes past `words` zero).
struct GroupConstants {
  alignas(32) float scale[8][8];
  alignas(32) float offset[8][8];

  void Load(const Weight& w, int64_t g, int64_t j0, int words) {
    const int64_t words_per_row = w.rows / 8;
    for (int k = 0; k < 8; ++k) {
      for (int j = 0; j < 8; ++j) {
        if (j >= words) {
          scale[k][j] = offset[k][j] = 0.0f;
          continue;
        }
        const int64_t output = 8 * (j0 + j) + kOrder[k];
        const float s = HalfToFloat(w.scales, g * w.rows + output);
        const int z = static_cast<int>((WordAt(w.zeros, g * words_per_row + j0 + j) >> (4 * k)) & 15);
        scale[k][j] = s;
        offset[k][j] = -(static_cast<float>(z) * s);
      }
    }
  }
};

__m256i LoadWords(const uint8_t* p, __m256i mask, bool full) {
  return full ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))
              : _mm256_maskload_epi32(reinterpret_cast<const int*>(p), mask);
}

// y[r, outputs of the tile] for the m rows of x: accumulators [m][8 nibbles]
// of 8 lanes live in `acc` between groups.
void FusedTile(const float* x, int64_t m, const Weight& w, int64_t j0, int words, float* acc) {
  const int64_t k = w.cols;
  const int64_t g_size = w.group_size;
  const int64_t row_bytes = w.rows / 8 * 4;
  const uint8_t* data = static_cast<const uint8_t*>(w.data) + j0 * 4;
  const bool full = words == kTileWords;
  const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(words), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256i fifteen = _mm256_set1_epi32(15);
  GroupConstants constants;
  std::fill(acc, acc + m * 64, 0.0f);
  for (int64_t g = 0; g < k / g_size; ++g) {
    constants.Load(w, g, j0, words);
    for (int64_t r = 0; r < m; ++r) {
      __m256 a[8];
      for (int n = 0; n < 8; ++n) a[n] = _mm256_loadu_ps(acc + r * 64 + 8 * n);
      const float* xr = x + r * k + g * g_size;
      const uint8_t* p = data + g * g_size * row_bytes;
      for (int64_t i = 0; i < g_size; ++i, p += row_bytes) {
        _mm_prefetch(reinterpret_cast<const char*>(p + 8 * row_bytes), _MM_HINT_T0);
        const __m256 xi = _mm256_broadcast_ss(xr + i);
        const __m256i v = LoadWords(p, mask, full);
#pragma GCC unroll 8
        for (int n = 0; n < 8; ++n) {
          const __m256i q = n == 7 ? _mm256_srli_epi32(v, 28) : _mm256_and_si256(_mm256_srli_epi32(v, 4 * n), fifteen);
          const __m256 weight = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), _mm256_load_ps(constants.scale[n]),
                                                _mm256_load_ps(constants.offset[n]));
          a[n] = _mm256_fmadd_ps(xi, weight, a[n]);
        }
      }
      for (int n = 0; n < 8; ++n) _mm256_storeu_ps(acc + r * 64 + 8 * n, a[n]);
    }
  }
}

// The same chains with the tile's weights of one group dequantised once into
// `panel` ([g_size][8 nibbles][8 lanes]) and 4 rows of x at a time over them.
template <int kRows>
void PanelRows(const float* x, int64_t k, const float* panel, int64_t g_size, float* acc) {
  for (int n0 = 0; n0 < 8; n0 += 2) {
    __m256 a[kRows][2];
    for (int r = 0; r < kRows; ++r) {
      a[r][0] = _mm256_loadu_ps(acc + r * 64 + 8 * n0);
      a[r][1] = _mm256_loadu_ps(acc + r * 64 + 8 * n0 + 8);
    }
    for (int64_t i = 0; i < g_size; ++i) {
      const __m256 w0 = _mm256_load_ps(panel + i * 64 + 8 * n0);
      const __m256 w1 = _mm256_load_ps(panel + i * 64 + 8 * n0 + 8);
#pragma GCC unroll 4
      for (int r = 0; r < kRows; ++r) {
        const __m256 xi = _mm256_broadcast_ss(x + r * k + i);
        a[r][0] = _mm256_fmadd_ps(xi, w0, a[r][0]);
        a[r][1] = _mm256_fmadd_ps(xi, w1, a[r][1]);
      }
    }
    for (int r = 0; r < kRows; ++r) {
      _mm256_storeu_ps(acc + r * 64 + 8 * n0, a[r][0]);
      _mm256_storeu_ps(acc + r * 64 + 8 * n0 + 8, a[r][1]);
    }
  }
}

void PanelTile(const float* x, int64_t m, const Weight& w, int64_t j0, int words, float* acc) {
  const int64_t k = w.cols;
  const int64_t g_size = w.group_size;
  const int64_t row_bytes = w.rows / 8 * 4;
  const uint8_t* data = static_cast<const uint8_t*>(w.data) + j0 * 4;
  const bool full = words == kTileWords;
  const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(words), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256i fifteen = _mm256_set1_epi32(15);
  thread_local std::vector<float, std::allocator<float>> panel_storage;
  panel_storage.resize(static_cast<size_t>(g_size * 64 + 8));
  float* panel = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(panel_storage.data()) + 31) & ~uintptr_t{31});
  GroupConstants constants;
  std::fill(acc, acc + m * 64, 0.0f);
  for (int64_t g = 0; g < k / g_size; ++g) {
    constants.Load(w, g, j0, words);
    const uint8_t* p = data + g * g_size * row_bytes;
    for (int64_t i = 0; i < g_size; ++i, p += row_bytes) {
      const __m256i v = LoadWords(p, mask, full);
#pragma GCC unroll 8
      for (int n = 0; n < 8; ++n) {
        const __m256i q = n == 7 ? _mm256_srli_epi32(v, 28) : _mm256_and_si256(_mm256_srli_epi32(v, 4 * n), fifteen);
        _mm256_store_ps(panel + i * 64 + 8 * n,
                        _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), _mm256_load_ps(constants.scale[n]),
                                        _mm256_load_ps(constants.offset[n])));
      }
    }
    int64_t r = 0;
    for (; r + 4 <= m; r += 4) PanelRows<4>(x + r * k + g * g_size, k, panel, g_size, acc + r * 64);
    switch (m - r) {
      case 3: PanelRows<3>(x + r * k + g * g_size, k, panel, g_size, acc + r * 64); break;
      case 2: PanelRows<2>(x + r * k + g * g_size, k, panel, g_size, acc + r * 64); break;
      case 1: PanelRows<1>(x + r * k + g * g_size, k, panel, g_size, acc + r * 64); break;
      default: break;
    }
  }
}

}  // namespace

void MatmulAwqAvx2(const float* x, int64_t m, const Weight& w, float* y, int64_t n_begin,
                   int64_t n_end) {
  thread_local std::vector<float> acc;
  acc.resize(static_cast<size_t>(m * 64));
  for (int64_t n0 = n_begin; n0 < n_end; n0 += 8 * kTileWords) {
    const int words = static_cast<int>(std::min<int64_t>(kTileWords, (n_end - n0) / 8));
    const int64_t j0 = n0 / 8;
    if (m <= kFusedRows) {
      FusedTile(x, m, w, j0, words, acc.data());
    } else {
      PanelTile(x, m, w, j0, words, acc.data());
    }
    // Accumulator (nibble n, lane j) is output 8 (j0 + j) + kOrder[n].
    for (int64_t r = 0; r < m; ++r) {
      for (int n = 0; n < 8; ++n) {
        for (int j = 0; j < words; ++j) y[r * w.rows + n0 + 8 * j + kOrder[n]] = acc[r * 64 + 8 * n + j];
      }
    }
  }
}

void DequantizeGroupRowsAvx2(const Weight& w, int64_t first, int64_t rows, float* out) {
  if (!group::DequantizeRows<Avx2>(w, first, rows, out)) DequantizeGroupRows(w, first, rows, out);
}

}  // namespace duet::kernels::cpu
