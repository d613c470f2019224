#include "kernels/quant_dot.h"

#include <glog/logging.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/block_quant.h"
#include "kernels/group_quant.h"

namespace duet::kernels {
namespace {

// The unsigned 4-bit value i (< 32) of a 32-value block whose 16 bytes hold
// values j and 16 + j in the low and high nibble of byte j.
int Nibble32(const uint8_t* qs, int i) { return i < 16 ? qs[i] & 0xF : qs[i - 16] >> 4; }

// Q4_K/Q5_K: I and M of one block (the fifth bit from qh for Q5_K).
void K4Sums(const uint8_t* block, bool fifth_bit, const int8_t* q, int32_t* dot, int32_t* mins) {
  const uint8_t* scales = block + 4;
  const uint8_t* qh = block + 16;
  const uint8_t* qs = block + (fifth_bit ? 48 : 16);
  *dot = 0;
  *mins = 0;
  for (int j = 0; j < 8; ++j) {
    uint8_t scale, min;
    ScaleMinK4(j, scales, &scale, &min);
    int32_t sub_dot = 0, sub_sum = 0;
    for (int l = 0; l < 32; ++l) {
      const uint8_t byte = qs[32 * (j / 2) + l];
      int n = j % 2 == 0 ? byte & 0xF : byte >> 4;
      if (fifth_bit) n |= ((qh[l] >> j) & 1) << 4;
      sub_dot += n * q[32 * j + l];
      sub_sum += q[32 * j + l];
    }
    *dot += scale * sub_dot;
    *mins += min * sub_sum;
  }
}

int32_t Q6KSum(const uint8_t* block, const int8_t* q) {
  const uint8_t* ql = block;
  const uint8_t* qh = block + 128;
  const int8_t* scales = reinterpret_cast<const int8_t*>(block + 192);
  int32_t dot = 0;
  for (int h = 0; h < 2; ++h) {
    for (int g = 0; g < 4; ++g) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t low_byte = ql[64 * h + l + 32 * (g & 1)];
        const int low = g >= 2 ? low_byte >> 4 : low_byte & 0xF;
        const int high = (qh[32 * h + l] >> (2 * g)) & 3;
        dot += scales[8 * h + 2 * g + l / 16] * ((low | high << 4) - 32) * q[128 * h + 32 * g + l];
      }
    }
  }
  return dot;
}

}  // namespace

// One activation block per weight block: the 32-value types' blocks, the K
// types' super-blocks.
int64_t Int8ActivationBlock(WeightType type) {
  CHECK(IsBlockQuantized(type)) << "int8 dot products take block-quantized weights, not "
                                << WeightTypeName(type);
  return WeightTypeBlockElements(type);
}

void Int8Rows::Resize(int64_t num_rows, int64_t num_cols, int64_t block_size) {
  CHECK(block_size % 16 == 0 && num_cols % block_size == 0)
      << num_cols << " columns in activation blocks of " << block_size;
  rows = num_rows;
  cols = num_cols;
  block = block_size;
  q.resize(static_cast<size_t>(rows * cols));
  scales.resize(static_cast<size_t>(rows * (cols / block)));
  sums.resize(static_cast<size_t>(rows * (cols / 16)));
}

void QuantizeInt8Row(const float* x, int64_t r, Int8Rows* out) {
  const int64_t cols = out->cols;
  const float* row = x + r * cols;
  int8_t* q = out->q.data() + r * cols;
  float* scales = out->scales.data() + r * (cols / out->block);
  for (int64_t b = 0; b < cols / out->block; ++b) {
    const float* values = row + b * out->block;
    int8_t* quants = q + b * out->block;
    float max_abs = 0;
    bool finite = true;
    for (int64_t i = 0; i < out->block; ++i) {
      finite = finite && std::isfinite(values[i]);
      max_abs = std::max(max_abs, std::fabs(values[i]));
    }
    const float inverse = 127.0f / max_abs;
    if (!finite || !std::isfinite(inverse)) {  // max_abs 0 or too small to invert
      scales[b] = finite ? 0.0f : std::numeric_limits<float>::quiet_NaN();
      std::fill_n(quants, out->block, int8_t{0});
      continue;
    }
    scales[b] = max_abs / 127.0f;
    for (int64_t i = 0; i < out->block; ++i) {
      quants[i] = static_cast<int8_t>(std::nearbyint(values[i] * inverse));
    }
  }
  int16_t* sums = out->sums.data() + r * (cols / 16);
  for (int64_t g = 0; g < cols / 16; ++g) {
    int sum = 0;
    for (int i = 0; i < 16; ++i) sum += q[16 * g + i];
    sums[g] = static_cast<int16_t>(sum);
  }
}

