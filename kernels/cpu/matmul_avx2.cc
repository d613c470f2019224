// AVX2/FMA matmul (compiled with -mavx2 -mfma -mf16c; called only when the CPU
// has them): 8-lane vectors for matmul_tiles.h, bf16/f16 converted to fp32 in
// registers. Prefill tiles are 4 activation rows × 3 weight rows (12
// accumulators of the 16 registers). Everything defined here is in an
// anonymous namespace so no code compiled for AVX2 can be picked by the
// linker for other code.
#include <immintrin.h>

#include <cstdint>

#include <glog/logging.h>

#include "kernels/cpu/matmul_group_tiles.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/cpu/matmul_quant_tiles.h"
#include "kernels/cpu/matmul_tiles.h"

namespace duet::kernels::cpu {
namespace {

struct Avx2 {
  using Vec = __m256;
  static constexpr int kLanes = 8;
  static Vec Zero() { return _mm256_setzero_ps(); }
  static Vec LoadF32(const float* p) { return _mm256_loadu_ps(p); }
  static Vec Fma(Vec a, Vec b, Vec acc) { return _mm256_fmadd_ps(a, b, acc); }
  // Lanes (0+4, 1+5, 2+6, 3+7), then (0+2, 1+3), then 0+1.
  static float HorizontalSum(Vec v) {
    __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
    sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
    return _mm_cvtss_f32(sum);
  }
  static float Fma1(float a, float b, float c) {
    return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
  }
  // matmul_quant_tiles.h's widening stores: 16 signed bytes as 2 × 8 floats.
  static void Widen(__m128i bytes, __m256* lo, __m256* hi) {
    *lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes));
    *hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(bytes, 8)));
  }
  static void StoreScaled16(__m128i bytes, float scale, float* out) {
    __m256 lo, hi;
    Widen(bytes, &lo, &hi);
    const __m256 s = _mm256_set1_ps(scale);
    _mm256_storeu_ps(out, _mm256_mul_ps(lo, s));
    _mm256_storeu_ps(out + 8, _mm256_mul_ps(hi, s));
  }
  static void StoreAffine16(__m128i bytes, float scale, float offset, float* out) {
    __m256 lo, hi;
    Widen(bytes, &lo, &hi);
    const __m256 s = _mm256_set1_ps(scale), o = _mm256_set1_ps(offset);
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_mul_ps(lo, s), o));
    _mm256_storeu_ps(out + 8, _mm256_add_ps(_mm256_mul_ps(hi, s), o));
  }
  static void StoreScaledMinus16(__m128i bytes, float scale, float offset, float* out) {
    __m256 lo, hi;
    Widen(bytes, &lo, &hi);
    const __m256 s = _mm256_set1_ps(scale), o = _mm256_set1_ps(offset);
    _mm256_storeu_ps(out, _mm256_sub_ps(_mm256_mul_ps(s, lo), o));
    _mm256_storeu_ps(out + 8, _mm256_sub_ps(_mm256_mul_ps(s, hi), o));
  }
  static void StoreScaledMinus32(__m256i bytes, float scale, float offset, float* out) {
    StoreScaledMinus16(_mm256_castsi256_si128(bytes), scale, offset, out);
    StoreScaledMinus16(_mm256_extracti128_si256(bytes, 1), scale, offset, out + 16);
  }
};

struct F32Weights {
  using Element = float;
  static __m256 Load(const float* p) { return _mm256_loadu_ps(p); }
  static float Load1(const float* p) { return *p; }
};

struct Bf16Weights {
  using Element = uint16_t;
  static __m256 Load(const uint16_t* p) {
    const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
  }
  static float Load1(const uint16_t* p) {
    return _mm_cvtss_f32(_mm_castsi128_ps(_mm_cvtsi32_si128(static_cast<int>(uint32_t{*p} << 16))));
  }
};

struct F16Weights {
  using Element = uint16_t;
  static __m256 Load(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static float Load1(const uint16_t* p) {
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(*p)));
  }
};

}  // namespace

void MatmulColumnsAvx2(const float* x, int64_t m, const Weight& w, float* y, int64_t n_begin,
                       int64_t n_end) {
  MatmulColumnsForType<Avx2, F32Weights, F16Weights, Bf16Weights, /*kPrefillCols=*/3>(
      x, m, w, y, n_begin, n_end);
}

void MatmulQuantColumnsAvx2(const float* x, int64_t m, const Weight& w, float* y,
                            int64_t n_begin, int64_t n_end) {
  CHECK((quant::QuantColumns<Avx2, /*kCols=*/2>(x, m, w, y, n_begin, n_end)))
      << "MatmulQuantColumnsAvx2 takes block-quantized weights, not " << WeightTypeName(w.type);
}

void DequantizeRowsAvx2(const Weight& w, int64_t first, int64_t rows, float* out) {
  CHECK(quant::DequantizeRows<Avx2>(w, first, rows, out))
      << "DequantizeRowsAvx2 takes block-quantized weights, not " << WeightTypeName(w.type);
}

void MatmulGroupColumnsAvx2(const float* x, int64_t m, const Weight& w, float* y,
                            int64_t n_begin, int64_t n_end) {
  CHECK((group::GroupColumns<Avx2, /*kCols=*/2>(x, m, w, y, n_begin, n_end)))
      << "MatmulGroupColumnsAvx2 takes kInt4 or kF8E4M3 weights, not " << WeightTypeName(w.type);
}

}  // namespace duet::kernels::cpu
