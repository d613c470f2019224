// Random Linear weights in a quantized checkpoint format, for --load-format
// dummy with a config.json that declares a quantization_config: the packed
// codes, scales and zero points a checkpoint of that format holds, laid out as
// group_quant.h says, at the config's shapes — so benchmarks of real model
// shapes read the bytes, and run the kernels, that the stored checkpoint would.
#ifndef DUET_WORKER_MODELS_DUMMY_QUANTIZED_H_
#define DUET_WORKER_MODELS_DUMMY_QUANTIZED_H_

#include <cstdint>
#include <deque>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/weight_quantization.h"
#include "kernels/ops.h"
#include "worker/models/model_shard.h"
#include "worker/models/weight_buffer.h"

namespace duet::worker {

// The random stream of the dummy weights: random word i of a stored tensor
// comes from state seed + (i + 1)·kDummyGamma (one splitmix64 step), so any
// block of a tensor holds exactly the values the whole tensor would.
inline constexpr uint64_t kDummyGamma = 0x9e3779b97f4a7c15ull;

// 64 random bits of the step after `state`, which advances by one.
inline uint64_t DummyBits(uint64_t& state) {
  uint64_t z = (state += kDummyGamma);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Uniform in [-range, range).
inline float DummyUniform(uint64_t& state, float range) {
  const float unit = static_cast<float>(DummyBits(state) >> 40) * 0x1p-24f;  // [0, 1)
  return (2.0f * unit - 1.0f) * range;
}

// Whether dummy weights store `name` quantized when the scheme is: the Linear
// layers of the decoder layers (names ending in "_proj.weight"), as the
// quantized checkpoints do; embeddings, the lm_head and MoE routers stay plain.
bool DummyQuantizesMatrix(std::string_view name);

// The [row_range, col_range] block of `name`'s [rows, cols] weight stored as
// `scheme` (not kPlain) says, random codes with element standard deviation
// about `std`, drawn from `seed`: AWQ and INT4 codes uniform over their 16
// values with zero points of 8 (stored ones where the scheme has them),
// FP8 values uniform over e4m3's range; scales vary by ±25 % around the one
// that gives `std`. The block lives in one buffer appended to *buffers;
// *bytes_loaded grows by its bytes. InvalidArgument naming the tensor when the
// shape or the split does not fall on whole packed words, groups or blocks.
absl::StatusOr<kernels::Weight> DummyQuantizedBlock(const WeightQuantization& scheme,
                                                    std::string_view name, uint64_t seed, float std,
                                                    int64_t rows, int64_t cols, IndexRange row_range,
                                                    IndexRange col_range,
                                                    std::deque<HugePageBuffer>* buffers,
                                                    uint64_t* bytes_loaded);

}  // namespace duet::worker

#endif  // DUET_WORKER_MODELS_DUMMY_QUANTIZED_H_
