// GGUF's block-quantized weight layouts and their dequantisation to fp32.
// Each block is a packed little-endian struct, exactly as llama.cpp's ggml
// stores it; `d`, `dmin`, `m` are fp16 scalars:
//
//   Q8_0 (34 bytes, 32 values):  d; int8 q[32].                x = d·q
//   Q4_0 (18 bytes, 32 values):  d; uint8 qs[16].              value j < 16 is
//        the low nibble of qs[j], value 16 + j its high nibble; x = d·(q − 8)
//   Q4_1 (20 bytes, 32 values):  d, m; uint8 qs[16] as Q4_0;   x = d·q + m
//   Q4_K (144 bytes, 256 values): d, dmin; uint8 scales[12]; uint8 qs[128].
//        8 sub-blocks of 32 with a 6-bit scale s and min n each, packed in
//        `scales` (sub-block j < 4: s = scales[j] & 63, n = scales[j+4] & 63;
//        j ≥ 4: s = (scales[j+4] & 15) | (scales[j−4] >> 6) << 4,
//        n = (scales[j+4] >> 4) | (scales[j] >> 6) << 4). Sub-blocks 2i and
//        2i+1 are the low and high nibbles of qs[32i .. 32i+31];
//        x = (d·s)·q − dmin·n
//   Q5_K (176 bytes, 256 values): d, dmin; scales[12]; uint8 qh[32]; qs[128].
//        As Q4_K, plus bit 16 taken from qh: value l of sub-block j has
//        bit j of qh[l] as its fifth (high) bit
//   Q6_K (210 bytes, 256 values): uint8 ql[128]; uint8 qh[64]; int8
//        scales[16]; d. Two halves of 128 values; in half h, value
//        32·g + l (g < 4, l < 32) has low 4 bits from ql[64h + l + 32·(g & 1)]
//        (the high nibble when g ≥ 2), high 2 bits (qh[32h + l] >> 2g) & 3,
//        scale scales[8h + 2g + l / 16]; x = d·scale·(q − 32)
//
// The arithmetic is fp32 in the order written above, so the results equal
// ggml's dequantize_row_* (and gguf-py's numpy dequantize) bit for bit.
#ifndef DUET_KERNELS_BLOCK_QUANT_H_
#define DUET_KERNELS_BLOCK_QUANT_H_

#include <cstdint>

#include "kernels/ops.h"

namespace duet::kernels {

// out[0, cols) = the fp32 values of one row of `cols` elements stored as
// `type` at `row` (WeightRowBytes(type, cols) bytes, no alignment needed).
// Works for the float types too. cols must be a multiple of the block size.
void DequantizeRow(WeightType type, const void* row, int64_t cols, float* out);

// Elements [begin, end) of that row only; begin and end must be multiples of
// the block size.
void DequantizeRowRange(WeightType type, const void* row, int64_t begin, int64_t end, float* out);

// Layout helpers shared with kernels/quant_dot.cc: the fp16 value at p (no
// alignment needed), and the 6-bit scale and min of sub-block j (< 8) of a
// Q4_K/Q5_K block's 12 `scales` bytes.
float BlockHalfAt(const uint8_t* p);
void ScaleMinK4(int j, const uint8_t* scales, uint8_t* scale, uint8_t* min);

}  // namespace duet::kernels

#endif  // DUET_KERNELS_BLOCK_QUANT_H_
