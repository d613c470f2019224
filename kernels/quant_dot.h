// Block-quantized matmul with 8-bit activations: the way llama.cpp multiplies
// GGUF weights, and the CPU backend's default for them (QuantizedMatmul::kInt8
// in ops.h). Each row of activations is rounded to int8 per activation block
// with one fp32 scale, the products with the weights' integer values are summed
// exactly in integers per weight block, and only then scaled in fp32. That
// reads 4.5-8.5 bits per weight and needs a fraction of the fp32 path's
// arithmetic; the price is the activations' 8-bit rounding (relative error
// about 1/254 of each block's largest value).
//
// This file is the definition, in plain scalar code; the SIMD kernels
// (kernels/cpu/matmul_int8_avx2.cc) give the same results bit for bit.
//
// Activations, per activation block of B values (B = Int8ActivationBlock):
//   a = max |x|;  d_x = a / 127;  q = round-half-even(x · (127 / a)), in [-127, 127]
// (q = 0 and d_x = 0 where a = 0 or 127 / a overflows; d_x = NaN, q = 0 where
// the block holds a NaN or infinity, so the results are NaN as in the fp32
// path); plus the sum of every 16 consecutive q.
//
// Weights, per block b of a row (block_quant.h's layouts; n = the stored
// unsigned quant value, s/mn the sub-block scale/min, d/dmin/m the fp16 ones):
//   Q8_0 (B = 32):  I = Σ w·q                       (w the signed int8 values)
//   Q4_0 (B = 32):  I = Σ (n − 8)·q
//   Q4_1 (B = 32):  I = Σ n·q;   S = Σ q
//   Q4_K, Q5_K (B = 256): I = Σ_j s_j·Σ_{i∈j} n_i·q_i;   M = Σ_j mn_j·Σ_{i∈j} q_i
//   Q6_K (B = 256): I = Σ_j s_j·Σ_{i∈j} (n_i − 32)·q_i  (16 sub-blocks of 16)
// all exact in int32. Then, from acc = 0, block after block in order (fma:
// one rounding):
//   acc = fma(float(I), d·d_x, acc)
//   Q4_1:         acc = fma(float(S), m·d_x, acc)
//   Q4_K, Q5_K:   acc = fma(−float(M), dmin·d_x, acc)
// The result for a row depends on that row alone: batch-invariant.
//
// The 4-bit group-quantized types kAwqInt4 and kInt4 (group_quant.h), whose
// group size g is a multiple of 64, take activation blocks of B = 128 where
// g is a multiple of 128, else 64 (GroupInt8ActivationBlock). For output
// feature o, with n the stored value (0..15), z the stored zero point of o's
// group that holds activation block b and s its fp32 scale:
//   J = Σ n·q − z·Σ q                              (exact in int32)
//   acc = fma(float(J), s·d_x, acc)                block after block in order
// from acc = 0: y = acc.
#ifndef DUET_KERNELS_QUANT_DOT_H_
#define DUET_KERNELS_QUANT_DOT_H_

#include <cstdint>
#include <vector>

#include "kernels/ops.h"

namespace duet::kernels {

// The activation block for int8 dot products with `type` (a block-quantized
// type): 32 for Q8_0, Q4_0 and Q4_1, 256 for the K types.
int64_t Int8ActivationBlock(WeightType type);

// The activation block of 4-bit group-quantized `w` as above, or 0 where its
// type or group size has no int8 dot product (then the fp32 path serves it).
int64_t GroupInt8ActivationBlock(const Weight& w);

// Rows of activations rounded to int8, as above.
struct Int8Rows {
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t block = 0;             // the activation block B
  std::vector<int8_t> q;         // [rows, cols]
  std::vector<float> scales;     // [rows, cols / block]: d_x
  std::vector<int16_t> sums;     // [rows, cols / 16]: sums of 16 consecutive q

  // Sizes the buffers (reusing their memory) for rows × cols; cols must be a
  // multiple of block.
  void Resize(int64_t num_rows, int64_t num_cols, int64_t block_size);
  const int8_t* q_row(int64_t r) const { return q.data() + r * cols; }
  const float* scales_row(int64_t r) const { return scales.data() + r * (cols / block); }
  const int16_t* sums_row(int64_t r) const { return sums.data() + r * (cols / 16); }
};

// Rounds row r of x ([out->rows, out->cols] fp32) into *out (already sized).
void QuantizeInt8Row(const float* x, int64_t r, Int8Rows* out);

// The int8 dot product of one weight row (`type`, x.cols elements at w_row)
// with activation row r of x; x.block must be Int8ActivationBlock(type).
float Int8Dot(WeightType type, const void* w_row, const Int8Rows& x, int64_t r);

// The int8 dot product of output feature `row` of 4-bit group-quantized `w`
// with activation row r of x; x.block must be GroupInt8ActivationBlock(w).
float GroupInt8Dot(const Weight& w, int64_t row, const Int8Rows& x, int64_t r);

}  // namespace duet::kernels

#endif  // DUET_KERNELS_QUANT_DOT_H_
