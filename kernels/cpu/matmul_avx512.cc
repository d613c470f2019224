// AVX-512 matmul (compiled with -mavx512f -mavx512bw -mavx512vl; called only
// when the CPU has them): 16-lane vectors for matmul_tiles.h. With 32
// registers the prefill tile is 4 activation rows × 4 weight rows. Everything
// defined here is in an anonymous namespace so no code compiled for AVX-512
// can be picked by the linker for other code.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include <glog/logging.h>

#include "kernels/cpu/matmul_group_tiles.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/cpu/matmul_quant_tiles.h"
#include "kernels/cpu/matmul_tiles.h"

namespace duet::kernels::cpu {
namespace {

struct Avx512 {
  using Vec = __m512;
  static constexpr int kLanes = 16;
  static Vec Zero() { return _mm512_setzero_ps(); }
  static Vec LoadF32(const float* p) { return _mm512_loadu_ps(p); }
  static Vec Fma(Vec a, Vec b, Vec acc) { return _mm512_fmadd_ps(a, b, acc); }
  // Lanes (i + i+8), then (i + i+4), then (0+2, 1+3), then 0+1.
  static float HorizontalSum(Vec v) {
    const __m256 half = _mm256_add_ps(
        _mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 sum = _mm_add_ps(_mm256_castps256_ps128(half), _mm256_extractf128_ps(half, 1));
    sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
    sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
    return _mm_cvtss_f32(sum);
  }
  static float Fma1(float a, float b, float c) {
    return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
  }
  // matmul_quant_tiles.h's widening stores: 16 signed bytes as 16 floats.
  static __m512 Widen(__m128i bytes) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes)); }
  static void StoreScaled16(__m128i bytes, float scale, float* out) {
    _mm512_storeu_ps(out, _mm512_mul_ps(Widen(bytes), _mm512_set1_ps(scale)));
  }
  static void StoreAffine16(__m128i bytes, float scale, float offset, float* out) {
    _mm512_storeu_ps(out, _mm512_add_ps(_mm512_mul_ps(Widen(bytes), _mm512_set1_ps(scale)),
                                       _mm512_set1_ps(offset)));
  }
  static void StoreScaledMinus16(__m128i bytes, float scale, float offset, float* out) {
    _mm512_storeu_ps(out, _mm512_sub_ps(_mm512_mul_ps(_mm512_set1_ps(scale), Widen(bytes)),
                                       _mm512_set1_ps(offset)));
  }
  static void StoreScaledMinus32(__m256i bytes, float scale, float offset, float* out) {
    StoreScaledMinus16(_mm256_castsi256_si128(bytes), scale, offset, out);
    StoreScaledMinus16(_mm256_extracti128_si256(bytes, 1), scale, offset, out + 16);
  }
};

struct F32Weights {
  using Element = float;
  static __m512 Load(const float* p) { return _mm512_loadu_ps(p); }
  static float Load1(const float* p) { return *p; }
};

struct Bf16Weights {
  using Element = uint16_t;
  static __m512 Load(const uint16_t* p) {
    const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16));
  }
  static float Load1(const uint16_t* p) {
    return _mm_cvtss_f32(_mm_castsi128_ps(_mm_cvtsi32_si128(static_cast<int>(uint32_t{*p} << 16))));
  }
};

struct F16Weights {
  using Element = uint16_t;
  static __m512 Load(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static float Load1(const uint16_t* p) {
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(*p)));
  }
};

}  // namespace

// A 16-lane FP8 dequantiser: the same fp32 operations as matmul_group_tiles.h's
// (so the same bits), on 16 values per instruction. (For kInt4 the 8-lane one
// measured faster here than 16-lane variants: it stays.)
namespace group {

template <>
struct F8Rows<Avx512> {
  static void Chunk(const Weight& w, int64_t row, int64_t c0, int64_t count, float* out) {
    const uint8_t* bytes = static_cast<const uint8_t*>(w.data) + row * w.cols + c0;
    const int64_t scale_cols = (w.cols + w.group_size - 1) / w.group_size;
    const int64_t scale_row = (row / w.scale_rows) * scale_cols;
    const __m512 two_8 = _mm512_set1_ps(0x1p8f);
    const __m256i sign = _mm256_set1_epi16(0x80), magnitude = _mm256_set1_epi16(0x7f);
    int64_t block = c0 / w.group_size;
    int64_t t = 0;
    while (t < count) {
      const int64_t run_end = std::min<int64_t>(count, (block + 1) * w.group_size - c0);
      const float scale = Scales<Avx512>::At(w, scale_row + block);
      const __m512 s = _mm512_set1_ps(scale);
      for (; t + 16 <= run_end; t += 16) {
        const __m256i b = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes + t)));
        const __m256i half = _mm256_or_si256(_mm256_slli_epi16(_mm256_and_si256(b, sign), 8),
                                             _mm256_slli_epi16(_mm256_and_si256(b, magnitude), 7));
        _mm512_storeu_ps(out + t, _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtph_ps(half), two_8), s));
      }
      for (; t < run_end; ++t) {
        const float value = _mm_cvtss_f32(_mm_cvtph_ps(F8HalfBits(_mm_cvtsi32_si128(bytes[t])))) * 0x1p8f;
        out[t] = value * scale;
      }
      ++block;
    }
  }
};

}  // namespace group

void MatmulColumnsAvx512(const float* x, int64_t m, const Weight& w, float* y, int64_t n_begin,
                         int64_t n_end) {
  MatmulColumnsForType<Avx512, F32Weights, F16Weights, Bf16Weights, /*kPrefillCols=*/4>(
      x, m, w, y, n_begin, n_end);
}

void MatmulQuantColumnsAvx512(const float* x, int64_t m, const Weight& w, float* y,
                            int64_t n_begin, int64_t n_end) {
  CHECK((quant::QuantColumns<Avx512, /*kCols=*/4>(x, m, w, y, n_begin, n_end)))
      << "MatmulQuantColumnsAvx512 takes block-quantized weights, not " << WeightTypeName(w.type);
}

void DequantizeRowsAvx512(const Weight& w, int64_t first, int64_t rows, float* out) {
  CHECK(quant::DequantizeRows<Avx512>(w, first, rows, out))
      << "DequantizeRowsAvx512 takes block-quantized weights, not " << WeightTypeName(w.type);
}

void MatmulGroupColumnsAvx512(const float* x, int64_t m, const Weight& w, float* y,
                            int64_t n_begin, int64_t n_end) {
  CHECK((group::GroupColumns<Avx512, /*kCols=*/4>(x, m, w, y, n_begin, n_end)))
      << "MatmulGroupColumnsAvx512 takes kInt4 or kF8E4M3 weights, not " << WeightTypeName(w.type);
}

}  // namespace duet::kernels::cpu
