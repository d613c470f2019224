// Block-quantized matmul with 8-bit activations (kernels/quant_dot.h), AVX2
// (compiled with -mavx2 -mfma -mf16c; called only when the CPU has them, the
// AVX-512 backend included: with 256-bit integer dot products one activation
// row already reads the weights about as fast as memory delivers them).
//
// Weight bytes are unpacked 32 values (a chunk) at a time straight into
// registers, as unsigned quant values in the activations' order (the signed
// types go through the sign trick: |w| against q with w's sign), and meet the
// activation bytes in vpmaddubsw (pairs summed to int16, which cannot
// saturate: |n| ≤ 63 unsigned, |w| ≤ 128 with |q| ≤ 127), then vpmaddwd with
// the chunk's sub-block scale to int32. One activation row against 4 weight
// rows sums the K4 chunks with unit scales and scales the 8 chunk totals at
// once. Several activation rows share each unpacked chunk: tiles of 4 × 2 for
// the K types, 4 × 8 for the 32-value types (whose per-block fp32 steps then
// run on 8 columns at once). A tile's int32 lanes per weight row are summed
// into one vector of exact block sums per activation row, converted, and fused
// into one fp32 accumulator whose lanes are the output columns: the fp32 steps
// are quant_dot.h's, element by element, so every path gives Int8Dot's result
// bit for bit. Everything is in an anonymous namespace so no code compiled for
// AVX2 can be picked by the linker for other code.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include <glog/logging.h>

#include "kernels/cpu/matmul_kernels.h"
#include "kernels/quant_dot.h"

namespace duet::kernels::cpu {
namespace {

__m256i Load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Σ of each of v[0..3]'s 8 lanes, as the 4 lanes of the result (exact).
[[gnu::always_inline]] inline __m128i SumLanes4(const __m256i v[4]) {
  const __m256i sums = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
  return _mm_add_epi32(_mm256_castsi256_si128(sums), _mm256_extracti128_si256(sums, 1));
}

__m256i Ones16() { return _mm256_set1_epi16(1); }

// What the tile needs to know of a weight type D:
//   kElements, kBytes, kChunks   the block, and its 32-value chunks
//   kSigned                      Chunk gives signed values (else unsigned)
//   kSecond                      the second fp32 term: none; + float(S)·c·d_x
//                                with S the activations' sum (Q4_1);
//                                − float(M)·c·d_x with M = Mins(...) (K4)
//   kExtra                       Extra(u, sums) lanes are added to I (Q6_K)
//   kTree                        one activation row sums the chunks with unit
//                                scales and applies u.scales32 to the 8 chunk
//                                totals at once (K4)
//   Halves(block)                the fp16 d (low 16 bits) and c (high 16 bits;
//                                anything where there is no c)
//   struct Block                 Prepare(block, &u): its sub-block scales
//   Chunk(block, u, c)           chunk c's weight bytes
//   ChunkScale(u, c)             int16 scale of each of chunk c's pair sums
enum Second { kNone, kActivationSum, kMinusMins };

__m128i LowHalf(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }

// 16 bytes of nibbles as 32 bytes: low nibbles, then high nibbles.
__m256i Nibbles32(const uint8_t* p) {
  const __m128i bytes = LowHalf(p);
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(bytes, 4), bytes), _mm256_set1_epi8(0x0F));
}

struct NoState {};

uint32_t Word(const uint8_t* p) {
  uint32_t word;
  std::memcpy(&word, p, sizeof(word));
  return word;
}

struct Q8_0 {
  static constexpr int kElements = 32, kBytes = 34, kChunks = 1;
  static constexpr bool kSigned = true, kExtra = false, kTree = false;
  static constexpr Second kSecond = kNone;
  using Block = NoState;
  static uint32_t Halves(const uint8_t* block) { return Word(block); }
  static void Prepare(const uint8_t*, Block*) {}
  static __m256i Chunk(const uint8_t* block, const Block&, int) { return Load32(block + 2); }
  static __m256i ChunkScale(const Block&, int) { return Ones16(); }
};

