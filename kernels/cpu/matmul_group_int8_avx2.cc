// 4-bit group-quantized matmul (kAwqInt4, kInt4) with 8-bit activations
// (kernels/quant_dot.h), AVX2 (compiled with -mavx2 -mfma -mf16c; called only
// when the CPU has them, the AVX-512 backend included).
//
// Both layouts meet the activation bytes in vpmaddubsw: unsigned nibbles
// (0..15) against signed activations (|q| ≤ 127), pairs summed to int16,
// which cannot saturate, and the per-block int32 sums I are exact, so any
// order of integer additions gives quant_dot.h's J = I − z·S. The fp32 steps
// are then the definition's, one lane per output: every path gives
// GroupInt8Dot's result bit for bit.
//
// kInt4 (input features contiguous per output): a tile is 8 outputs. The
// low and high nibbles of 64 inputs are the even and odd inputs, so the
// activation row is first copied deinterleaved per 64 (evens, then odds);
// each output's int32 lanes are summed across at the end of an activation
// block, eight outputs at once.
//
// kAwqInt4 (output features contiguous per input, 8 to a word in AWQ's
// nibble order): a tile is 64 outputs, one 32-byte line of each input row.
// Two input rows are interleaved byte-wise (vpunpck[lh]bw), so each int16
// lane of vpmaddubsw is one output's pair of products; int16 sums run for 16
// inputs, then widen to int32. The lanes hold the outputs in a fixed order of
// their own (LaneOutput below); the zero points come out in that order by the
// same unpacking, the scales by a permute, and the results are stored back
// in the natural order.
//
// Everything is in an anonymous namespace so no code compiled for AVX2 can be
// picked by the linker for other code.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include <glog/logging.h>

#include "kernels/cpu/matmul_kernels.h"
#include "kernels/group_quant.h"
#include "kernels/quant_dot.h"

namespace duet::kernels::cpu {
namespace {

__m256i Load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

__m256i LowNibbles(__m256i v) { return _mm256_and_si256(v, _mm256_set1_epi8(0x0F)); }
__m256i HighNibbles(__m256i v) { return _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0F)); }

// Σ of the activation quants of block b of row r (exact).
int32_t BlockSum(const Int8Rows& x, int64_t r, int64_t b) {
  const int16_t* sums = x.sums_row(r) + b * (x.block / 16);
  int32_t total = 0;
  for (int64_t i = 0; i < x.block / 16; ++i) total += sums[i];
  return total;
}

// Σ of each of v[0..7]'s 8 lanes, as the 8 lanes of the result (exact).
__m256i SumLanes8(const __m256i v[8]) {
  const __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
  const __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
  // a = [s0 s1 s2 s3 | t0 t1 t2 t3] with v[i]'s sum s_i + t_i; likewise b.
  return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

// ---- kInt4 ----------------------------------------------------------------

// Row r of x deinterleaved per 64 inputs: the 32 even inputs, then the 32 odd
// ones, in the order of LowNibbles / HighNibbles of 32 weight bytes (byte
// 4j + b of those is input 8j + 2b, resp. 8j + 2b + 1).
void Deinterleave(const int8_t* q, int64_t cols, int8_t* out) {
  for (int64_t c = 0; c < cols; c += 64) {
    for (int j = 0; j < 8; ++j) {
      for (int b = 0; b < 4; ++b) {
        out[c + 4 * j + b] = q[c + 8 * j + 2 * b];
        out[c + 32 + 4 * j + b] = q[c + 8 * j + 2 * b + 1];
      }
    }
  }
}

// Scales [first, first + count) of `w` (any scale type) as fp32.
void ScalesToFloat(const Weight& w, int64_t first, int64_t count, float* out) {
  int64_t i = 0;
  if (w.scale_type == WeightType::kF32) {
    std::memcpy(out, static_cast<const float*>(w.scales) + first, static_cast<size_t>(count) * 4);
    return;
  }
  const uint16_t* halves = static_cast<const uint16_t*>(w.scales) + first;
  for (; i + 8 <= count; i += 8) {
    const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(halves + i));
    _mm256_storeu_ps(out + i, w.scale_type == WeightType::kF16
                                  ? _mm256_cvtph_ps(bits)
                                  : _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16)));
  }
  for (; i < count; ++i) out[i] = GroupScaleAt(w, first + i);
}

// How far ahead of its loads a kInt4 tile prefetches each weight row.
constexpr int64_t kInt4AheadBytes = 256;

