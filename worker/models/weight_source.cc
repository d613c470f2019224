#include "worker/models/weight_source.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <optional>

#include "absl/status/status.h"
#include "common/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/gguf_model_config.h"
#include "common/half.h"
#include "common/model_config.h"
#include "common/weight_quantization.h"
#include "kernels/block_quant.h"
#include "glog/logging.h"
#include "worker/models/dummy_quantized.h"
#include "worker/models/gguf_weights.h"
#include "worker/models/quantized_checkpoint.h"
#include "worker/models/weight_buffer.h"

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

// Whether `part` lies inside [0, size).
bool InBounds(IndexRange part, int64_t size) {
  return part.begin >= 0 && part.count >= 0 && part.end() <= size;
}

absl::Status BlockError(std::string_view name, int64_t rows, int64_t cols, IndexRange row_range,
                        IndexRange col_range) {
  return absl::InvalidArgumentError(StrCat("tensor ", name, ": block rows [", row_range.begin, ", ",
                                           row_range.end(), ") cols [", col_range.begin, ", ",
                                           col_range.end(), ") is outside [", rows, ", ", cols, "]"));
}

// The module of a Linear weight's name ("x.q_proj" of "x.q_proj.weight"), or
// nullopt for other names.
std::optional<std::string_view> LinearModule(std::string_view name) {
  constexpr std::string_view kSuffix = ".weight";
  if (!name.ends_with(kSuffix)) return std::nullopt;
  return name.substr(0, name.size() - kSuffix.size());
}

class CheckpointWeights final : public WeightSource {
 public:
  CheckpointWeights(std::unique_ptr<SafetensorsCheckpoint> checkpoint, WeightQuantization scheme)
      : checkpoint_(std::move(checkpoint)), scheme_(std::move(scheme)) {}

  absl::StatusOr<kernels::Weight> GetMatrixBlock(std::string_view name, int64_t rows, int64_t cols,
                                                 IndexRange row_range,
                                                 IndexRange col_range) override {
    if (!InBounds(row_range, rows) || !InBounds(col_range, cols)) {
      return BlockError(name, rows, cols, row_range, col_range);
    }
    if (const std::optional<std::string_view> module = LinearModule(name);
        module.has_value() && StoredWeightFormat(*checkpoint_, *module) != WeightFormat::kPlain) {
      return LoadQuantizedBlock(*checkpoint_, scheme_, *module, rows, cols, row_range, col_range,
                                &buffers_, &bytes_loaded_);
    }
    absl::StatusOr<TensorView> tensor = checkpoint_->Get(name);
    if (!tensor.ok()) return tensor.status();
    if (tensor->shape.size() != 2 || tensor->shape[0] != rows || tensor->shape[1] != cols) {
      return absl::InvalidArgumentError(StrCat(
          checkpoint_->model_dir(), ": tensor ", name, " has shape ",
          ShapeString(tensor->shape), " but the config implies [", rows, ", ", cols, "]"));
    }
    absl::StatusOr<kernels::WeightType> type = WeightTypeOf(*tensor);
    if (!type.ok()) return type.status();
    const int64_t element_bytes = kernels::WeightTypeSize(*type);
    const std::byte* first_row = tensor->data + row_range.begin * cols * element_bytes;
    const void* data = first_row;
    if (col_range.count != cols) {
      // Row-parallel shard: gather the column range of every row.
      const int64_t row_bytes = col_range.count * element_bytes;
      std::byte* copy = static_cast<std::byte*>(
          buffers_.emplace_back(std::max<int64_t>(1, row_range.count * row_bytes)).data());
      for (int64_t r = 0; r < row_range.count; ++r) {
        std::memcpy(copy + r * row_bytes,
                    first_row + (r * cols + col_range.begin) * element_bytes, row_bytes);
      }
      data = copy;
    }
    bytes_loaded_ += row_range.count * col_range.count * element_bytes;
    return kernels::Weight{.data = data, .type = *type, .rows = row_range.count,
                           .cols = col_range.count};
  }

  absl::StatusOr<std::vector<float>> GetVectorRange(std::string_view name, int64_t size,
                                                    IndexRange range) override {
    if (!InBounds(range, size)) return BlockError(name, 1, size, {0, 1}, range);
    absl::StatusOr<TensorView> tensor = checkpoint_->Get(name);
    if (!tensor.ok()) return tensor.status();
    if (tensor->shape.size() != 1 || tensor->shape[0] != size) {
      return absl::InvalidArgumentError(StrCat(
          checkpoint_->model_dir(), ": tensor ", name, " has shape ",
          ShapeString(tensor->shape), " but the config implies [", size, "]"));
    }
    absl::StatusOr<kernels::WeightType> type = WeightTypeOf(*tensor);
    if (!type.ok()) return type.status();
    std::vector<float> values(range.count);
    kernels::DequantizeRowRange(*type, tensor->data, range.begin, range.begin + range.count, values.data());
    bytes_loaded_ += range.count * kernels::WeightTypeSize(*type);
    return values;
  }