struct Q4_0 {
  static constexpr int kElements = 32, kBytes = 18, kChunks = 1;
  static constexpr bool kSigned = true, kExtra = false, kTree = false;
  static constexpr Second kSecond = kNone;
  using Block = NoState;
  static uint32_t Halves(const uint8_t* block) { return Word(block); }
  static void Prepare(const uint8_t*, Block*) {}
  static __m256i Chunk(const uint8_t* block, const Block&, int) {
    return _mm256_sub_epi8(Nibbles32(block + 2), _mm256_set1_epi8(8));
  }
  static __m256i ChunkScale(const Block&, int) { return Ones16(); }
};

struct Q4_1 {
  static constexpr int kElements = 32, kBytes = 20, kChunks = 1;
  static constexpr bool kSigned = false, kExtra = false, kTree = false;
  static constexpr Second kSecond = kActivationSum;
  using Block = NoState;
  static uint32_t Halves(const uint8_t* block) { return Word(block); }
  static void Prepare(const uint8_t*, Block*) {}
  static __m256i Chunk(const uint8_t* block, const Block&, int) { return Nibbles32(block + 4); }
  static __m256i ChunkScale(const Block&, int) { return Ones16(); }
};

// Q4_K and Q5_K: 8 sub-blocks of 32 values, one chunk each.
template <bool kFifthBit>
struct K4 {
  static constexpr int kElements = 256, kBytes = kFifthBit ? 176 : 144, kChunks = 8;
  static constexpr bool kSigned = false, kExtra = false, kTree = true;
  static constexpr Second kSecond = kMinusMins;
  struct Block {
    __m256i scales32;  // s_0 .. s_7 as int32
    __m256i mins;      // int16 mn_0, mn_0, mn_1, mn_1, ...: one per 16 values
    __m256i qh;
  };
  static uint32_t Halves(const uint8_t* block) { return Word(block); }
  static void Prepare(const uint8_t* block, Block* u) {
    // Scale bytes 0-3: scales 0-3 (low 6 bits; top 2: the high bits of scales
    // 4-7); bytes 4-7 likewise for the mins; bytes 8-11: the low nibbles of
    // scales 4-7 and of mins 4-7 (block_quant.h). All 16 at once, as bytes
    // s_0..s_7, mn_0..mn_7: `low` gathers the bytes holding each one's low
    // bits, `high` those holding its top two bits (bits 6-7 → 4-5).
    const __m128i bytes = LowHalf(block + 4);  // the 12 scale bytes and 4 of qs
    const __m128i low = _mm_shuffle_epi8(bytes, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
    const __m128i high = _mm_shuffle_epi8(bytes, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
    const __m128i low_bits = _mm_or_si128(
        _mm_and_si128(low, _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0)),
        _mm_and_si128(_mm_srli_epi16(low, 4), _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15)));
    const __m128i scales_mins =
        _mm_or_si128(low_bits, _mm_and_si128(_mm_srli_epi16(high, 2), _mm_set1_epi8(0x30)));
    u->scales32 = _mm256_cvtepu8_epi32(scales_mins);
    u->mins = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(scales_mins, scales_mins));
    if constexpr (kFifthBit) u->qh = Load32(block + 16);
  }
  static __m256i Chunk(const uint8_t* block, const Block& u, int c) {
    const __m256i bytes = Load32(block + (kFifthBit ? 48 : 16) + 32 * (c / 2));
    const __m256i low_nibble = _mm256_set1_epi8(0x0F);
    __m256i n = _mm256_and_si256(c % 2 == 0 ? bytes : _mm256_srli_epi16(bytes, 4), low_nibble);
    if constexpr (kFifthBit) {
      // Bit c of qh[l] is value l's fifth bit in sub-block c.
      n = _mm256_or_si256(
          n, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(u.qh, c), _mm256_set1_epi8(1)), 4));
    }
    return n;
  }
  static __m256i ChunkScale(const Block& u, int c) {
    // s_c in every int16 lane (s_c < 64, so the int32's high half is 0); a
    // lane permute, as c is a constant only once the loop is unrolled.
    const __m256i s = _mm256_permutevar8x32_epi32(u.scales32, _mm256_set1_epi32(c));
    return _mm256_or_si256(s, _mm256_slli_epi32(s, 16));
  }
  static __m256i Mins(const Block& u, const int16_t* sums) { return _mm256_madd_epi16(u.mins, Load32(sums)); }
};

