// AWQ-INT4 matmul with AVX-512 (compiled with -mavx512f -mavx512bw
// -mavx512vl; called only when the CPU has them), in matmul_kernels.h's AWQ
// order, so bit for bit MatmulAwqScalar and MatmulAwqAvx2.
//
// As matmul_awq_avx2.cc, the loop runs over input features with one vector
// accumulator per nibble; here a tile is 16 words (128 outputs), one whole
// 64-byte cache line of each input feature's row, and a nibble becomes an
// fp32 code in two instructions: a shift and a permute whose index is the
// nibble itself (vpermps reads only the low 4 bits of each index lane) into
// the table 0..15. Up to kFusedRows rows of x run straight from the packed
// words; more rows take the AVX2 kernel's panel path (the same chains).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cpu/matmul_kernels.h"

namespace duet::kernels::cpu {
namespace {

// AWQ's pack order: nibble k of a word holds output kOrder[k] of its 8.
constexpr int kOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};
constexpr int kTileWords = 16;
constexpr int64_t kFusedRows = 8;
// Input features ahead that are prefetched: a tile reads one cache line per
// feature, each a row apart, which the hardware prefetchers do not follow.
constexpr int64_t kPrefetchRows = 32;

// Group g's per-nibble scales s[n] and offsets −(z·s) (lane j: output
// 8 (j0 + j) + kOrder[n]) of the tile's `words` words from word j0, lanes
// past `words` zero: the tile's 128 fp16 scales converted, then gathered by
// nibble; the zero words' nibbles as codes through the same table.
void LoadGroupConstants(const Weight& w, int64_t g, int64_t j0, int words, __mmask16 mask, __m512 codes,
                        __m512* scale, __m512* offset) {
  alignas(64) float scales[8 * kTileWords];
  const uint16_t* row = static_cast<const uint16_t*>(w.scales) + g * w.rows + 8 * j0;
  for (int t = 0; t < 8; ++t) {
    // Outputs 16t .. 16t + 15 of the tile belong to words 2t and 2t + 1.
    const int valid = std::clamp(8 * words - 16 * t, 0, 16);
    const __mmask16 m = static_cast<__mmask16>(valid == 16 ? 0xffff : (1u << valid) - 1);
    _mm512_store_ps(scales + 16 * t, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 16 * t)));
  }
  const __m512i words_zeros =
      _mm512_maskz_loadu_epi32(mask, static_cast<const uint32_t*>(w.zeros) + g * (w.rows / 8) + j0);
  const __m512i lane = _mm512_setr_epi32(0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120);
  const __m512i sign = _mm512_set1_epi32(static_cast<int>(0x80000000u));
  for (int n = 0; n < 8; ++n) {
    scale[n] = _mm512_i32gather_ps(_mm512_add_epi32(lane, _mm512_set1_epi32(kOrder[n])), scales, 4);
    const __m512 z = _mm512_permutexvar_ps(_mm512_srli_epi32(words_zeros, 4 * n), codes);
    offset[n] = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(_mm512_mul_ps(z, scale[n])), sign));
  }
}

