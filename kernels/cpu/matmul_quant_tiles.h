// The quantized-weight tile loop shared by the AVX2 and AVX-512 matmul
// kernels (matmul_avx2.cc, matmul_avx512.cc), for GGUF's block types.
//
// Each quant block of a weight row is dequantised into an L1-resident buffer
// right before the FMAs that use it, so the weights stream from memory at
// their stored size (4.5–8.5 bits per value) instead of as fp32 panels. The
// dequantisation rounds exactly as block_quant.cc's (the same fp32 products
// and sums, none fused; it uses AVX2 integer and F16C instructions, which
// every AVX-512 CPU has) and the FMAs run in matmul_kernels.h's order for
// S::kLanes lanes, so the result is bit for bit the fp32 kernel of the same
// ISA on the dequantised matrix: the panel path and this one mix freely.
//
// As in matmul_tiles.h, everything is a template that the including
// translation unit instantiates with its own anonymous-namespace `Simd` type,
// so no code compiled for one instruction set can be picked by the linker for
// another.
#ifndef DUET_KERNELS_CPU_MATMUL_QUANT_TILES_H_
#define DUET_KERNELS_CPU_MATMUL_QUANT_TILES_H_

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/ops.h"

namespace duet::kernels::cpu::quant {

// Byte-level helpers. S provides the widening stores, each over 16 signed
// bytes at out, in its own vector width:
//   StoreScaled16(bytes, scale, out):            out[i] = float(b[i]) * scale
//   StoreAffine16(bytes, scale, offset, out):    out[i] = float(b[i]) * scale + offset
//   StoreScaledMinus16(bytes, scale, offset, out): out[i] = scale * float(b[i]) - offset
//   StoreScaledMinus32(bytes, scale, offset, out): the same over 32 bytes
// (each a product, then a sum: block_quant.cc's rounding).
template <typename S>
struct Bytes {
  static float HalfAt(const uint8_t* p) {
    uint16_t bits;
    std::memcpy(&bits, p, sizeof(bits));
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits)));
  }
  static __m128i Load16(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
  static __m256i Load32(const uint8_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  }
  static __m128i LowNibble(__m128i bytes) { return _mm_and_si128(bytes, _mm_set1_epi8(0x0F)); }
  // The 8 bytes of `packed` (least significant first) as 8 floats.
  static __m256 Bytes8ToFloats(uint64_t packed) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(packed))));
  }
  // 8 signed bytes as 8 floats.
  static __m256 SignedBytes8ToFloats(const int8_t* p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
};

// The 32-value blocks are inlined into Tile (the call would cost as much as
// the block); the 256-value ones are not (four inlined copies crowd the loop).
template <typename S>
struct Q8_0 {
  using B = Bytes<S>;
  static constexpr int kElements = 32;
  static constexpr int kBytes = 34;
  [[gnu::always_inline]] static void Dequantize(const uint8_t* block, float* out) {
    const float d = B::HalfAt(block);
    S::StoreScaled16(B::Load16(block + 2), d, out);
    S::StoreScaled16(B::Load16(block + 18), d, out + 16);
  }
};

template <typename S>
struct Q4_0 {
  using B = Bytes<S>;
  static constexpr int kElements = 32;
  static constexpr int kBytes = 18;
  [[gnu::always_inline]] static void Dequantize(const uint8_t* block, float* out) {
    const float d = B::HalfAt(block);
    const __m128i q = B::Load16(block + 2);
    const __m128i eight = _mm_set1_epi8(8);
    S::StoreScaled16(_mm_sub_epi8(B::LowNibble(q), eight), d, out);
    S::StoreScaled16(_mm_sub_epi8(B::LowNibble(_mm_srli_epi16(q, 4)), eight), d, out + 16);
  }
};

template <typename S>
struct Q4_1 {
  using B = Bytes<S>;
  static constexpr int kElements = 32;
  static constexpr int kBytes = 20;
  [[gnu::always_inline]] static void Dequantize(const uint8_t* block, float* out) {
    const float d = B::HalfAt(block);
    const float m = B::HalfAt(block + 2);
    const __m128i q = B::Load16(block + 4);
    S::StoreAffine16(B::LowNibble(q), d, m, out);
    S::StoreAffine16(B::LowNibble(_mm_srli_epi16(q, 4)), d, m, out + 16);
  }
};