// Q6_K: 16 sub-blocks of 16 values; values n − 32 with n in [0, 63].
struct Q6_K {
  static constexpr int kElements = 256, kBytes = 210, kChunks = 8;
  static constexpr bool kSigned = false, kExtra = true, kTree = false;
  static constexpr Second kSecond = kNone;
  struct Block {
    __m256i scales[8];  // chunk j: int16 scale 2j ×8, then scale 2j+1 ×8
    __m256i scales16;   // the 16 scales as int16
  };
  // d is the block's last 2 bytes (read as the top of the word before them).
  static uint32_t Halves(const uint8_t* block) { return Word(block + 206) >> 16; }
  static void Prepare(const uint8_t* block, Block* u) {
    const int8_t* scales = reinterpret_cast<const int8_t*>(block + 192);
    u->scales16 = _mm256_cvtepi8_epi16(LowHalf(block + 192));
    for (int j = 0; j < 8; ++j) {
      u->scales[j] = _mm256_set_m128i(_mm_set1_epi16(scales[2 * j + 1]), _mm_set1_epi16(scales[2 * j]));
    }
  }
  // Chunk c = 4·half + g: low 4 bits from ql (the high nibbles for g ≥ 2),
  // the top two bits 2g, 2g+1 of qh.
  static __m256i Chunk(const uint8_t* block, const Block&, int c) {
    const int half = c / 4, g = c % 4;
    const __m256i low_nibble = _mm256_set1_epi8(0x0F);
    const __m256i ql = Load32(block + 64 * half + 32 * (g & 1));
    const __m256i low = _mm256_and_si256(g >= 2 ? _mm256_srli_epi16(ql, 4) : ql, low_nibble);
    const __m256i top = _mm256_slli_epi16(
        _mm256_and_si256(_mm256_srli_epi16(Load32(block + 128 + 32 * half), 2 * g), _mm256_set1_epi8(3)), 4);
    return _mm256_or_si256(low, top);
  }
  static __m256i ChunkScale(const Block& u, int c) { return u.scales[c]; }
  // − 32 · Σ_j s_j · (sum of sub-block j's activations)
  static __m256i Extra(const Block& u, const int16_t* sums) {
    return _mm256_sub_epi32(_mm256_setzero_si256(),
                            _mm256_slli_epi32(_mm256_madd_epi16(u.scales16, Load32(sums)), 5));
  }
};

// The 8 lanes of d[c] summed, as lane c of the result (exact).
[[gnu::always_inline]] inline __m256i Totals8(const __m256i d[8]) {
  const __m256i g0 = _mm256_hadd_epi32(_mm256_hadd_epi32(d[0], d[1]), _mm256_hadd_epi32(d[2], d[3]));
  const __m256i g1 = _mm256_hadd_epi32(_mm256_hadd_epi32(d[4], d[5]), _mm256_hadd_epi32(d[6], d[7]));
  return _mm256_add_epi32(_mm256_permute2x128_si256(g0, g1, 0x20), _mm256_permute2x128_si256(g0, g1, 0x31));
}

// How far ahead the tile prefetches each weight row: about 4 KiB.
template <typename D>
constexpr int64_t kPrefetchBlocks = (4096 + D::kBytes - 1) / D::kBytes;

// The fp32 steps of quant_dot.h for one block of one activation row: lanes
// j < 4 of acc are the output columns, dots[j] / mins[j] lanes summing to
// I / M of column j.
template <typename D>
[[gnu::always_inline]] inline __m128 Accumulate(__m128 acc, const __m256i dots[4], const __m256i mins[4], __m128 d, __m128 c,
                  float d_x, const int16_t* sums) {
  const __m128 dx = _mm_set1_ps(d_x);
  acc = _mm_fmadd_ps(_mm_cvtepi32_ps(SumLanes4(dots)), _mm_mul_ps(d, dx), acc);
  if constexpr (D::kSecond == kActivationSum) {
    const float sum = static_cast<float>(int32_t{sums[0]} + sums[1]);
    acc = _mm_fmadd_ps(_mm_set1_ps(sum), _mm_mul_ps(c, dx), acc);
  } else if constexpr (D::kSecond == kMinusMins) {
    acc = _mm_fnmadd_ps(_mm_cvtepi32_ps(SumLanes4(mins)), _mm_mul_ps(c, dx), acc);
  }
  return acc;
}

