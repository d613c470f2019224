// The tile loop for the group-quantized weight types stored by rows (kInt4,
// kF8E4M3; kernels/group_quant.h), shared by the AVX2 and AVX-512 matmul
// kernels and, for its dequantisers, the panel path of cpu_backend.cc.
//
// Each row is dequantised 64 values at a time into an L1-resident buffer right
// before the FMAs that use them, so the weights stream from memory at their
// stored size (4 or 8 bits per value plus the scales). The dequantisation
// rounds exactly as group_quant.cc's GroupQuantElement (the same fp32
// operations) and the FMAs run in matmul_kernels.h's order for S::kLanes
// lanes, so the result is bit for bit the fp32 kernel of the same ISA on the
// dequantised matrix: the panel path and this one mix freely.
//
// As in matmul_tiles.h, everything is a template that the including
// translation unit instantiates with its own anonymous-namespace `Simd` type,
// so no code compiled for one instruction set can be picked by the linker for
// another. The dequantisers use AVX2 and F16C, which every AVX-512 CPU has.
#ifndef DUET_KERNELS_CPU_MATMUL_GROUP_TILES_H_
#define DUET_KERNELS_CPU_MATMUL_GROUP_TILES_H_

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/ops.h"

namespace duet::kernels::cpu::group {

inline constexpr int kChunk = 64;  // values dequantised at a time

template <typename S>
struct Scales {
  // Scale `index` of w as fp32.
  static float At(const Weight& w, int64_t index) {
    const uint8_t* bytes = static_cast<const uint8_t*>(w.scales);
    if (w.scale_type == WeightType::kF32) {
      float value;
      std::memcpy(&value, bytes + index * 4, sizeof(value));
      return value;
    }
    uint16_t bits;
    std::memcpy(&bits, bytes + index * 2, sizeof(bits));
    if (w.scale_type == WeightType::kBF16) {
      return _mm_cvtss_f32(_mm_castsi128_ps(_mm_cvtsi32_si128(static_cast<int>(uint32_t{bits} << 16))));
    }
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits)));
  }
};

// kInt4: values [c0, c0 + count) of row `row` (count a multiple of 8, c0 of
// 64) as fma(q, s, −(z·s)).
template <typename S>
struct Int4Rows {
  static void Chunk(const Weight& w, int64_t row, int64_t c0, int64_t count, float* out) {
    const int64_t groups = w.cols / w.group_size;
    const uint8_t* words = static_cast<const uint8_t*>(w.data) + (row * (w.cols / 8) + c0 / 8) * 4;
    const __m256i shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
    const __m256i fifteen = _mm256_set1_epi32(15);
    // Groups are whole words (group_size % 8 == 0): one scale per run of
    // words, found without a division per word.
    int64_t group = c0 / w.group_size;
    int64_t t = 0;
    while (t < count / 8) {
      const int64_t run_end = std::min<int64_t>(count / 8, ((group + 1) * w.group_size - c0) / 8);
      const float s = Scales<S>::At(w, row * groups + group);
      int z = 8;
      if (w.zeros != nullptr) {
        uint32_t zword;
        std::memcpy(&zword, static_cast<const uint8_t*>(w.zeros) + ((row / 8) * groups + group) * 4, 4);
        z = static_cast<int>((zword >> (4 * (row % 8))) & 15);
      }
      const __m256 scale = _mm256_set1_ps(s);
      const __m256 offset = _mm256_set1_ps(-(static_cast<float>(z) * s));
      for (; t < run_end; ++t) {
        int32_t word;
        std::memcpy(&word, words + 4 * t, sizeof(word));
        const __m256i q = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(word), shifts), fifteen);
        _mm256_storeu_ps(out + 8 * t, _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), scale, offset));
      }
      ++group;
    }
  }
};

