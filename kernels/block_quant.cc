#include "kernels/block_quant.h"

#include <glog/logging.h>

#include <cstring>

#include "common/half.h"

namespace duet::kernels {

float BlockHalfAt(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, sizeof(bits));
  return F16ToFloat(bits);
}

void ScaleMinK4(int j, const uint8_t* scales, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = scales[j] & 63;
    *min = scales[j + 4] & 63;
  } else {
    *scale = (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4);
    *min = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
  }
}

namespace {

void DequantizeQ8_0(const uint8_t* block, float* out) {
  const float d = BlockHalfAt(block);
  const int8_t* q = reinterpret_cast<const int8_t*>(block + 2);
  for (int j = 0; j < 32; ++j) out[j] = static_cast<float>(q[j]) * d;
}

void DequantizeQ4_0(const uint8_t* block, float* out) {
  const float d = BlockHalfAt(block);
  const uint8_t* qs = block + 2;
  for (int j = 0; j < 16; ++j) {
    out[j] = static_cast<float>((qs[j] & 0xF) - 8) * d;
    out[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

void DequantizeQ4_1(const uint8_t* block, float* out) {
  const float d = BlockHalfAt(block);
  const float m = BlockHalfAt(block + 2);
  const uint8_t* qs = block + 4;
  for (int j = 0; j < 16; ++j) {
    out[j] = static_cast<float>(qs[j] & 0xF) * d + m;
    out[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}

void DequantizeQ4_K(const uint8_t* block, float* out) {
  const float d = BlockHalfAt(block);
  const float dmin = BlockHalfAt(block + 2);
  const uint8_t* scales = block + 4;
  const uint8_t* qs = block + 16;
  for (int pair = 0; pair < 4; ++pair) {
    uint8_t scale, min;
    ScaleMinK4(2 * pair, scales, &scale, &min);
    const float d1 = d * scale, m1 = dmin * min;
    ScaleMinK4(2 * pair + 1, scales, &scale, &min);
    const float d2 = d * scale, m2 = dmin * min;
    const uint8_t* q = qs + 32 * pair;
    float* y = out + 64 * pair;
    for (int l = 0; l < 32; ++l) y[l] = d1 * static_cast<float>(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) y[32 + l] = d2 * static_cast<float>(q[l] >> 4) - m2;
  }
}

void DequantizeQ5_K(const uint8_t* block, float* out) {
  const float d = BlockHalfAt(block);
  const float dmin = BlockHalfAt(block + 2);
  const uint8_t* scales = block + 4;
  const uint8_t* qh = block + 16;
  const uint8_t* qs = block + 48;
  for (int pair = 0; pair < 4; ++pair) {
    uint8_t scale, min;
    ScaleMinK4(2 * pair, scales, &scale, &min);
    const float d1 = d * scale, m1 = dmin * min;
    ScaleMinK4(2 * pair + 1, scales, &scale, &min);
    const float d2 = d * scale, m2 = dmin * min;
    const uint8_t low_bit = uint8_t{1} << (2 * pair);
    const uint8_t high_bit = uint8_t{2} << (2 * pair);
    const uint8_t* q = qs + 32 * pair;
    float* y = out + 64 * pair;
    for (int l = 0; l < 32; ++l) {
      y[l] = d1 * static_cast<float>((q[l] & 0xF) + ((qh[l] & low_bit) ? 16 : 0)) - m1;
    }
    for (int l = 0; l < 32; ++l) {
      y[32 + l] = d2 * static_cast<float>((q[l] >> 4) + ((qh[l] & high_bit) ? 16 : 0)) - m2;
    }
  }
}

void DequantizeQ6_K(const uint8_t* block, float* out) {
  const uint8_t* ql = block;
  const uint8_t* qh = block + 128;
  const int8_t* scales = reinterpret_cast<const int8_t*>(block + 192);
  const float d = BlockHalfAt(block + 208);
  for (int half = 0; half < 2; ++half) {
    const uint8_t* low = ql + 64 * half;
    const uint8_t* high = qh + 32 * half;
    const int8_t* sc = scales + 8 * half;
    float* y = out + 128 * half;
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((low[l] & 0xF) | (((high[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((low[l + 32] & 0xF) | (((high[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((low[l] >> 4) | (((high[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((low[l + 32] >> 4) | (((high[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
  }
}

using BlockFn = void (*)(const uint8_t* block, float* out);

BlockFn BlockDequantizer(WeightType type) {
  switch (type) {
    case WeightType::kQ8_0: return DequantizeQ8_0;
    case WeightType::kQ4_0: return DequantizeQ4_0;
    case WeightType::kQ4_1: return DequantizeQ4_1;
    case WeightType::kQ4_K: return DequantizeQ4_K;
    case WeightType::kQ5_K: return DequantizeQ5_K;
    case WeightType::kQ6_K: return DequantizeQ6_K;
    case WeightType::kF32:
    case WeightType::kF16:
    case WeightType::kBF16:
    case WeightType::kAwqInt4:
    case WeightType::kInt4:
    case WeightType::kF8E4M3:
      return nullptr;
  }
  return nullptr;
}

}  // namespace

void DequantizeRowRange(WeightType type, const void* row, int64_t begin, int64_t end, float* out) {
  const int64_t block_elements = WeightTypeBlockElements(type);
  CHECK(begin % block_elements == 0 && end % block_elements == 0 && begin <= end)
      << WeightTypeName(type) << " range [" << begin << ", " << end << ")";
  const uint8_t* bytes = static_cast<const uint8_t*>(row);
  switch (type) {
    case WeightType::kF32:
      std::memcpy(out, bytes + begin * 4, (end - begin) * sizeof(float));
      return;
    case WeightType::kF16:
    case WeightType::kBF16:
      for (int64_t c = begin; c < end; ++c) {
        uint16_t bits;
        std::memcpy(&bits, bytes + 2 * c, sizeof(bits));
        out[c - begin] = type == WeightType::kF16 ? F16ToFloat(bits) : Bf16ToFloat(bits);
      }
      return;
    default:
      break;
  }
  const BlockFn dequantize = BlockDequantizer(type);
  const int64_t block_bytes = WeightTypeBlockBytes(type);
  for (int64_t b = begin / block_elements; b < end / block_elements; ++b) {
    dequantize(bytes + b * block_bytes, out + b * block_elements - begin);
  }
}

void DequantizeRow(WeightType type, const void* row, int64_t cols, float* out) {
  DequantizeRowRange(type, row, 0, cols, out);
}

}  // namespace duet::kernels