// y[r * ldy + j] for r < kRows, j < kCols: activation rows r0.. of x against
// kCols weight rows of row_bytes each at w.
template <typename D, int kRows, int kCols>
void Tile(const Int8Rows& x, int64_t r0, const uint8_t* w, int64_t row_bytes, float* y, int64_t ldy) {
  __m128 acc[kRows];
#pragma GCC unroll 4
  for (int r = 0; r < kRows; ++r) acc[r] = _mm_setzero_ps();
  const int64_t num_blocks = x.cols / D::kElements;
  for (int64_t b = 0; b < num_blocks; ++b) {
    typename D::Block u[kCols];
    const uint8_t* blocks[kCols];
    uint32_t halves[4] = {0, 0, 0, 0};
#pragma GCC unroll 4
    for (int j = 0; j < kCols; ++j) {
      blocks[j] = w + j * row_bytes + b * D::kBytes;
      const char* ahead = reinterpret_cast<const char*>(blocks[j] + kPrefetchBlocks<D> * D::kBytes);
#pragma GCC unroll 4
      for (int line = 0; line < D::kBytes; line += 64) _mm_prefetch(ahead + line, _MM_HINT_T0);
      _mm_prefetch(ahead + D::kBytes - 1, _MM_HINT_T0);
      D::Prepare(blocks[j], &u[j]);
      halves[j] = D::Halves(blocks[j]);
    }
    // d and c of the kCols blocks as fp32 lanes, converted together (built in
    // registers: a vector load of scalar stores would stall).
    const __m256 both = _mm256_cvtph_ps(_mm_setr_epi32(static_cast<int>(halves[0]), static_cast<int>(halves[1]),
                                                       static_cast<int>(halves[2]), static_cast<int>(halves[3])));
    const __m128 low = _mm256_castps256_ps128(both), high = _mm256_extractf128_ps(both, 1);
    const __m128 dv = _mm_shuffle_ps(low, high, _MM_SHUFFLE(2, 0, 2, 0));
    const __m128 cv = _mm_shuffle_ps(low, high, _MM_SHUFFLE(3, 1, 3, 1));
    const int8_t* q[kRows];
    const int16_t* sums[kRows];
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) {
      q[r] = x.q_row(r0 + r) + b * D::kElements;
      sums[r] = x.sums_row(r0 + r) + b * (D::kElements / 16);
    }
    __m256i dots[kRows][4];
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) {
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) dots[r][j] = _mm256_setzero_si256();
    }
    if constexpr (kRows == 1 && D::kTree) {
      // Unit scales per chunk, then the 8 chunk totals times the 8 scales.
#pragma GCC unroll 4
      for (int j = 0; j < kCols; ++j) {
        __m256i chunk_dots[8];
#pragma GCC unroll 8
        for (int ch = 0; ch < 8; ++ch) {
          chunk_dots[ch] = _mm256_madd_epi16(
              _mm256_maddubs_epi16(D::Chunk(blocks[j], u[j], ch), Load32(q[0] + 32 * ch)), Ones16());
        }
        dots[0][j] = _mm256_mullo_epi32(Totals8(chunk_dots), u[j].scales32);
      }
    } else {
#pragma GCC unroll 8
      for (int ch = 0; ch < D::kChunks; ++ch) {
        __m256i activations[kRows];
#pragma GCC unroll 4
        for (int r = 0; r < kRows; ++r) activations[r] = Load32(q[r] + 32 * ch);
#pragma GCC unroll 4
        for (int j = 0; j < kCols; ++j) {
          const __m256i weights = D::Chunk(blocks[j], u[j], ch);
          const __m256i scale = D::ChunkScale(u[j], ch);
          const __m256i magnitude = D::kSigned ? _mm256_abs_epi8(weights) : weights;
#pragma GCC unroll 4
          for (int r = 0; r < kRows; ++r) {
            const __m256i a = D::kSigned ? _mm256_sign_epi8(activations[r], weights) : activations[r];
            dots[r][j] = _mm256_add_epi32(dots[r][j], _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, a), scale));
          }
        }
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) {
      __m256i mins[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                         _mm256_setzero_si256()};
#pragma GCC unroll 4
      for (int j = 0; j < kCols; ++j) {
        if constexpr (D::kExtra) dots[r][j] = _mm256_add_epi32(dots[r][j], D::Extra(u[j], sums[r]));
        if constexpr (D::kSecond == kMinusMins) mins[j] = D::Mins(u[j], sums[r]);
      }
      acc[r] = Accumulate<D>(acc[r], dots[r], mins, dv, cv, x.scales_row(r0 + r)[b], sums[r]);
    }
  }
  for (int r = 0; r < kRows; ++r) {
    alignas(16) float out[4];
    _mm_store_ps(out, acc[r]);
    for (int j = 0; j < kCols; ++j) y[r * ldy + j] = out[j];
  }
}