// acc [m][8 nibbles][16 lanes]: y of the tile's outputs for the m rows of x.
void FusedTile(const float* x, int64_t m, const Weight& w, int64_t j0, int words, float* acc) {
  const int64_t k = w.cols;
  const int64_t g_size = w.group_size;
  const int64_t row_bytes = w.rows / 8 * 4;
  const uint8_t* data = static_cast<const uint8_t*>(w.data) + j0 * 4;
  const __mmask16 mask = static_cast<__mmask16>(words == kTileWords ? 0xffff : (1u << words) - 1);
  const __m512 codes = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  std::fill(acc, acc + m * 8 * kTileWords, 0.0f);
  for (int64_t g = 0; g < k / g_size; ++g) {
    __m512 scale[8], offset[8];
    LoadGroupConstants(w, g, j0, words, mask, codes, scale, offset);
    for (int64_t r = 0; r < m; ++r) {
      float* out = acc + r * 8 * kTileWords;
      // Named accumulators: GCC keeps an array of them in memory as well,
      // storing every one on every step.
      __m512 a0 = _mm512_loadu_ps(out + 0 * kTileWords), a1 = _mm512_loadu_ps(out + 1 * kTileWords);
      __m512 a2 = _mm512_loadu_ps(out + 2 * kTileWords), a3 = _mm512_loadu_ps(out + 3 * kTileWords);
      __m512 a4 = _mm512_loadu_ps(out + 4 * kTileWords), a5 = _mm512_loadu_ps(out + 5 * kTileWords);
      __m512 a6 = _mm512_loadu_ps(out + 6 * kTileWords), a7 = _mm512_loadu_ps(out + 7 * kTileWords);
      const float* xr = x + r * k + g * g_size;
      const uint8_t* p = data + g * g_size * row_bytes;
      for (int64_t i = 0; i < g_size; ++i, p += row_bytes) {
        _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetchRows * row_bytes), _MM_HINT_T0);
        const __m512 xi = _mm512_set1_ps(xr[i]);
        const __m512i v = _mm512_maskz_loadu_epi32(mask, p);
        // Nibble n's codes: the word shifted right by 4n, through the table.
        const auto weight = [&](int n) {
          const __m512i nibble = n == 0 ? v : _mm512_srli_epi32(v, static_cast<unsigned>(4 * n));
          return _mm512_fmadd_ps(_mm512_permutexvar_ps(nibble, codes), scale[n], offset[n]);
        };
        a0 = _mm512_fmadd_ps(xi, weight(0), a0);
        a1 = _mm512_fmadd_ps(xi, weight(1), a1);
        a2 = _mm512_fmadd_ps(xi, weight(2), a2);
        a3 = _mm512_fmadd_ps(xi, weight(3), a3);
        a4 = _mm512_fmadd_ps(xi, weight(4), a4);
        a5 = _mm512_fmadd_ps(xi, weight(5), a5);
        a6 = _mm512_fmadd_ps(xi, weight(6), a6);
        a7 = _mm512_fmadd_ps(xi, weight(7), a7);
      }
      _mm512_storeu_ps(out + 0 * kTileWords, a0);
      _mm512_storeu_ps(out + 1 * kTileWords, a1);
      _mm512_storeu_ps(out + 2 * kTileWords, a2);
      _mm512_storeu_ps(out + 3 * kTileWords, a3);
      _mm512_storeu_ps(out + 4 * kTileWords, a4);
      _mm512_storeu_ps(out + 5 * kTileWords, a5);
      _mm512_storeu_ps(out + 6 * kTileWords, a6);
      _mm512_storeu_ps(out + 7 * kTileWords, a7);
    }
  }
}

}  // namespace

void MatmulAwqAvx512(const float* x, int64_t m, const Weight& w, float* y, int64_t n_begin,
                     int64_t n_end) {
  if (m > kFusedRows) return MatmulAwqAvx2(x, m, w, y, n_begin, n_end);
  thread_local std::vector<float> acc;
  acc.resize(static_cast<size_t>(m * 8 * kTileWords));
  for (int64_t n0 = n_begin; n0 < n_end; n0 += 8 * kTileWords) {
    const int words = static_cast<int>(std::min<int64_t>(kTileWords, (n_end - n0) / 8));
    FusedTile(x, m, w, n0 / 8, words, acc.data());
    // Accumulator (nibble n, lane j) is output 8 (j0 + j) + kOrder[n].
    for (int64_t r = 0; r < m; ++r) {
      for (int n = 0; n < 8; ++n) {
        for (int j = 0; j < words; ++j) {
          y[r * w.rows + n0 + 8 * j + kOrder[n]] = acc[(r * 8 + n) * kTileWords + j];
        }
      }
    }
  }
}

}  // namespace duet::kernels::cpu
