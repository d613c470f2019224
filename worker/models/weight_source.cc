#include "worker/models/weight_source.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>

#include "absl/status/status.h"
#include "common/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/half.h"
#include "glog/logging.h"

namespace duet::worker {
namespace {

std::string ShapeString(std::span<const int64_t> shape) {
  return StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::StatusOr<kernels::WeightType> WeightTypeOf(const TensorView& tensor) {
  switch (tensor.dtype) {
    case DType::kF32: return kernels::WeightType::kF32;
    case DType::kF16: return kernels::WeightType::kF16;
    case DType::kBF16: return kernels::WeightType::kBF16;
    default:
      return absl::InvalidArgumentError(StrCat(
          "tensor ", tensor.name, ": dtype ", DTypeName(tensor.dtype),
          " is not supported for this weight (F32, F16 or BF16 expected)"));
  }
}

class CheckpointWeights final : public WeightSource {
 public:
  explicit CheckpointWeights(std::unique_ptr<SafetensorsCheckpoint> checkpoint)
      : checkpoint_(std::move(checkpoint)) {}

  absl::StatusOr<kernels::Weight> GetMatrix(std::string_view name, int64_t rows,
                                            int64_t cols) override {
    absl::StatusOr<TensorView> tensor = checkpoint_->Get(name);
    if (!tensor.ok()) return tensor.status();
    if (tensor->shape.size() != 2 || tensor->shape[0] != rows || tensor->shape[1] != cols) {
      return absl::InvalidArgumentError(StrCat(
          checkpoint_->model_dir(), ": tensor ", name, " has shape ",
          ShapeString(tensor->shape), " but the config implies [", rows, ", ", cols, "]"));
    }
    absl::StatusOr<kernels::WeightType> type = WeightTypeOf(*tensor);
    if (!type.ok()) return type.status();
    bytes_loaded_ += tensor->num_bytes;
    return kernels::Weight{.data = tensor->data, .type = *type, .rows = rows, .cols = cols};
  }

  absl::StatusOr<std::vector<float>> GetVector(std::string_view name, int64_t size) override {
    absl::StatusOr<TensorView> tensor = checkpoint_->Get(name);
    if (!tensor.ok()) return tensor.status();
    if (tensor->shape.size() != 1 || tensor->shape[0] != size) {
      return absl::InvalidArgumentError(StrCat(
          checkpoint_->model_dir(), ": tensor ", name, " has shape ",
          ShapeString(tensor->shape), " but the config implies [", size, "]"));
    }
    absl::StatusOr<kernels::WeightType> type = WeightTypeOf(*tensor);
    if (!type.ok()) return type.status();
    std::vector<float> values(size);
    for (int64_t i = 0; i < size; ++i) {
      const std::byte* element = tensor->data + i * kernels::WeightTypeSize(*type);
      uint16_t half_bits;
      switch (*type) {
        case kernels::WeightType::kF32:
          std::memcpy(&values[i], element, sizeof(float));
          break;
        case kernels::WeightType::kF16:
          std::memcpy(&half_bits, element, sizeof(half_bits));
          values[i] = F16ToFloat(half_bits);
          break;
        case kernels::WeightType::kBF16:
          std::memcpy(&half_bits, element, sizeof(half_bits));
          values[i] = Bf16ToFloat(half_bits);
          break;
      }
    }
    bytes_loaded_ += tensor->num_bytes;
    return values;
  }

  bool Contains(std::string_view name) const override {
    return checkpoint_->Find(name).has_value();
  }

  uint64_t bytes_loaded() const override { return bytes_loaded_; }

 private:
  std::unique_ptr<SafetensorsCheckpoint> checkpoint_;
  uint64_t bytes_loaded_ = 0;
};

// Memory for weights that decode streams once per token: 2 MiB aligned and
// advised to use transparent huge pages, which spares a TLB miss every 4 KiB
// of a GEMV's stream.
class HugePageBuffer {
 public:
  explicit HugePageBuffer(size_t bytes) {
    constexpr size_t kHugePageBytes = size_t{2} << 20;
    const size_t rounded = std::max(kHugePageBytes, (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes);
    data_ = std::aligned_alloc(kHugePageBytes, rounded);
    CHECK(data_ != nullptr) << "out of memory allocating " << rounded << " bytes of weights";
    madvise(data_, rounded, MADV_HUGEPAGE);  // best effort: plain pages otherwise
  }
  ~HugePageBuffer() { std::free(data_); }
  HugePageBuffer(const HugePageBuffer&) = delete;
  HugePageBuffer& operator=(const HugePageBuffer&) = delete;

  void* data() const { return data_; }

 private:
  void* data_;
};

class DummyWeights final : public WeightSource {
 public:
  // A uniform distribution on [-r, r) has standard deviation r / sqrt(3).
  DummyWeights(uint64_t seed, float std) : seed_(seed), range_(std * 1.7320508f) {}

  absl::StatusOr<kernels::Weight> GetMatrix(std::string_view name, int64_t rows,
                                            int64_t cols) override {
    uint64_t state = SeedFor(name);
    const size_t count = static_cast<size_t>(rows * cols);
    uint16_t* values = static_cast<uint16_t*>(
        buffers_.emplace_back(count * sizeof(uint16_t)).data());
    for (size_t i = 0; i < count; ++i) values[i] = FloatToBf16(NextUniform(state, range_));
    bytes_loaded_ += count * sizeof(uint16_t);
    return kernels::Weight{.data = values, .type = kernels::WeightType::kBF16,
                           .rows = rows, .cols = cols};
  }

  absl::StatusOr<std::vector<float>> GetVector(std::string_view name, int64_t size) override {
    uint64_t state = SeedFor(name);
    const float center = name.ends_with("bias") ? 0.0f : 1.0f;
    std::vector<float> values(size);
    for (float& value : values) value = center + NextUniform(state, range_);
    bytes_loaded_ += values.size() * sizeof(float);
    return values;
  }

  // Dummy weights exist for every name the model asks for except an untied
  // lm_head: the configuration decides tying.
  bool Contains(std::string_view name) const override { return name != "lm_head.weight"; }

  uint64_t bytes_loaded() const override { return bytes_loaded_; }

 private:
  // FNV-1a of the name mixed with the seed: stable across processes, so every
  // rank of one model draws the same tensors.
  uint64_t SeedFor(std::string_view name) const {
    uint64_t hash = 0xcbf29ce484222325ull;
    for (char c : name) hash = (hash ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
    return hash ^ seed_;
  }

  // Uniform in [-range, range) from a splitmix64 step: cheap enough to fill
  // billions of weights for benchmarks of real model shapes.
  static float NextUniform(uint64_t& state, float range) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    const float unit = static_cast<float>(z >> 40) * 0x1p-24f;  // [0, 1)
    return (2.0f * unit - 1.0f) * range;
  }

  uint64_t seed_;
  float range_;
  std::deque<HugePageBuffer> buffers_;  // deque: stable addresses
  uint64_t bytes_loaded_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<WeightSource>> OpenCheckpointWeights(
    const std::string& model_dir) {
  absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> checkpoint =
      SafetensorsCheckpoint::Open(model_dir);
  if (!checkpoint.ok()) return checkpoint.status();
  return std::make_unique<CheckpointWeights>(*std::move(checkpoint));
}

std::unique_ptr<WeightSource> MakeDummyWeights(uint64_t seed, float std) {
  return std::make_unique<DummyWeights>(seed, std);
}

}  // namespace duet::worker