template <typename D>
using TileFn = void (*)(const Int8Rows&, int64_t, const uint8_t*, int64_t, float*, int64_t);

// One activation row: 4 weight rows per tile. Several: up to 4 × 4 for the
// one-chunk blocks (whose per-block fp32 steps cost more than their integer
// ones, so 4 columns share each), up to 4 × 2 for the K types (their 8-chunk
// integer sums per tile element must stay in registers).
template <typename D>
constexpr TileFn<D> kRowTiles[4] = {Tile<D, 1, 1>, Tile<D, 1, 2>, Tile<D, 1, 3>, Tile<D, 1, 4>};
template <typename D>
constexpr int kMultiRowCols = D::kChunks == 1 ? 4 : 2;
template <typename D>
constexpr TileFn<D> kTiles[4][4] = {
    {Tile<D, 1, 1>, Tile<D, 1, 2>, Tile<D, 1, 3>, Tile<D, 1, 4>},
    {Tile<D, 2, 1>, Tile<D, 2, 2>, Tile<D, 2, 3>, Tile<D, 2, 4>},
    {Tile<D, 3, 1>, Tile<D, 3, 2>, Tile<D, 3, 3>, Tile<D, 3, 4>},
    {Tile<D, 4, 1>, Tile<D, 4, 2>, Tile<D, 4, 3>, Tile<D, 4, 4>},
};

// The one-chunk (32-value) types, 8 whole weight rows × kRows activation rows:
// the fp32 steps, one per 32 values and row, run on 8 columns at once. Lane j
// of acc is column j, as in Tile, so the result is the same bit for bit.
template <typename D, int kRows>
void WideTile(const Int8Rows& x, int64_t r0, const uint8_t* w, int64_t row_bytes, float* y,
              int64_t ldy) {
  static_assert(D::kChunks == 1);
  __m256 acc[kRows];
#pragma GCC unroll 4
  for (int r = 0; r < kRows; ++r) acc[r] = _mm256_setzero_ps();
  const int64_t num_blocks = x.cols / D::kElements;
  for (int64_t b = 0; b < num_blocks; ++b) {
    __m256i weights[8], magnitudes[8];
    uint32_t halves[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      const uint8_t* block = w + j * row_bytes + b * D::kBytes;
      _mm_prefetch(reinterpret_cast<const char*>(block + kPrefetchBlocks<D> * D::kBytes), _MM_HINT_T0);
      typename D::Block u;
      weights[j] = D::Chunk(block, u, 0);
      magnitudes[j] = D::kSigned ? _mm256_abs_epi8(weights[j]) : weights[j];
      halves[j] = D::Halves(block);
    }
    // d_j and c_j in lanes j: fp16 pairs (d, c) of columns 0-3 and 4-7.
    const __m256 low = _mm256_cvtph_ps(_mm_setr_epi32(static_cast<int>(halves[0]), static_cast<int>(halves[1]),
                                                      static_cast<int>(halves[2]), static_cast<int>(halves[3])));
    const __m256 high = _mm256_cvtph_ps(_mm_setr_epi32(static_cast<int>(halves[4]), static_cast<int>(halves[5]),
                                                       static_cast<int>(halves[6]), static_cast<int>(halves[7])));
    const __m256i order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
    const __m256 dv = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(low, high, _MM_SHUFFLE(2, 0, 2, 0)), order);
    const __m256 cv = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(low, high, _MM_SHUFFLE(3, 1, 3, 1)), order);
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) {
      const __m256i activations = Load32(x.q_row(r0 + r) + b * D::kElements);
      __m256i dots[8];
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) {
        const __m256i a = D::kSigned ? _mm256_sign_epi8(activations, weights[j]) : activations;
        dots[j] = _mm256_madd_epi16(_mm256_maddubs_epi16(magnitudes[j], a), Ones16());
      }
      const __m256 dx = _mm256_set1_ps(x.scales_row(r0 + r)[b]);
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(Totals8(dots)), _mm256_mul_ps(dv, dx), acc[r]);
      if constexpr (D::kSecond == kActivationSum) {
        const int16_t* sums = x.sums_row(r0 + r) + 2 * b;
        const float sum = static_cast<float>(int32_t{sums[0]} + sums[1]);
        acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(sum), _mm256_mul_ps(cv, dx), acc[r]);
      }
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < kRows; ++r) _mm256_storeu_ps(y + r * ldy, acc[r]);
}