// kF8E4M3: values [c0, c0 + count) of row `row` as e4m3(q)·s. The e4m3 bits
// are moved into an fp16 pattern whose value is e4m3(q)·2^-8 (exact; e4m3's
// subnormals become fp16 subnormals, which F16C converts at full speed where
// an fp32 subnormal would take a microcode assist), converted to fp32, times
// 2^8 (exact, a normal fp32), times s (GroupQuantElement's one rounding). NaN
// patterns are refused when a checkpoint is loaded.
// e4m3 bits (in the low byte of each 16-bit lane) as the fp16 bits of e4m3(q)·2^-8.
inline __m128i F8HalfBits(__m128i b) {
  return _mm_or_si128(_mm_slli_epi16(_mm_and_si128(b, _mm_set1_epi16(0x80)), 8),
                      _mm_slli_epi16(_mm_and_si128(b, _mm_set1_epi16(0x7f)), 7));
}

template <typename S>
struct F8Rows {
  static void Chunk(const Weight& w, int64_t row, int64_t c0, int64_t count, float* out) {
    const uint8_t* bytes = static_cast<const uint8_t*>(w.data) + row * w.cols + c0;
    const int64_t scale_cols = (w.cols + w.group_size - 1) / w.group_size;
    const int64_t scale_row = (row / w.scale_rows) * scale_cols;
    const __m256 two_8 = _mm256_set1_ps(0x1p8f);
    // Runs of values that share a scale, found without a division per value.
    int64_t block = c0 / w.group_size;
    int64_t t = 0;
    while (t < count) {
      const int64_t run_end = std::min<int64_t>(count, (block + 1) * w.group_size - c0);
      const float scale = Scales<S>::At(w, scale_row + block);
      const __m256 s = _mm256_set1_ps(scale);
      for (; t + 8 <= run_end; t += 8) {
        int64_t packed;
        std::memcpy(&packed, bytes + t, sizeof(packed));
        const __m256 v = _mm256_mul_ps(_mm256_cvtph_ps(F8HalfBits(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(packed)))), two_8);
        _mm256_storeu_ps(out + t, _mm256_mul_ps(v, s));
      }
      for (; t < run_end; ++t) {
        const float value = _mm_cvtss_f32(_mm_cvtph_ps(F8HalfBits(_mm_cvtsi32_si128(bytes[t])))) * 0x1p8f;
        out[t] = value * scale;
      }
      ++block;
    }
  }
};

// y[r * ldy + j] for r < kRows, j < kCols: activation rows x [kRows, k],
// weight rows n .. n + kCols − 1 of w.
template <typename S, typename D, int kRows, int kCols>
void Tile(const float* x, const Weight& w, int64_t n, float* y, int64_t ldy) {
  const int64_t k = w.cols;
  typename S::Vec acc[kRows][kCols];
#pragma GCC unroll 4
  for (int r = 0; r < kRows; ++r) {
#pragma GCC unroll 4
    for (int j = 0; j < kCols; ++j) acc[r][j] = S::Zero();
  }
  alignas(64) float block[kCols][kChunk];
  const int64_t k_vector = k - k % S::kLanes;
  int64_t c0 = 0;
  for (;; c0 += kChunk) {
    const int64_t count = k - c0 < kChunk ? k - c0 : kChunk;
#pragma GCC unroll 4
    for (int j = 0; j < kCols; ++j) D::Chunk(w, n + j, c0, count, block[j]);
    const int64_t vector_end = k_vector - c0 < count ? k_vector - c0 : count;
    for (int64_t kk = 0; kk < vector_end; kk += S::kLanes) {
      typename S::Vec weights[kCols];
#pragma GCC unroll 4
      for (int j = 0; j < kCols; ++j) weights[j] = S::LoadF32(block[j] + kk);
#pragma GCC unroll 4
      for (int r = 0; r < kRows; ++r) {
        const typename S::Vec activations = S::LoadF32(x + r * k + c0 + kk);
#pragma GCC unroll 4
        for (int j = 0; j < kCols; ++j) acc[r][j] = S::Fma(activations, weights[j], acc[r][j]);
      }
    }
    if (c0 + count >= k) break;
  }
  // The k % kLanes leftovers all lie in the last chunk (kLanes divides kChunk).
  for (int r = 0; r < kRows; ++r) {
    for (int j = 0; j < kCols; ++j) {
      float sum = S::HorizontalSum(acc[r][j]);
      for (int64_t kk = k_vector; kk < k; ++kk) sum = S::Fma1(x[r * k + kk], block[j][kk - c0], sum);
      y[r * ldy + j] = sum;
    }
  }
}