  bool Contains(std::string_view name) const override {
    if (checkpoint_->Find(name).has_value()) return true;
    const std::optional<std::string_view> module = LinearModule(name);
    return module.has_value() && StoredWeightFormat(*checkpoint_, *module) != WeightFormat::kPlain;
  }

  uint64_t bytes_loaded() const override { return bytes_loaded_; }

 private:
  std::unique_ptr<SafetensorsCheckpoint> checkpoint_;
  WeightQuantization scheme_;
  std::deque<HugePageBuffer> buffers_;  // column shards; deque: stable addresses
  uint64_t bytes_loaded_ = 0;
};

class DummyWeights final : public WeightSource {
 public:
  // A uniform distribution on [-r, r) has standard deviation r / sqrt(3).
  DummyWeights(uint64_t seed, float std, WeightQuantization scheme)
      : seed_(seed), std_(std), range_(std * 1.7320508f), scheme_(std::move(scheme)) {}

  absl::StatusOr<kernels::Weight> GetMatrixBlock(std::string_view name, int64_t rows, int64_t cols,
                                                 IndexRange row_range,
                                                 IndexRange col_range) override {
    if (!InBounds(row_range, rows) || !InBounds(col_range, cols)) {
      return BlockError(name, rows, cols, row_range, col_range);
    }
    if (scheme_.format != WeightFormat::kPlain && DummyQuantizesMatrix(name)) {
      return DummyQuantizedBlock(scheme_, name, SeedFor(name), std_, rows, cols, row_range, col_range,
                                 &buffers_, &bytes_loaded_);
    }
    // Element i of the whole tensor is drawn from state seed + (i + 1)·γ, so
    // a block holds exactly the values the whole tensor would.
    const uint64_t seed = SeedFor(name);
    const size_t count = static_cast<size_t>(row_range.count * col_range.count);
    uint16_t* values = static_cast<uint16_t*>(
        buffers_.emplace_back(std::max<size_t>(1, count * sizeof(uint16_t))).data());
    for (int64_t r = 0; r < row_range.count; ++r) {
      uint64_t state = seed + static_cast<uint64_t>((row_range.begin + r) * cols + col_range.begin) * kDummyGamma;
      uint16_t* row = values + r * col_range.count;
      for (int64_t c = 0; c < col_range.count; ++c) row[c] = FloatToBf16(DummyUniform(state, range_));
    }
    bytes_loaded_ += count * sizeof(uint16_t);
    return kernels::Weight{.data = values, .type = kernels::WeightType::kBF16,
                           .rows = row_range.count, .cols = col_range.count};
  }

  absl::StatusOr<std::vector<float>> GetVectorRange(std::string_view name, int64_t size,
                                                    IndexRange range) override {
    if (!InBounds(range, size)) return BlockError(name, 1, size, {0, 1}, range);
    uint64_t state = SeedFor(name) + static_cast<uint64_t>(range.begin) * kDummyGamma;
    const float center = name.ends_with("bias") ? 0.0f : 1.0f;
    std::vector<float> values(range.count);
    for (float& value : values) value = center + DummyUniform(state, range_);
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

  uint64_t seed_;
  float std_;
  float range_;  // of the uniform distribution with that deviation
  WeightQuantization scheme_;
  std::deque<HugePageBuffer> buffers_;  // deque: stable addresses
  uint64_t bytes_loaded_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<WeightSource>> OpenCheckpointWeights(
    const std::string& model_dir) {
  if (IsGgufFile(model_dir)) return OpenGgufWeights(model_dir);
  // The quantization scheme first, so an unsupported one fails before any
  // weight is read. A directory without config.json holds plain weights.
  WeightQuantization scheme;
  if (std::filesystem::exists(std::filesystem::path(model_dir) / "config.json")) {
    absl::StatusOr<ModelConfig> config = LoadModelConfig(model_dir);
    if (!config.ok()) return config.status();
    absl::StatusOr<WeightQuantization> parsed = ParseWeightQuantization(*config);
    if (!parsed.ok()) return parsed.status();
    scheme = *std::move(parsed);
  }
  absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> checkpoint =
      SafetensorsCheckpoint::Open(model_dir);
  if (!checkpoint.ok()) return checkpoint.status();
  return std::make_unique<CheckpointWeights>(*std::move(checkpoint), std::move(scheme));
}

std::unique_ptr<WeightSource> MakeDummyWeights(uint64_t seed, float std, WeightQuantization scheme) {
  return std::make_unique<DummyWeights>(seed, std, std::move(scheme));
}

absl::StatusOr<std::unique_ptr<WeightSource>> MakeDummyWeightsFor(const ModelConfig& config,
                                                                  uint64_t seed) {
  absl::StatusOr<WeightQuantization> scheme = ParseWeightQuantization(config);
  if (!scheme.ok()) return scheme.status();
  return MakeDummyWeights(seed, 0.02f, *std::move(scheme));
}

}  // namespace duet::worker
