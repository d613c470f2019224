// Where a model's weights come from: a safetensors checkpoint or a GGUF file
// (tensors used in place, straight from the memory-mapped files) or random "dummy" weights at
// the shapes the config gives (for benchmarking real shapes without files).
#ifndef DUET_WORKER_MODELS_WEIGHT_SOURCE_H_
#define DUET_WORKER_MODELS_WEIGHT_SOURCE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "common/safetensors_checkpoint.h"
#include "common/weight_quantization.h"
#include "kernels/ops.h"
#include "worker/models/model_shard.h"

namespace duet::worker {

// Thread-compatible. Weights returned by GetMatrix stay valid while the source
// lives (they borrow from its mapped files or buffers).
class WeightSource {
 public:
  virtual ~WeightSource() = default;

  // The block [row_range, col_range] of a [rows, cols] matrix stored as f32,
  // f16, bf16 or (GGUF) one of the block-quantized kernels::WeightTypes (a
  // rank's shard; a column range of a block-quantized matrix must cover
  // whole blocks). Row ranges are views into the stored
  // tensor; a partial column range is copied. NotFound when absent;
  // InvalidArgument, naming the tensor, when the shape or dtype differs.
  virtual absl::StatusOr<kernels::Weight> GetMatrixBlock(std::string_view name, int64_t rows,
                                                         int64_t cols, IndexRange row_range,
                                                         IndexRange col_range) = 0;

  // Elements `range` of a [size] vector (norm weights, biases), as fp32.
  virtual absl::StatusOr<std::vector<float>> GetVectorRange(std::string_view name, int64_t size,
                                                            IndexRange range) = 0;

  // The whole [rows, cols] matrix.
  absl::StatusOr<kernels::Weight> GetMatrix(std::string_view name, int64_t rows, int64_t cols) {
    return GetMatrixBlock(name, rows, cols, {0, rows}, {0, cols});
  }
  // Rows `range` (output features) of a [rows, cols] matrix.
  absl::StatusOr<kernels::Weight> GetMatrixRows(std::string_view name, int64_t rows, int64_t cols,
                                                IndexRange range) {
    return GetMatrixBlock(name, rows, cols, range, {0, cols});
  }
  // Columns `range` (input features) of a [rows, cols] matrix.
  absl::StatusOr<kernels::Weight> GetMatrixCols(std::string_view name, int64_t rows, int64_t cols,
                                                IndexRange range) {
    return GetMatrixBlock(name, rows, cols, {0, rows}, range);
  }
  // The whole [size] vector.
  absl::StatusOr<std::vector<float>> GetVector(std::string_view name, int64_t size) {
    return GetVectorRange(name, size, {0, size});
  }

  // Whether a tensor of that name exists (e.g. an untied lm_head).
  virtual bool Contains(std::string_view name) const = 0;

  // Bytes of weight data handed out so far (for load progress).
  virtual uint64_t bytes_loaded() const = 0;
};

// Weights from <model_dir>/model.safetensors or its sharded index, or, when
// the path names a GGUF file, from that file (gguf_weights.h).
absl::StatusOr<std::unique_ptr<WeightSource>> OpenCheckpointWeights(
    const std::string& model_dir);

// Random weights: matrices bf16 with entries uniform with standard deviation
// `std`, vectors fp32 near one (norm weights) or near zero (names ending in
// "bias"); with a quantized `scheme` (config.json's quantization_config) the
// decoder layers' Linear weights are stored in its format instead
// (dummy_quantized.h), as a checkpoint of that format stores them. The same
// seed gives the same tensors, tensor by tensor, independent of request order.
std::unique_ptr<WeightSource> MakeDummyWeights(uint64_t seed, float std = 0.02f,
                                               WeightQuantization scheme = {});

// Dummy weights for `config`, in the format its quantization_config declares
// (an unsupported one is the error ParseWeightQuantization gives).
absl::StatusOr<std::unique_ptr<WeightSource>> MakeDummyWeightsFor(const ModelConfig& config,
                                                                  uint64_t seed);

}  // namespace duet::worker

#endif  // DUET_WORKER_MODELS_WEIGHT_SOURCE_H_