// Outputs [n, n + 8) of kInt4 `w` for every row of x.
// kChunks: 64-input chunks per activation block (x.block / 64).
template <int kChunks>
void Int4Tile(const Int8Rows& x, const int8_t* deinterleaved, const Weight& w, int64_t n, float* y) {
  const int64_t groups = w.cols / w.group_size;
  const int64_t word_cols = w.cols / 8;
  const int64_t blocks_per_group = w.group_size / x.block;
  // This tile's scales by group, 8 outputs each.
  thread_local std::vector<float> row_scales, scales;
  row_scales.resize(static_cast<size_t>(groups));
  scales.resize(static_cast<size_t>(groups * 8));
  for (int i = 0; i < 8; ++i) {
    ScalesToFloat(w, (n + i) * groups, groups, row_scales.data());
    for (int64_t g = 0; g < groups; ++g) scales[g * 8 + i] = row_scales[g];
  }
  // Zero points: nibble i of word (n / 8, g) is output n + i's.
  const auto* zero_words = static_cast<const uint32_t*>(w.zeros) + (n / 8) * groups;
  const __m256i zero_shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
  const auto* bytes = static_cast<const uint8_t*>(w.data) + n * word_cols * 4;
  const int64_t row_bytes = word_cols * 4;
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t r = 0; r < x.rows; ++r) {
    const int8_t* q = deinterleaved + r * x.cols;
    const float* d_x = x.scales_row(r);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < x.cols / x.block; ++b) {
      // Each output's lanes in one register over the block's chunks.
      const uint8_t* block_bytes = bytes + b * kChunks * 32;
      const int8_t* block_q = q + b * kChunks * 64;
      __m256i dots[8];
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) {
        const uint8_t* weights = block_bytes + i * row_bytes;
        _mm_prefetch(reinterpret_cast<const char*>(weights + kInt4AheadBytes), _MM_HINT_T0);
        __m256i sum = _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int c = 0; c < kChunks; ++c) {
          const __m256i v = Load32(weights + 32 * c);
          const __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(LowNibbles(v), Load32(block_q + 64 * c)),
                                                 _mm256_maddubs_epi16(HighNibbles(v), Load32(block_q + 64 * c + 32)));
          sum = _mm256_add_epi32(sum, _mm256_madd_epi16(pairs, ones));
        }
        dots[i] = sum;
      }
      const int64_t g = b / blocks_per_group;
      uint32_t zero_word = 0x88888888u;  // symmetric: every zero point 8
      if (w.zeros != nullptr) std::memcpy(&zero_word, zero_words + g, 4);
      const __m256i z = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int32_t>(zero_word)), zero_shifts),
                                         _mm256_set1_epi32(15));
      const __m256i j = _mm256_sub_epi32(SumLanes8(dots), _mm256_mullo_epi32(z, _mm256_set1_epi32(BlockSum(x, r, b))));
      const __m256 sd = _mm256_mul_ps(_mm256_loadu_ps(scales.data() + g * 8), _mm256_set1_ps(d_x[b]));
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(j), sd, acc);
    }
    _mm256_storeu_ps(y + r * w.rows + n, acc);
  }
}

void Int4Columns(const Int8Rows& x, const Weight& w, float* y, int64_t n_begin, int64_t n_end) {
  thread_local std::vector<int8_t> deinterleaved;
  deinterleaved.resize(static_cast<size_t>(x.rows * x.cols));
  for (int64_t r = 0; r < x.rows; ++r) Deinterleave(x.q_row(r), x.cols, deinterleaved.data() + r * x.cols);
  int64_t n = n_begin;
  const auto tile = x.block == 128 ? Int4Tile<2> : Int4Tile<1>;
  for (; n + 8 <= n_end && n % 8 == 0; n += 8) tile(x, deinterleaved.data(), w, n, y);
  for (; n < n_end; ++n) {
    for (int64_t r = 0; r < x.rows; ++r) y[r * w.rows + n] = GroupInt8Dot(w, n, x, r);
  }
}

// ---- kAwqInt4 -------------------------------------------------------------

// The outputs of a 64-output tile in the lanes of int32 vector 4h + 2u + L
// (h: low or high nibbles, u: the low or high unpack, L: the 128-bit half the
// lanes widened from): lane t holds output 8·(4L + 2u + t/4) + kCols[h][t % 4],
// kCols being the outputs of a word's even (h = 0) and odd nibbles.
constexpr int kCols[2][4] = {{0, 4, 1, 5}, {2, 6, 3, 7}};

