// The group-quantized weight formats of Hugging Face checkpoints, used exactly
// as stored (the same bytes a GPU kernel reads), and their plain dequantisation
// to fp32. A Weight of one of these types describes the [rows, cols] matrix of
// a Linear layer (rows = output features, cols = input features); `g` below is
// Weight::group_size, `s` a scale, `z` a zero point.
//
// kAwqInt4 — AutoAWQ's "gemm" packing (quant_method "awq", version "gemm"),
// stored transposed, input features first:
//   data   int32 [cols, rows / 8]. Word (c, j) holds w[8j + o, c] for o < 8 in
//          bits 4·p(o) .. 4·p(o) + 3, p = kAwqNibble = (0, 4, 1, 5, 2, 6, 3, 7)
//          (AWQ packs outputs 0, 2, 4, 6, 1, 3, 5, 7 into nibbles 0..7).
//   zeros  int32 [cols / g, rows / 8], packed like data (one z per group and row).
//   scales [cols / g, rows], fp16.
//   w[r, c] = (q − z)·s with the z and s of row r, group c / g.
// kInt4 — compressed-tensors "pack-quantized" 4-bit integers (W4A16):
//   data   int32 [rows, cols / 8]. Value c of row r is in bits 4·(c % 8) of
//          word (r, c / 8), stored as q + 8 for the signed q in [−8, 8).
//   scales [rows, cols / g] (fp16, bf16 or fp32); g = cols: one per row.
//   zeros  int32 [rows / 8, cols / g], or null when symmetric: the zero point
//          of row r, group k is in bits 4·(r % 8) of word (r / 8, k), stored
//          + 8 like the values. Symmetric means a stored zero point of 8.
//   w[r, c] = (stored q − stored z)·s.
// kF8E4M3 — float8_e4m3fn (compressed-tensors "float-quantized", or
// quant_method "fp8" with a weight_block_size):
//   data   uint8 [rows, cols], e4m3fn bit patterns.
//   scales [ceil(rows / scale_rows), ceil(cols / g)] (fp32, bf16 or fp16), one per block of
//          scale_rows × g: per tensor scale_rows = rows and g = cols, per
//          channel scale_rows = 1 and g = cols, 128×128 blocks as Qwen3's FP8
//          checkpoints (edge blocks may be partial).
//   w[r, c] = e4m3(q)·s, one fp32 product.
//
// The 4-bit types are dequantised as fma(q, s, −(z·s)) in fp32, which is
// exactly (q − z)·s for fp16 and bf16 scales (every product involved is
// exact) and the same single rounding everywhere for fp32 scales.
#ifndef DUET_KERNELS_GROUP_QUANT_H_
#define DUET_KERNELS_GROUP_QUANT_H_

#include <cstdint>
#include <string>

#include "kernels/ops.h"

namespace duet::kernels {

// kAwqInt4: the nibble of its word that output o % 8 occupies.
inline constexpr int kAwqNibble[8] = {0, 4, 1, 5, 2, 6, 3, 7};

// Why `w` (of a group-quantized type) is not a valid matrix of its type —
// shapes that do not divide, a missing tensor, a scale type the format does
// not have — or empty when it is.
std::string GroupQuantProblem(const Weight& w);

// Bytes of each stored tensor of a valid group-quantized `w`.
int64_t GroupQuantDataBytes(const Weight& w);
int64_t GroupQuantScaleBytes(const Weight& w);
int64_t GroupQuantZeroBytes(const Weight& w);  // 0 without zero points

// Scale `index` of `w`'s scales tensor (in its stored order) as fp32.
float GroupScaleAt(const Weight& w, int64_t index);

// The stored 4-bit value q and zero point z (both 0..15; kInt4's symmetric
// zero point is 8) and the fp32 scale s of element (row, col) of a valid
// kAwqInt4 or kInt4 `w`: the element is (q − z)·s.
void GroupInt4Parts(const Weight& w, int64_t row, int64_t col, int* q, int* z, float* s);

// The fp32 value of element (row, col) of a valid group-quantized `w`.
float GroupQuantElement(const Weight& w, int64_t row, int64_t col);

// Rows [first, first + count) of a valid group-quantized `w` as fp32 into out
// ([count, w.cols]), element by element as GroupQuantElement.
void DequantizeGroupRows(const Weight& w, int64_t first, int64_t count, float* out);

// The same for any weight type (block_quant.h's DequantizeRow for the row types).
void DequantizeWeightRows(const Weight& w, int64_t first, int64_t count, float* out);

}  // namespace duet::kernels

#endif  // DUET_KERNELS_GROUP_QUANT_H_