template <typename S, typename D>
using TileFn = void (*)(const float*, const Weight&, int64_t, float*, int64_t);

template <typename S, typename D>
constexpr TileFn<S, D> kTiles[4][4] = {
    {Tile<S, D, 1, 1>, Tile<S, D, 1, 2>, Tile<S, D, 1, 3>, Tile<S, D, 1, 4>},
    {Tile<S, D, 2, 1>, Tile<S, D, 2, 2>, Tile<S, D, 2, 3>, Tile<S, D, 2, 4>},
    {Tile<S, D, 3, 1>, Tile<S, D, 3, 2>, Tile<S, D, 3, 3>, Tile<S, D, 3, 4>},
    {Tile<S, D, 4, 1>, Tile<S, D, 4, 2>, Tile<S, D, 4, 3>, Tile<S, D, 4, 4>},
};

// Output columns [n_begin, n_end): 4 weight rows per tile for one activation
// row; for several, tiles of up to 4 activation rows × kCols weight rows.
template <typename S, typename D, int kCols>
void Columns(const float* x, int64_t m, const Weight& w, float* y, int64_t n_begin, int64_t n_end) {
  const int64_t k = w.cols;
  const int64_t ldy = w.rows;
  const int64_t max_cols = m == 1 ? 4 : kCols;
  for (int64_t r = 0; r < m; r += 4) {
    const int64_t rows = m - r < 4 ? m - r : 4;
    for (int64_t n = n_begin; n < n_end; n += max_cols) {
      const int64_t cols = n_end - n < max_cols ? n_end - n : max_cols;
      kTiles<S, D>[rows - 1][cols - 1](x + r * k, w, n, y + r * ldy + n, ldy);
    }
  }
}

// Dispatches on the type; false for the types not stored by rows.
template <typename S, int kCols>
bool GroupColumns(const float* x, int64_t m, const Weight& w, float* y, int64_t n_begin,
                  int64_t n_end) {
  if (w.type == WeightType::kInt4) return Columns<S, Int4Rows<S>, kCols>(x, m, w, y, n_begin, n_end), true;
  if (w.type == WeightType::kF8E4M3) return Columns<S, F8Rows<S>, kCols>(x, m, w, y, n_begin, n_end), true;
  return false;
}

// Rows [first, first + rows) of `w` as fp32 into out ([rows, w.cols]), bit for
// bit DequantizeGroupRows; false for the types not stored by rows.
template <typename S>
bool DequantizeRows(const Weight& w, int64_t first, int64_t rows, float* out) {
  auto run = [&]<typename D>(D*) {
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c0 = 0; c0 < w.cols; c0 += kChunk) {
        const int64_t count = w.cols - c0 < kChunk ? w.cols - c0 : kChunk;
        D::Chunk(w, first + r, c0, count, out + r * w.cols + c0);
      }
    }
    return true;
  };
  if (w.type == WeightType::kInt4) return run(static_cast<Int4Rows<S>*>(nullptr));
  if (w.type == WeightType::kF8E4M3) return run(static_cast<F8Rows<S>*>(nullptr));
  return false;
}

}  // namespace duet::kernels::cpu::group

#endif  // DUET_KERNELS_CPU_MATMUL_GROUP_TILES_H_
