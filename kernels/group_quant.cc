#include "kernels/group_quant.h"

#include <glog/logging.h>

#include <cmath>
#include <cstring>

#include "common/half.h"
#include "common/str_cat.h"
#include "kernels/block_quant.h"

namespace duet::kernels {
namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

uint32_t WordAt(const void* base, int64_t index) {
  uint32_t word;
  std::memcpy(&word, static_cast<const uint8_t*>(base) + index * 4, sizeof(word));
  return word;
}

}  // namespace

float GroupScaleAt(const Weight& w, int64_t index) {
  const uint8_t* bytes = static_cast<const uint8_t*>(w.scales);
  switch (w.scale_type) {
    case WeightType::kF32: {
      float value;
      std::memcpy(&value, bytes + index * 4, sizeof(value));
      return value;
    }
    case WeightType::kF16:
      return BlockHalfAt(bytes + index * 2);
    case WeightType::kBF16: {
      uint16_t bits;
      std::memcpy(&bits, bytes + index * 2, sizeof(bits));
      return Bf16ToFloat(bits);
    }
    default:
      LOG(FATAL) << "scale type " << WeightTypeName(w.scale_type);
  }
  return 0;
}

namespace {

float ScaleAt(const Weight& w, int64_t index) { return GroupScaleAt(w, index); }

int ScaleTypeBytes(WeightType type) { return type == WeightType::kF32 ? 4 : 2; }

}  // namespace

void GroupInt4Parts(const Weight& w, int64_t row, int64_t col, int* q, int* z, float* s) {
  const int64_t group = col / w.group_size;
  if (w.type == WeightType::kAwqInt4) {
    const int shift = 4 * kAwqNibble[row % 8];
    *q = (WordAt(w.data, col * (w.rows / 8) + row / 8) >> shift) & 15;
    *z = (WordAt(w.zeros, group * (w.rows / 8) + row / 8) >> shift) & 15;
    *s = ScaleAt(w, group * w.rows + row);
    return;
  }
  const int64_t groups = w.cols / w.group_size;
  *q = (WordAt(w.data, row * (w.cols / 8) + col / 8) >> (4 * (col % 8))) & 15;
  *z = w.zeros == nullptr ? 8 : (WordAt(w.zeros, (row / 8) * groups + group) >> (4 * (row % 8))) & 15;
  *s = ScaleAt(w, row * groups + group);
}

std::string GroupQuantProblem(const Weight& w) {
  const std::string shape = StrCat("[", w.rows, ", ", w.cols, "]");
  if (!IsGroupQuantized(w.type)) return StrCat(WeightTypeName(w.type), " is not group-quantized");
  if (w.rows <= 0 || w.cols <= 0) return StrCat("empty ", WeightTypeName(w.type), " matrix ", shape);
  if (w.data == nullptr || w.scales == nullptr) return "missing data or scales";
  if (w.scale_type != WeightType::kF32 && w.scale_type != WeightType::kF16 &&
      w.scale_type != WeightType::kBF16) {
    return StrCat("scales of type ", WeightTypeName(w.scale_type), " (F32, F16 or BF16 expected)");
  }
  if (w.group_size <= 0 || w.scale_rows <= 0) {
    return StrCat("group size ", w.group_size, " and scale rows ", w.scale_rows, " must be positive");
  }
  if (w.type == WeightType::kF8E4M3) {
    if (w.zeros != nullptr) return "F8_E4M3 weights have no zero points";
    return "";
  }
  if (w.scale_rows != 1) return StrCat("4-bit weights have one scale per row, not per ", w.scale_rows);
  if (w.cols % w.group_size != 0) {
    return StrCat(shape, " matrix: ", w.cols, " input features are not whole groups of ", w.group_size);
  }
  if (w.type == WeightType::kAwqInt4) {
    if (w.rows % 8 != 0) return StrCat(shape, " matrix: ", w.rows, " output features do not pack by 8");
    if (w.zeros == nullptr) return "AWQ weights need zero points";
    if (w.scale_type != WeightType::kF16) return "AWQ scales must be F16";
    return "";
  }
  if (w.cols % 8 != 0) return StrCat(shape, " matrix: ", w.cols, " input features do not pack by 8");
  if (w.group_size % 8 != 0) return StrCat("group size ", w.group_size, " is not a multiple of 8");
  if (w.zeros != nullptr && w.rows % 8 != 0) {
    return StrCat(shape, " matrix: ", w.rows, " output features do not pack zero points by 8");
  }
  return "";
}

int64_t GroupQuantDataBytes(const Weight& w) {
  return w.type == WeightType::kF8E4M3 ? w.rows * w.cols : w.rows * w.cols / 2;
}

int64_t GroupQuantScaleBytes(const Weight& w) {
  return CeilDiv(w.rows, w.scale_rows) * CeilDiv(w.cols, w.group_size) * ScaleTypeBytes(w.scale_type);
}

int64_t GroupQuantZeroBytes(const Weight& w) {
  return w.zeros == nullptr ? 0 : w.rows * (w.cols / w.group_size) / 2;
}

float GroupQuantElement(const Weight& w, int64_t row, int64_t col) {
  if (w.type == WeightType::kF8E4M3) {
    const uint8_t bits = static_cast<const uint8_t*>(w.data)[row * w.cols + col];
    const float scale = ScaleAt(w, (row / w.scale_rows) * CeilDiv(w.cols, w.group_size) + col / w.group_size);
    return F8E4M3ToFloat(bits) * scale;
  }
  int q, z;
  float s;
  GroupInt4Parts(w, row, col, &q, &z, &s);
  return std::fma(static_cast<float>(q), s, -(static_cast<float>(z) * s));
}

void DequantizeGroupRows(const Weight& w, int64_t first, int64_t count, float* out) {
  for (int64_t r = 0; r < count; ++r) {
    for (int64_t c = 0; c < w.cols; ++c) out[r * w.cols + c] = GroupQuantElement(w, first + r, c);
  }
}

void DequantizeWeightRows(const Weight& w, int64_t first, int64_t count, float* out) {
  if (IsGroupQuantized(w.type)) return DequantizeGroupRows(w, first, count, out);
  const int64_t row_bytes = WeightRowBytes(w.type, w.cols);
  const uint8_t* bytes = static_cast<const uint8_t*>(w.data) + first * row_bytes;
  for (int64_t r = 0; r < count; ++r) DequantizeRow(w.type, bytes + r * row_bytes, w.cols, out + r * w.cols);
}

}  // namespace duet::kernels
