// The matmul inner kernels, one per instruction set, each in its own
// translation unit compiled for that instruction set.
//
// Every kernel computes y[r, n] = Σ_k x[r, k] · w[n, k] for all rows r and the
// output columns n in [n_begin, n_end), and uses ONE accumulation order per
// output element whatever m, the column range or the tiling: an L-lane
// accumulator (L = 8 for AVX2, 16 for AVX-512, 8 emulated lanes for scalar)
// fed k in order, L elements at a time; a fixed-tree horizontal sum; then the
// k % L leftover products added one by one (fused multiply-add in the SIMD
// kernels). That is what makes Matmul batch-invariant and independent of the
// thread count. The variants differ from each other in the last bits.
#ifndef DUET_KERNELS_CPU_MATMUL_KERNELS_H_
#define DUET_KERNELS_CPU_MATMUL_KERNELS_H_

#include <cstdint>

#include "kernels/ops.h"
#include "kernels/quant_dot.h"

namespace duet::kernels::cpu {

// x: [m, w.cols]; y: [m, w.rows] (only columns [n_begin, n_end) written).
using MatmulColumnsFn = void (*)(const float* x, int64_t m, const Weight& w, float* y,
                                 int64_t n_begin, int64_t n_end);

void MatmulColumnsScalar(const float* x, int64_t m, const Weight& w, float* y, int64_t n_begin,
                         int64_t n_end);
void MatmulColumnsAvx2(const float* x, int64_t m, const Weight& w, float* y, int64_t n_begin,
                       int64_t n_end);
void MatmulColumnsAvx512(const float* x, int64_t m, const Weight& w, float* y, int64_t n_begin,
                         int64_t n_end);

// Block-quantized weights (GGUF types) dequantised block by block into L1
// (matmul_quant_tiles.h): bit for bit MatmulColumnsAvx2 / MatmulColumnsAvx512
// on the dequantised matrix, reading the weights at their stored size.
void MatmulQuantColumnsAvx2(const float* x, int64_t m, const Weight& w, float* y, int64_t n_begin,
                            int64_t n_end);
void MatmulQuantColumnsAvx512(const float* x, int64_t m, const Weight& w, float* y,
                              int64_t n_begin, int64_t n_end);

// Rows [first, first + rows) of block-quantized `w` as fp32 into out
// ([rows, w.cols]): bit for bit DequantizeRow (kernels/block_quant.h), with
// the same kernels' SIMD dequantisers.
using DequantizeRowsFn = void (*)(const Weight& w, int64_t first, int64_t rows, float* out);
void DequantizeRowsAvx2(const Weight& w, int64_t first, int64_t rows, float* out);
void DequantizeRowsAvx512(const Weight& w, int64_t first, int64_t rows, float* out);

// Group-quantized weights stored by rows (kInt4, kF8E4M3; kernels/group_quant.h)
// dequantised 64 values at a time into L1 (matmul_group_tiles.h): bit for bit
// MatmulColumnsAvx2 / MatmulColumnsAvx512 on the dequantised matrix.
void MatmulGroupColumnsAvx2(const float* x, int64_t m, const Weight& w, float* y, int64_t n_begin,
                            int64_t n_end);
void MatmulGroupColumnsAvx512(const float* x, int64_t m, const Weight& w, float* y,
                              int64_t n_begin, int64_t n_end);
// Their rows as fp32, bit for bit DequantizeGroupRows (the AVX2 one serves the
// AVX-512 backend too).
void DequantizeGroupRowsAvx2(const Weight& w, int64_t first, int64_t rows, float* out);

// AWQ-INT4 weights (stored input feature first) have their own order: y[r, n]
// is ONE fused multiply-add chain over k in order, starting from 0, of
// x[r, k] · w[n, k] with w dequantised as group_quant.h says. That is the same
// for every ISA, m, column range and thread count, so these two agree bit for
// bit (the scalar one is the definition; n_begin and n_end multiples of 8).
// The AVX-512 one runs up to 8 rows of x itself and more through the AVX2 one.
void MatmulAwqScalar(const float* x, int64_t m, const Weight& w, float* y, int64_t n_begin,
                     int64_t n_end);
void MatmulAwqAvx2(const float* x, int64_t m, const Weight& w, float* y, int64_t n_begin,
                   int64_t n_end);
void MatmulAwqAvx512(const float* x, int64_t m, const Weight& w, float* y, int64_t n_begin,
                     int64_t n_end);

// Block-quantized weights with 8-bit activations (kernels/quant_dot.h): rows
// [r_begin, r_end) of x ([out->rows, out->cols]) rounded into *out (already
// sized), and the matmul of all of x's rows for output columns
// [n_begin, n_end) of y ([x.rows, w.rows]). Bit for bit QuantizeInt8Row and
// Int8Dot; the AVX2 pair serves the AVX-512 backend too.
using QuantizeInt8RowsFn = void (*)(const float* x, int64_t r_begin, int64_t r_end, Int8Rows* out);
using MatmulInt8ColumnsFn = void (*)(const Int8Rows& x, const Weight& w, float* y, int64_t n_begin,
                                     int64_t n_end);
void QuantizeInt8RowsScalar(const float* x, int64_t r_begin, int64_t r_end, Int8Rows* out);
void MatmulInt8ColumnsScalar(const Int8Rows& x, const Weight& w, float* y, int64_t n_begin,
                             int64_t n_end);
void QuantizeInt8RowsAvx2(const float* x, int64_t r_begin, int64_t r_end, Int8Rows* out);
void MatmulInt8ColumnsAvx2(const Int8Rows& x, const Weight& w, float* y, int64_t n_begin,
                           int64_t n_end);

// 4-bit group-quantized weights (kAwqInt4, kInt4) with 8-bit activations:
// the matmul of all of x's rows (rounded by the functions above, in blocks of
// GroupInt8ActivationBlock(w)) for output columns [n_begin, n_end), bit for
// bit GroupInt8Dot (kernels/quant_dot.h). Whole tiles start at multiples of 8
// columns (8 outputs for kInt4, 64 for kAwqInt4), the rest goes output by
// output; the AVX2 one serves the AVX-512 backend too.
void MatmulGroupInt8ColumnsScalar(const Int8Rows& x, const Weight& w, float* y, int64_t n_begin,
                                  int64_t n_end);
void MatmulGroupInt8ColumnsAvx2(const Int8Rows& x, const Weight& w, float* y, int64_t n_begin,
                                int64_t n_end);

}  // namespace duet::kernels::cpu

#endif  // DUET_KERNELS_CPU_MATMUL_KERNELS_H_