// Q4_K and Q5_K: 8 sub-blocks of 32 with 6-bit scales and mins; Q5_K adds a
// fifth bit per value from qh.
template <typename S, bool kFifthBit>
struct K4 {
  using B = Bytes<S>;
  static constexpr int kElements = 256;
  static constexpr int kBytes = kFifthBit ? 176 : 144;
  static void Dequantize(const uint8_t* block, float* out) {
    const float d = B::HalfAt(block);
    const float dmin = B::HalfAt(block + 2);
    const uint8_t* scales = block + 4;
    const uint8_t* qs = block + (kFifthBit ? 48 : 16);
    const __m256i low_nibble = _mm256_set1_epi8(0x0F);
    const __m256i sixteen = _mm256_set1_epi8(16);
    const __m256i qh = kFifthBit ? B::Load32(block + 16) : _mm256_setzero_si256();
    // The 8 sub-block scales d * scale and mins dmin * min as 8-lane fp32
    // products. Scale bytes 0-3 hold scales 0-3 (low 6 bits; top 2: the high
    // bits of scales 4-7), bytes 4-7 mins 0-3 (likewise for mins 4-7), bytes
    // 8-11 the low nibbles of scales 4-7 and the high nibbles of mins 4-7:
    // unpacked a 32-bit word (four sub-blocks) at a time.
    uint32_t words[3];
    std::memcpy(words, scales, sizeof(words));
    const uint32_t low6 = 0x3F3F3F3F, low4 = 0x0F0F0F0F, low2 = 0x03030303;
    const uint32_t scales_high = (words[2] & low4) | (((words[0] >> 6) & low2) << 4);
    const uint32_t mins_high = ((words[2] >> 4) & low4) | (((words[1] >> 6) & low2) << 4);
    const uint64_t packed_scales = (words[0] & low6) | (uint64_t{scales_high} << 32);
    const uint64_t packed_mins = (words[1] & low6) | (uint64_t{mins_high} << 32);
    alignas(32) float d_sub[8], m_sub[8];
    _mm256_store_ps(d_sub, _mm256_mul_ps(_mm256_set1_ps(d), B::Bytes8ToFloats(packed_scales)));
    _mm256_store_ps(m_sub, _mm256_mul_ps(_mm256_set1_ps(dmin), B::Bytes8ToFloats(packed_mins)));
    for (int pair = 0; pair < 4; ++pair) {
      const float d1 = d_sub[2 * pair], m1 = m_sub[2 * pair];
      const float d2 = d_sub[2 * pair + 1], m2 = m_sub[2 * pair + 1];
      const __m256i q = B::Load32(qs + 32 * pair);
      __m256i low = _mm256_and_si256(q, low_nibble);
      __m256i high = _mm256_and_si256(_mm256_srli_epi16(q, 4), low_nibble);
      if constexpr (kFifthBit) {
        const __m256i low_bit = _mm256_set1_epi8(static_cast<char>(1 << (2 * pair)));
        const __m256i high_bit = _mm256_set1_epi8(static_cast<char>(2 << (2 * pair)));
        low = _mm256_or_si256(
            low, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, low_bit), low_bit), sixteen));
        high = _mm256_or_si256(
            high, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, high_bit), high_bit), sixteen));
      }
      S::StoreScaledMinus32(low, d1, m1, out + 64 * pair);
      S::StoreScaledMinus32(high, d2, m2, out + 64 * pair + 32);
    }
  }
};