int LaneOutput(int vector, int t) {
  const int h = vector / 4, u = (vector / 2) % 2, half = vector % 2;
  return 8 * (4 * half + 2 * u + t / 4) + kCols[h][t % 4];
}

// The 8 int32 vectors of a 32-byte line of nibbles (8 words), one nibble per
// lane in LaneOutput's order: the unpacking the weights go through, against
// zero bytes instead of a second row.
void NibbleLanes(__m256i line, __m256i out[8]) {
  const __m256i zero = _mm256_setzero_si256();
  for (int h = 0; h < 2; ++h) {
    const __m256i nibbles = h == 0 ? LowNibbles(line) : HighNibbles(line);
    for (int u = 0; u < 2; ++u) {
      const __m256i words = u == 0 ? _mm256_unpacklo_epi8(nibbles, zero) : _mm256_unpackhi_epi8(nibbles, zero);
      out[4 * h + 2 * u] = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(words));
      out[4 * h + 2 * u + 1] = _mm256_cvtepi16_epi32(_mm256_extracti128_si256(words, 1));
    }
  }
}

// 64 natural-order fp32 scales as the 8 vectors of LaneOutput's order.
void ScaleLanes(const float* natural, __m256 out[8]) {
  for (int v = 0; v < 8; ++v) {
    const int h = v / 4, u = (v / 2) % 2, half = v % 2;
    const int word = 4 * half + 2 * u;
    const __m256i index = _mm256_setr_epi32(kCols[h][0], kCols[h][1], kCols[h][2], kCols[h][3], kCols[h][0],
                                            kCols[h][1], kCols[h][2], kCols[h][3]);
    const __m256 first = _mm256_permutevar8x32_ps(_mm256_loadu_ps(natural + 8 * word), index);
    const __m256 second = _mm256_permutevar8x32_ps(_mm256_loadu_ps(natural + 8 * word + 8), index);
    out[v] = _mm256_blend_ps(first, second, 0xF0);
  }
}

// Outputs [n_begin, n_begin + 64·tiles) of AWQ `w` for rows [r0, r0 + R) of x. The
// weights stream in their stored order: each pair of input rows is read
// across every tile before the next pair, the tiles' int16 sums and int32
// block sums kept in L1 meanwhile.
// How many input rows ahead the AWQ tiles prefetch the line they are about
// to read (the hardware prefetchers do not follow the rows' stride).
constexpr int64_t kAheadRows = 2;