template <typename D>
constexpr TileFn<D> kWideTiles[4] = {WideTile<D, 1>, WideTile<D, 2>, WideTile<D, 3>, WideTile<D, 4>};

// Columns [n_begin, n_end) for every activation row, a panel of about 64 KiB
// of weight rows at a time so every row tile passes over it while it is in L2.
template <typename D>
void Columns(const Int8Rows& x, const Weight& w, float* y, int64_t n_begin, int64_t n_end) {
  const auto* bytes = static_cast<const uint8_t*>(w.data);
  const int64_t row_bytes = x.cols / D::kElements * D::kBytes;
  const int64_t ldy = w.rows;
  if constexpr (D::kChunks == 1) {
    // Whole groups of 8 weight rows in wide tiles, the rest in 4-wide ones.
    const int64_t panel = std::max<int64_t>(8, (64 * 1024 / row_bytes) / 8 * 8);
    for (int64_t p = n_begin; p < n_end; p += panel) {
      const int64_t p_end = std::min(n_end, p + panel);
      for (int64_t r = 0; r < x.rows; r += 4) {
        const int64_t rows = std::min<int64_t>(4, x.rows - r);
        int64_t n = p;
        for (; n + 8 <= p_end; n += 8) {
          kWideTiles<D>[rows - 1](x, r, bytes + n * row_bytes, row_bytes, y + r * ldy + n, ldy);
        }
        for (; n < p_end; n += 4) {
          const int64_t cols = std::min<int64_t>(4, p_end - n);
          kTiles<D>[rows - 1][cols - 1](x, r, bytes + n * row_bytes, row_bytes, y + r * ldy + n, ldy);
        }
      }
    }
    return;
  }
  if (x.rows == 1) {
    for (int64_t n = n_begin; n < n_end; n += 4) {
      const int64_t cols = std::min<int64_t>(4, n_end - n);
      kRowTiles<D>[cols - 1](x, 0, bytes + n * row_bytes, row_bytes, y + n, ldy);
    }
    return;
  }
  constexpr int64_t kCols = kMultiRowCols<D>;
  const int64_t panel = std::max<int64_t>(kCols, (64 * 1024 / row_bytes) / kCols * kCols);
  for (int64_t p = n_begin; p < n_end; p += panel) {
    const int64_t p_end = std::min(n_end, p + panel);
    for (int64_t r = 0; r < x.rows; r += 4) {
      const int64_t rows = std::min<int64_t>(4, x.rows - r);
      for (int64_t n = p; n < p_end; n += kCols) {
        const int64_t cols = std::min<int64_t>(kCols, p_end - n);
        kTiles<D>[rows - 1][cols - 1](x, r, bytes + n * row_bytes, row_bytes, y + r * ldy + n, ldy);
      }
    }
  }
}