template <typename S>
struct Q6_K {
  using B = Bytes<S>;
  static constexpr int kElements = 256;
  static constexpr int kBytes = 210;
  static void Dequantize(const uint8_t* block, float* out) {
    const int8_t* scales = reinterpret_cast<const int8_t*>(block + 192);
    const float d = B::HalfAt(block + 208);
    const __m256i low_nibble = _mm256_set1_epi8(0x0F);
    const __m256i two_bits = _mm256_set1_epi8(3);
    const __m256i thirty_two = _mm256_set1_epi8(32);
    // The 16 sub-block scales d * sc as fp32 products, 8 lanes at a time.
    alignas(32) float d_sub[16];
    const __m256 dv = _mm256_set1_ps(d);
    _mm256_store_ps(d_sub, _mm256_mul_ps(dv, B::SignedBytes8ToFloats(scales)));
    _mm256_store_ps(d_sub + 8, _mm256_mul_ps(dv, B::SignedBytes8ToFloats(scales + 8)));
    for (int half = 0; half < 2; ++half) {
      const __m256i low0 = B::Load32(block + 64 * half);
      const __m256i low1 = B::Load32(block + 64 * half + 32);
      const __m256i high = B::Load32(block + 128 + 32 * half);
      const float* sc = d_sub + 8 * half;
      float* y = out + 128 * half;
      // Quarter i (values 32i..32i+31): low nibbles of low0/low1 for i = 0/1,
      // high nibbles for i = 2/3; the two top bits are bits 2i, 2i+1 of high.
      const __m256i quarters[4] = {
          _mm256_and_si256(low0, low_nibble), _mm256_and_si256(low1, low_nibble),
          _mm256_and_si256(_mm256_srli_epi16(low0, 4), low_nibble),
          _mm256_and_si256(_mm256_srli_epi16(low1, 4), low_nibble)};
      for (int i = 0; i < 4; ++i) {
        const __m256i top =
            _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(high, 2 * i), two_bits), 4);
        const __m256i q = _mm256_sub_epi8(_mm256_or_si256(quarters[i], top), thirty_two);
        // Values 32i + l use scale l / 16 + 2i; (d * scale) * q as block_quant.cc.
        S::StoreScaled16(_mm256_castsi256_si128(q), sc[2 * i], y + 32 * i);
        S::StoreScaled16(_mm256_extracti128_si256(q, 1), sc[2 * i + 1], y + 32 * i + 16);
      }
    }
  }
};

// How far ahead Tile prefetches each weight row: about 4 KiB, the best of
// 0.5-8 KiB on decode. A prefetch past the end of the matrix never faults.
template <typename D>
constexpr int64_t kPrefetchBlocks = (4096 + D::kBytes - 1) / D::kBytes;

// y[r * ldy + j] for r < kRows, j < kCols. x: [kRows, k] (row stride k);
// w: kCols rows of row_bytes each. k is a whole number of blocks (a multiple
// of 32, so of S::kLanes), so there is no scalar tail.
template <typename S, typename D, int kRows, int kCols>
void Tile(const float* x, const uint8_t* w, int64_t row_bytes, int64_t k, float* y, int64_t ldy) {
  typename S::Vec acc[kRows][kCols];
#pragma GCC unroll 4
  for (int r = 0; r < kRows; ++r) {
#pragma GCC unroll 4
    for (int j = 0; j < kCols; ++j) acc[r][j] = S::Zero();
  }
  alignas(64) float block[kCols][D::kElements];
  const int64_t num_blocks = k / D::kElements;
  for (int64_t b = 0; b < num_blocks; ++b) {
#pragma GCC unroll 4
    for (int j = 0; j < kCols; ++j) {
      // A few blocks ahead on each row: kCols rows are too many streams for
      // the hardware prefetcher to follow at decode's rate.
      const char* ahead =
          reinterpret_cast<const char*>(w + j * row_bytes + (b + kPrefetchBlocks<D>) * D::kBytes);
#pragma GCC unroll 4
      for (int line = 0; line < D::kBytes; line += 64) _mm_prefetch(ahead + line, _MM_HINT_T0);
      _mm_prefetch(ahead + D::kBytes - 1, _MM_HINT_T0);
      D::Dequantize(w + j * row_bytes + b * D::kBytes, block[j]);
    }
    const float* xb = x + b * D::kElements;
    for (int kk = 0; kk < D::kElements; kk += S::kLanes) {
      typename S::Vec weights[kCols];
#pragma GCC unroll 4
      for (int j = 0; j < kCols; ++j) weights[j] = S::LoadF32(block[j] + kk);
#pragma GCC unroll 4
      for (int r = 0; r < kRows; ++r) {
        const typename S::Vec activations = S::LoadF32(xb + r * k + kk);
#pragma GCC unroll 4
        for (int j = 0; j < kCols; ++j) acc[r][j] = S::Fma(activations, weights[j], acc[r][j]);
      }
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int j = 0; j < kCols; ++j) y[r * ldy + j] = S::HorizontalSum(acc[r][j]);
  }
}

template <typename S, typename D>
using TileFn = void (*)(const float*, const uint8_t*, int64_t, int64_t, float*, int64_t);

template <typename S, typename D>
constexpr TileFn<S, D> kTiles[4][4] = {
    {Tile<S, D, 1, 1>, Tile<S, D, 1, 2>, Tile<S, D, 1, 3>, Tile<S, D, 1, 4>},
    {Tile<S, D, 2, 1>, Tile<S, D, 2, 2>, Tile<S, D, 2, 3>, Tile<S, D, 2, 4>},
    {Tile<S, D, 3, 1>, Tile<S, D, 3, 2>, Tile<S, D, 3, 3>, Tile<S, D, 3, 4>},
    {Tile<S, D, 4, 1>, Tile<S, D, 4, 2>, Tile<S, D, 4, 3>, Tile<S, D, 4, 4>},
};

