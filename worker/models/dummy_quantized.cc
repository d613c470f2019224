#include "worker/models/dummy_quantized.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "common/half.h"
#include "common/str_cat.h"
#include "kernels/group_quant.h"

namespace duet::worker {
namespace {

using kernels::Weight;
using kernels::WeightType;

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t Align64(int64_t bytes) { return (bytes + 63) / 64 * 64; }

// Seeds of a module's other stored tensors, from the weight's own.
constexpr uint64_t kScaleStream = 0x2545f4914f6cdd1dull;
// Zero points of 8 in every nibble: codes centred as symmetric ones are.
constexpr uint32_t kZeroWord = 0x88888888u;

// Standard deviation of q − 8 for q uniform over 0..15, and of a value
// uniform over e4m3's [−448, 448).
constexpr float kInt4Deviation = 4.6098f;   // sqrt(255 / 12)
constexpr float kFp8Deviation = 258.6540f;  // 448 / sqrt(3)

// Whether [range) splits `size` on multiples of `unit` (the end may be the whole size).
bool Splits(IndexRange range, int64_t size, int64_t unit) {
  return range.begin % unit == 0 && (range.count % unit == 0 || range.end() == size);
}

// One buffer holding the block's data, scales and zero points, 64-byte aligned each.
struct BlockMemory {
  std::byte* data;
  std::byte* scales;
  std::byte* zeros;
};

BlockMemory Allocate(int64_t data_bytes, int64_t scale_bytes, int64_t zero_bytes,
                     std::deque<HugePageBuffer>* buffers, uint64_t* bytes_loaded) {
  const int64_t total = Align64(data_bytes) + Align64(scale_bytes) + zero_bytes;
  std::byte* base = static_cast<std::byte*>(
      buffers->emplace_back(static_cast<size_t>(std::max<int64_t>(1, total))).data());
  *bytes_loaded += static_cast<uint64_t>(data_bytes + scale_bytes + zero_bytes);
  return {.data = base, .scales = base + Align64(data_bytes),
          .zeros = base + Align64(data_bytes) + Align64(scale_bytes)};
}

// A scale near `base`: ±25 %.
float ScaleNear(uint64_t& state, float base) { return base * (1.0f + DummyUniform(state, 0.25f)); }

// `count` random 32-bit words starting at word `first` of the stream `seed`.
void FillWords(uint64_t seed, int64_t first, int64_t count, uint32_t* out) {
  uint64_t state = seed + static_cast<uint64_t>(first) * kDummyGamma;
  for (int64_t i = 0; i < count; ++i) out[i] = static_cast<uint32_t>(DummyBits(state));
}

void FillZeroWords(int64_t count, std::byte* out) {
  for (int64_t i = 0; i < count; ++i) std::memcpy(out + 4 * i, &kZeroWord, 4);
}

Weight Awq(const WeightQuantization& scheme, uint64_t seed, float std, int64_t rows, int64_t cols,
           IndexRange rr, IndexRange cr, std::deque<HugePageBuffer>* buffers, uint64_t* bytes_loaded) {
  const int64_t g = scheme.group_size;
  const int64_t words = rr.count / 8, groups = cr.count / g;
  const BlockMemory m = Allocate(cr.count * words * 4, groups * rr.count * 2, groups * words * 4,
                                 buffers, bytes_loaded);
  uint32_t* data = reinterpret_cast<uint32_t*>(m.data);
  for (int64_t c = 0; c < cr.count; ++c) {
    FillWords(seed, (cr.begin + c) * (rows / 8) + rr.begin / 8, words, data + c * words);
  }
  const float base = std / kInt4Deviation;
  uint16_t* scales = reinterpret_cast<uint16_t*>(m.scales);
  for (int64_t k = 0; k < groups; ++k) {
    uint64_t state = (seed ^ kScaleStream) + static_cast<uint64_t>((cr.begin / g + k) * rows + rr.begin) * kDummyGamma;
    for (int64_t r = 0; r < rr.count; ++r) scales[k * rr.count + r] = FloatToF16(ScaleNear(state, base));
  }
  FillZeroWords(groups * words, m.zeros);
  return Weight{.data = m.data, .type = WeightType::kAwqInt4, .rows = rr.count, .cols = cr.count,
                .scales = m.scales, .scale_type = WeightType::kF16, .zeros = m.zeros, .group_size = g};
}

Weight Int4(const WeightQuantization& scheme, uint64_t seed, float std, int64_t rows, int64_t cols,
            IndexRange rr, IndexRange cr, std::deque<HugePageBuffer>* buffers, uint64_t* bytes_loaded) {
  const bool per_row = scheme.group_size == 0;
  const int64_t g = per_row ? cols : scheme.group_size;
  const int64_t groups = cols / g;
  const int64_t group_begin = per_row ? 0 : cr.begin / g;
  const int64_t shard_groups = per_row ? 1 : cr.count / g;
  const int64_t words = cr.count / 8;
  const int64_t zero_words = scheme.zero_points ? CeilDiv(rr.count, 8) * shard_groups : 0;
  const BlockMemory m = Allocate(rr.count * words * 4, rr.count * shard_groups * 2, zero_words * 4,
                                 buffers, bytes_loaded);
  uint32_t* data = reinterpret_cast<uint32_t*>(m.data);
  for (int64_t r = 0; r < rr.count; ++r) {
    FillWords(seed, (rr.begin + r) * (cols / 8) + cr.begin / 8, words, data + r * words);
  }
  const float base = std / kInt4Deviation;
  uint16_t* scales = reinterpret_cast<uint16_t*>(m.scales);
  for (int64_t r = 0; r < rr.count; ++r) {
    uint64_t state = (seed ^ kScaleStream) + static_cast<uint64_t>((rr.begin + r) * groups + group_begin) * kDummyGamma;
    for (int64_t k = 0; k < shard_groups; ++k) scales[r * shard_groups + k] = FloatToBf16(ScaleNear(state, base));
  }
  FillZeroWords(zero_words, m.zeros);
  return Weight{.data = m.data, .type = WeightType::kInt4, .rows = rr.count, .cols = cr.count,
                .scales = m.scales, .scale_type = WeightType::kBF16,
                .zeros = scheme.zero_points ? m.zeros : nullptr, .group_size = per_row ? cr.count : g};
}

Weight Fp8(const WeightQuantization& scheme, uint64_t seed, float std, int64_t rows, int64_t cols,
           IndexRange rr, IndexRange cr, std::deque<HugePageBuffer>* buffers, uint64_t* bytes_loaded) {
  int64_t scale_rows = rr.count, group_size = cr.count;  // kTensor
  int64_t scale_count = 1, first_scale = 0, scale_cols = 1;
  if (scheme.fp8_scales == Fp8Scales::kChannel) {
    scale_rows = 1;
    scale_count = rr.count;
    first_scale = rr.begin;
  } else if (scheme.fp8_scales == Fp8Scales::kBlock) {
    scale_rows = scheme.block_rows;
    group_size = scheme.block_cols;
    scale_cols = CeilDiv(cr.count, group_size);
    scale_count = CeilDiv(rr.count, scale_rows) * scale_cols;
  }
  const BlockMemory m = Allocate(rr.count * cr.count, scale_count * 4, 0, buffers, bytes_loaded);
  // Four e4m3 values per random word: 16 bits each, uniform over [−448, 448).
  uint8_t* data = reinterpret_cast<uint8_t*>(m.data);
  for (int64_t r = 0; r < rr.count; ++r) {
    const int64_t first = (rr.begin + r) * cols + cr.begin;
    uint64_t state = seed + static_cast<uint64_t>(first / 4) * kDummyGamma;
    uint64_t bits = DummyBits(state);
    for (int64_t c = 0; c < cr.count; ++c) {
      const int64_t i = first + c;
      if (c > 0 && i % 4 == 0) bits = DummyBits(state);
      const float unit = static_cast<float>((bits >> (16 * (i % 4))) & 0xffffu) * 0x1p-16f;
      data[r * cr.count + c] = FloatToF8E4M3((2.0f * unit - 1.0f) * 448.0f);
    }
  }
  const float base = std / kFp8Deviation;
  float* scales = reinterpret_cast<float*>(m.scales);
  if (scheme.fp8_scales == Fp8Scales::kBlock) {
    const int64_t whole_cols = CeilDiv(cols, group_size);
    for (int64_t i = 0; i < scale_count / scale_cols; ++i) {
      uint64_t state = (seed ^ kScaleStream) +
                       static_cast<uint64_t>((rr.begin / scale_rows + i) * whole_cols + cr.begin / group_size) * kDummyGamma;
      for (int64_t k = 0; k < scale_cols; ++k) scales[i * scale_cols + k] = ScaleNear(state, base);
    }
  } else {
    uint64_t state = (seed ^ kScaleStream) + static_cast<uint64_t>(first_scale) * kDummyGamma;
    for (int64_t i = 0; i < scale_count; ++i) scales[i] = ScaleNear(state, base);
  }
  return Weight{.data = m.data, .type = WeightType::kF8E4M3, .rows = rr.count, .cols = cr.count,
                .scales = m.scales, .scale_type = WeightType::kF32, .group_size = group_size,
                .scale_rows = scale_rows};
}

}  // namespace

bool DummyQuantizesMatrix(std::string_view name) {
  return name.starts_with("model.layers.") && name.ends_with("_proj.weight");
}

absl::StatusOr<Weight> DummyQuantizedBlock(const WeightQuantization& scheme, std::string_view name,
                                           uint64_t seed, float std, int64_t rows, int64_t cols,
                                           IndexRange rr, IndexRange cr,
                                           std::deque<HugePageBuffer>* buffers,
                                           uint64_t* bytes_loaded) {
  // The units the format packs and scales by: rows × cols.
  int64_t unit_rows = 1, unit_cols = 1;
  std::string units;
  switch (scheme.format) {
    case WeightFormat::kAwq:
      unit_rows = 8;
      unit_cols = scheme.group_size;
      units = StrCat("8-output words and groups of ", unit_cols, " inputs");
      break;
    case WeightFormat::kInt4:
      unit_rows = scheme.zero_points ? 8 : 1;
      unit_cols = scheme.group_size == 0 ? 8 : scheme.group_size;
      units = StrCat(scheme.zero_points ? "8-row zero-point words and " : "",
                     scheme.group_size == 0 ? "8-input words" : StrCat("groups of ", unit_cols, " inputs"));
      break;
    case WeightFormat::kFp8:
      if (scheme.fp8_scales == Fp8Scales::kBlock) {
        unit_rows = scheme.block_rows;
        unit_cols = scheme.block_cols;
        units = StrCat(unit_rows, "x", unit_cols, " scale blocks");
      }
      break;
    case WeightFormat::kPlain:
      return absl::InternalError("DummyQuantizedBlock takes a quantized format");
  }
  bool whole_shape = true;  // FP8 has no packing
  if (scheme.format == WeightFormat::kAwq) whole_shape = rows % 8 == 0 && cols % unit_cols == 0;
  if (scheme.format == WeightFormat::kInt4) whole_shape = cols % 8 == 0 && cols % unit_cols == 0;
  if (!whole_shape) {
    return absl::InvalidArgumentError(StrCat("tensor ", name, ": a [", rows, ", ", cols, "] ",
                                             WeightFormatName(scheme.format), " weight is not whole ", units));
  }
  // AWQ shards rows on whole words even at the end (rows % 8 == 0 above).
  const bool whole_split = scheme.format == WeightFormat::kAwq
                               ? rr.begin % 8 == 0 && rr.count % 8 == 0 && cr.begin % unit_cols == 0 &&
                                     cr.count % unit_cols == 0
                               : Splits(rr, rows, unit_rows) && Splits(cr, cols, unit_cols);
  if (!whole_split) {
    return absl::InvalidArgumentError(StrCat(
        "tensor ", name, ": the shard rows [", rr.begin, ", ", rr.end(), ") cols [", cr.begin, ", ",
        cr.end(), ") of a [", rows, ", ", cols, "] ", WeightFormatName(scheme.format),
        " weight do not fall on its ", units));
  }
  Weight w;
  switch (scheme.format) {
    case WeightFormat::kAwq: w = Awq(scheme, seed, std, rows, cols, rr, cr, buffers, bytes_loaded); break;
    case WeightFormat::kInt4: w = Int4(scheme, seed, std, rows, cols, rr, cr, buffers, bytes_loaded); break;
    default: w = Fp8(scheme, seed, std, rows, cols, rr, cr, buffers, bytes_loaded); break;
  }
  if (const std::string problem = kernels::GroupQuantProblem(w); !problem.empty()) {
    return absl::InvalidArgumentError(StrCat("tensor ", name, ": ", problem));
  }
  return w;
}

}  // namespace duet::worker