template <int R>
void AwqTiles(const Int8Rows& x, const Weight& w, int64_t n_begin, int64_t tiles, int64_t r0, float* y) {
  const int64_t line = w.rows / 8 * 4;  // bytes per input row (and zero-point row)
  const auto* bytes = static_cast<const uint8_t*>(w.data) + n_begin / 2;
  const auto* zero_bytes = static_cast<const uint8_t*>(w.zeros) + n_begin / 2;
  const auto* scale_halves = static_cast<const uint16_t*>(w.scales) + n_begin;
  const int64_t blocks_per_group = w.group_size / x.block;
  // Per row of the R: the tiles' int16 sums, int32 block sums and fp32 sums.
  thread_local std::vector<__m256i> sums, dots;
  thread_local std::vector<__m256> acc;
  sums.resize(static_cast<size_t>(R * tiles * 4));
  dots.resize(static_cast<size_t>(R * tiles * 8));
  acc.resize(static_cast<size_t>(R * tiles * 8));
  std::fill(acc.begin(), acc.end(), _mm256_setzero_ps());
  for (int64_t b = 0; b < x.cols / x.block; ++b) {
    std::fill(dots.begin(), dots.end(), _mm256_setzero_si256());
    for (int64_t k0 = b * x.block; k0 < (b + 1) * x.block; k0 += 16) {
      std::fill(sums.begin(), sums.end(), _mm256_setzero_si256());
      for (int64_t k = k0; k < k0 + 16; k += 2) {
        __m256i activations[R];
#pragma GCC unroll 2
        for (int r = 0; r < R; ++r) {
          int16_t pair;
          std::memcpy(&pair, x.q_row(r0 + r) + k, 2);
          activations[r] = _mm256_set1_epi16(pair);
        }
        const uint8_t* row0 = bytes + k * line;
        const uint8_t* row1 = row0 + line;
        for (int64_t t = 0; t < tiles; ++t) {
          if (t % 2 == 0) {
            _mm_prefetch(reinterpret_cast<const char*>(row0 + kAheadRows * line + 32 * t), _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(row1 + kAheadRows * line + 32 * t), _MM_HINT_T0);
          }
          const __m256i v0 = Load32(row0 + 32 * t);
          const __m256i v1 = Load32(row1 + 32 * t);
          const __m256i low0 = LowNibbles(v0), low1 = LowNibbles(v1);
          const __m256i high0 = HighNibbles(v0), high1 = HighNibbles(v1);
          const __m256i unpacked[4] = {_mm256_unpacklo_epi8(low0, low1), _mm256_unpackhi_epi8(low0, low1),
                                       _mm256_unpacklo_epi8(high0, high1), _mm256_unpackhi_epi8(high0, high1)};
#pragma GCC unroll 2
          for (int r = 0; r < R; ++r) {
            __m256i* s = sums.data() + (r * tiles + t) * 4;
#pragma GCC unroll 4
            for (int i = 0; i < 4; ++i) s[i] = _mm256_add_epi16(s[i], _mm256_maddubs_epi16(unpacked[i], activations[r]));
          }
        }
      }
      // 8 pairs of at most 2·15·127 each: |sum| ≤ 30480, no int16 overflow.
      for (int64_t rt = 0; rt < R * tiles; ++rt) {
        for (int i = 0; i < 4; ++i) {
          const __m256i s = sums[4 * rt + i];
          __m256i* d = dots.data() + 8 * rt + 2 * i;
          d[0] = _mm256_add_epi32(d[0], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s)));
          d[1] = _mm256_add_epi32(d[1], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s, 1)));
        }
      }
    }
    const int64_t g = b / blocks_per_group;
    for (int64_t t = 0; t < tiles; ++t) {
      __m256i zeros[8];
      __m256 scales[8];
      NibbleLanes(Load32(zero_bytes + g * line + 32 * t), zeros);
      alignas(32) float natural[64];
      for (int i = 0; i < 8; ++i) {
        const __m128i halves =
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(scale_halves + g * w.rows + 64 * t + 8 * i));
        _mm256_store_ps(natural + 8 * i, _mm256_cvtph_ps(halves));
      }
      ScaleLanes(natural, scales);
      for (int r = 0; r < R; ++r) {
        const __m256i sum = _mm256_set1_epi32(BlockSum(x, r0 + r, b));
        const __m256 d = _mm256_set1_ps(x.scales_row(r0 + r)[b]);
        const int64_t rt = r * tiles + t;
        for (int v = 0; v < 8; ++v) {
          const __m256i j = _mm256_sub_epi32(dots[8 * rt + v], _mm256_mullo_epi32(zeros[v], sum));
          acc[8 * rt + v] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(j), _mm256_mul_ps(scales[v], d), acc[8 * rt + v]);
        }
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int64_t t = 0; t < tiles; ++t) {
      float* out = y + (r0 + r) * w.rows + n_begin + 64 * t;
      for (int v = 0; v < 8; ++v) {
        alignas(32) float lanes[8];
        _mm256_store_ps(lanes, acc[8 * (r * tiles + t) + v]);
        for (int lane = 0; lane < 8; ++lane) out[LaneOutput(v, lane)] = lanes[lane];
      }
    }
  }
}

void AwqColumns(const Int8Rows& x, const Weight& w, float* y, int64_t n_begin, int64_t n_end) {
  int64_t n = n_begin;
  if (n_begin % 8 == 0 && n_end - n_begin >= 64) {
    const int64_t tiles = (n_end - n_begin) / 64;
    // Two activation rows share each unpacked pair of weight rows.
    int64_t r = 0;
    for (; r + 2 <= x.rows; r += 2) AwqTiles<2>(x, w, n_begin, tiles, r, y);
    if (r < x.rows) AwqTiles<1>(x, w, n_begin, tiles, r, y);
    n += 64 * tiles;
  }
  for (; n < n_end; ++n) {
    for (int64_t r = 0; r < x.rows; ++r) y[r * w.rows + n] = GroupInt8Dot(w, n, x, r);
  }
}

}  // namespace

void MatmulGroupInt8ColumnsAvx2(const Int8Rows& x, const Weight& w, float* y, int64_t n_begin,
                                int64_t n_end) {
  CHECK_EQ(x.cols, w.cols);
  CHECK_EQ(x.block, GroupInt8ActivationBlock(w)) << WeightTypeName(w.type) << " group " << w.group_size;
  if (w.type == WeightType::kAwqInt4) return AwqColumns(x, w, y, n_begin, n_end);
  CHECK(w.type == WeightType::kInt4) << WeightTypeName(w.type);
  Int4Columns(x, w, y, n_begin, n_end);
}

}  // namespace duet::kernels::cpu