// Output columns [n_begin, n_end): 4 weight rows per tile for one activation
// row (each dequantised block feeds 4 FMA chains); for several, tiles of up
// to 4 activation rows × kCols weight rows.
template <typename S, typename D, int kCols>
void Columns(const float* x, int64_t m, const Weight& w, float* y, int64_t n_begin, int64_t n_end) {
  const auto* bytes = static_cast<const uint8_t*>(w.data);
  const int64_t k = w.cols;
  const int64_t row_bytes = k / D::kElements * D::kBytes;
  const int64_t ldy = w.rows;
  const int64_t max_cols = m == 1 ? 4 : kCols;
  for (int64_t r = 0; r < m; r += 4) {
    const int64_t rows = m - r < 4 ? m - r : 4;
    for (int64_t n = n_begin; n < n_end; n += max_cols) {
      const int64_t cols = n_end - n < max_cols ? n_end - n : max_cols;
      kTiles<S, D>[rows - 1][cols - 1](x + r * k, bytes + n * row_bytes, row_bytes, k,
                                       y + r * ldy + n, ldy);
    }
  }
}

// Dispatches on the block type; false for the float types (not handled here).
template <typename S, int kCols>
bool QuantColumns(const float* x, int64_t m, const Weight& w, float* y, int64_t n_begin,
                  int64_t n_end) {
  switch (w.type) {
    case WeightType::kQ8_0:
      return Columns<S, Q8_0<S>, kCols>(x, m, w, y, n_begin, n_end), true;
    case WeightType::kQ4_0:
      return Columns<S, Q4_0<S>, kCols>(x, m, w, y, n_begin, n_end), true;
    case WeightType::kQ4_1:
      return Columns<S, Q4_1<S>, kCols>(x, m, w, y, n_begin, n_end), true;
    case WeightType::kQ4_K:
      return Columns<S, K4<S, false>, kCols>(x, m, w, y, n_begin, n_end), true;
    case WeightType::kQ5_K:
      return Columns<S, K4<S, true>, kCols>(x, m, w, y, n_begin, n_end), true;
    case WeightType::kQ6_K:
      return Columns<S, Q6_K<S>, kCols>(x, m, w, y, n_begin, n_end), true;
    case WeightType::kF32:
    case WeightType::kF16:
    case WeightType::kBF16:
    case WeightType::kAwqInt4:
    case WeightType::kInt4:
    case WeightType::kF8E4M3:
      return false;
  }
  return false;
}

// Row-major dequantisation of `rows` rows of `w` from row `first` into out
// ([rows, w.cols] fp32), bit for bit block_quant.cc's DequantizeRow; false
// for the float types.
template <typename S>
bool DequantizeRows(const Weight& w, int64_t first, int64_t rows, float* out) {
  auto run = [&]<typename D>(D*) {
    const int64_t k = w.cols;
    const int64_t row_bytes = k / D::kElements * D::kBytes;
    const auto* bytes = static_cast<const uint8_t*>(w.data) + first * row_bytes;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t b = 0; b < k / D::kElements; ++b) {
        D::Dequantize(bytes + r * row_bytes + b * D::kBytes, out + r * k + b * D::kElements);
      }
    }
    return true;
  };
  switch (w.type) {
    case WeightType::kQ8_0:
      return run(static_cast<Q8_0<S>*>(nullptr));
    case WeightType::kQ4_0:
      return run(static_cast<Q4_0<S>*>(nullptr));
    case WeightType::kQ4_1:
      return run(static_cast<Q4_1<S>*>(nullptr));
    case WeightType::kQ4_K:
      return run(static_cast<K4<S, false>*>(nullptr));
    case WeightType::kQ5_K:
      return run(static_cast<K4<S, true>*>(nullptr));
    case WeightType::kQ6_K:
      return run(static_cast<Q6_K<S>*>(nullptr));
    case WeightType::kF32:
    case WeightType::kF16:
    case WeightType::kBF16:
    case WeightType::kAwqInt4:
    case WeightType::kInt4:
    case WeightType::kF8E4M3:
      return false;
  }
  return false;
}

}  // namespace duet::kernels::cpu::quant

#endif  // DUET_KERNELS_CPU_MATMUL_QUANT_TILES_H_