float Int8Dot(WeightType type, const void* w_row, const Int8Rows& x, int64_t r) {
  CHECK_EQ(x.block, Int8ActivationBlock(type)) << WeightTypeName(type);
  const auto* w = static_cast<const uint8_t*>(w_row);
  const int64_t block_elements = WeightTypeBlockElements(type);
  const int64_t block_bytes = WeightTypeBlockBytes(type);
  const int8_t* q_row = x.q_row(r);
  const float* d_x = x.scales_row(r);
  float acc = 0;
  for (int64_t b = 0; b < x.cols / block_elements; ++b) {
    const uint8_t* block = w + b * block_bytes;
    const int8_t* q = q_row + b * block_elements;
    int32_t dot = 0;
    switch (type) {
      case WeightType::kQ8_0: {
        const int8_t* values = reinterpret_cast<const int8_t*>(block + 2);
        for (int i = 0; i < 32; ++i) dot += values[i] * q[i];
        acc = std::fma(static_cast<float>(dot), BlockHalfAt(block) * d_x[b], acc);
        break;
      }
      case WeightType::kQ4_0:
        for (int i = 0; i < 32; ++i) dot += (Nibble32(block + 2, i) - 8) * q[i];
        acc = std::fma(static_cast<float>(dot), BlockHalfAt(block) * d_x[b], acc);
        break;
      case WeightType::kQ4_1: {
        int32_t sum = 0;
        for (int i = 0; i < 32; ++i) {
          dot += Nibble32(block + 4, i) * q[i];
          sum += q[i];
        }
        acc = std::fma(static_cast<float>(dot), BlockHalfAt(block) * d_x[b], acc);
        acc = std::fma(static_cast<float>(sum), BlockHalfAt(block + 2) * d_x[b], acc);
        break;
      }
      case WeightType::kQ4_K:
      case WeightType::kQ5_K: {
        int32_t mins;
        K4Sums(block, type == WeightType::kQ5_K, q, &dot, &mins);
        acc = std::fma(static_cast<float>(dot), BlockHalfAt(block) * d_x[b], acc);
        acc = std::fma(-static_cast<float>(mins), BlockHalfAt(block + 2) * d_x[b], acc);
        break;
      }
      case WeightType::kQ6_K:
        dot = Q6KSum(block, q);
        acc = std::fma(static_cast<float>(dot), BlockHalfAt(block + 208) * d_x[b], acc);
        break;
      case WeightType::kF32:
      case WeightType::kF16:
      case WeightType::kBF16:
      case WeightType::kAwqInt4:
      case WeightType::kInt4:
      case WeightType::kF8E4M3:
        LOG(FATAL) << "unreachable";
    }
  }
  return acc;
}

int64_t GroupInt8ActivationBlock(const Weight& w) {
  if (w.type != WeightType::kAwqInt4 && w.type != WeightType::kInt4) return 0;
  if (w.group_size % 128 == 0) return 128;
  return w.group_size % 64 == 0 ? 64 : 0;
}

float GroupInt8Dot(const Weight& w, int64_t row, const Int8Rows& x, int64_t r) {
  CHECK_GT(x.block, 0) << WeightTypeName(w.type) << " group " << w.group_size;
  CHECK_EQ(x.block, GroupInt8ActivationBlock(w)) << WeightTypeName(w.type) << " group " << w.group_size;
  const int8_t* q = x.q_row(r);
  const float* d_x = x.scales_row(r);
  float acc = 0;
  for (int64_t b = 0; b < x.cols / x.block; ++b) {
    int32_t dot = 0, sum = 0;
    int z = 0;
    float s = 0;
    for (int64_t i = b * x.block; i < (b + 1) * x.block; ++i) {
      int n;
      GroupInt4Parts(w, row, i, &n, &z, &s);
      dot += n * q[i];
      sum += q[i];
    }
    acc = std::fma(static_cast<float>(dot - z * sum), s * d_x[b], acc);
  }
  return acc;
}

}  // namespace duet::kernels