// One activation block as quant_dot.h rounds it.
void QuantizeBlock(const float* values, int64_t count, int8_t* q, float* scale) {
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  const __m256 infinity = _mm256_set1_ps(INFINITY);
  __m256 max_abs = _mm256_setzero_ps();
  __m256 not_finite = _mm256_setzero_ps();
  for (int64_t i = 0; i < count; i += 8) {
    const __m256 magnitude = _mm256_andnot_ps(sign_mask, _mm256_loadu_ps(values + i));
    max_abs = _mm256_max_ps(max_abs, magnitude);
    not_finite = _mm256_or_ps(not_finite, _mm256_cmp_ps(magnitude, infinity, _CMP_NLT_UQ));
  }
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(max_abs), _mm256_extractf128_ps(max_abs, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  const float amax = _mm_cvtss_f32(m);
  const bool finite = _mm256_movemask_ps(not_finite) == 0;
  const float inverse_scale = 127.0f / amax;
  if (!finite || !std::isfinite(inverse_scale)) {  // amax 0 or too small to invert
    *scale = finite ? 0.0f : NAN;
    std::memset(q, 0, static_cast<size_t>(count));
    return;
  }
  const __m256 inverse = _mm256_set1_ps(inverse_scale);
  *scale = amax / 127.0f;
  for (int64_t i = 0; i < count; i += 32) {
    // Round half to even (the default MXCSR mode), then narrow: no value
    // exceeds 127 in magnitude, so the saturating packs are exact.
    __m256i v[4];
    for (int t = 0; t < 4; ++t) {
      v[t] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(values + i + 8 * t), inverse));
    }
    const __m256i words = _mm256_packs_epi32(v[0], v[1]);       // lanes interleave per 128 bits
    const __m256i words2 = _mm256_packs_epi32(v[2], v[3]);
    const __m256i packed = _mm256_packs_epi16(words, words2);
    // packs works within 128-bit halves: dwords 0,4,1,5,2,6,3,7 → restore order.
    const __m256i ordered = _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), ordered);
  }
}

}  // namespace

void QuantizeInt8RowsAvx2(const float* x, int64_t r_begin, int64_t r_end, Int8Rows* out) {
  const int64_t cols = out->cols;
  for (int64_t r = r_begin; r < r_end; ++r) {
    int8_t* q = out->q.data() + r * cols;
    float* scales = out->scales.data() + r * (cols / out->block);
    for (int64_t b = 0; b < cols / out->block; ++b) {
      QuantizeBlock(x + r * cols + b * out->block, out->block, q + b * out->block, scales + b);
    }
    // The sums of 16, two groups at a time.
    int16_t* sums = out->sums.data() + r * (cols / 16);
    for (int64_t g = 0; g < cols / 16; g += 2) {
      const __m256i words = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16 * g)));
      const __m256i words2 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16 * g + 16)));
      // Each 256-bit vector holds one group of 16; sum its 16 int16 lanes.
      const __m256i d1 = _mm256_madd_epi16(words, Ones16());
      const __m256i d2 = _mm256_madd_epi16(words2, Ones16());
      const __m256i h = _mm256_hadd_epi32(d1, d2);  // [a01 a23 b01 b23 | a45 a67 b45 b67]
      const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
      const __m128i t = _mm_hadd_epi32(s, s);        // [a, b, a, b]
      sums[g] = static_cast<int16_t>(_mm_extract_epi32(t, 0));
      sums[g + 1] = static_cast<int16_t>(_mm_extract_epi32(t, 1));
    }
  }
}

void MatmulInt8ColumnsAvx2(const Int8Rows& x, const Weight& w, float* y, int64_t n_begin,
                           int64_t n_end) {
  CHECK_EQ(x.cols, w.cols);
  switch (w.type) {
    case WeightType::kQ8_0:
      return Columns<Q8_0>(x, w, y, n_begin, n_end);
    case WeightType::kQ4_0:
      return Columns<Q4_0>(x, w, y, n_begin, n_end);
    case WeightType::kQ4_1:
      return Columns<Q4_1>(x, w, y, n_begin, n_end);
    case WeightType::kQ4_K:
      return Columns<K4<false>>(x, w, y, n_begin, n_end);
    case WeightType::kQ5_K:
      return Columns<K4<true>>(x, w, y, n_begin, n_end);
    case WeightType::kQ6_K:
      return Columns<Q6_K>(x, w, y, n_begin, n_end);
    case WeightType::kF32:
    case WeightType::kF16:
    case WeightType::kBF16:
    case WeightType::kAwqInt4:
    case WeightType::kInt4:
    case WeightType::kF8E4M3:
      break;
  }
  LOG(FATAL) << "MatmulInt8ColumnsAvx2 takes block-quantized weights, not " << WeightTypeName(w.type);
}

}  // namespace duet::kernels::cpu
