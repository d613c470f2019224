// From a parsed config.json to a loaded model: one entry per architecture
// family. Adding a family = one file in worker/models/ defining its loader,
// its declaration below, and one line in registry.cc's table.
#ifndef DUET_WORKER_MODELS_REGISTRY_H_
#define DUET_WORKER_MODELS_REGISTRY_H_

#include <memory>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "worker/models/decoder_model.h"
#include "worker/models/weight_source.h"

namespace duet::worker {

// Loads the model `config` describes from `source`. Errors name the tensor or
// the unsupported architecture.
// `shard` says which part this rank loads (the whole model by default).
absl::StatusOr<std::unique_ptr<DecoderModel>> LoadModel(const ModelConfig& config,
                                                        std::unique_ptr<WeightSource> source,
                                                        const ModelShard& shard = {});

// The family loaders (one file each).
absl::StatusOr<std::unique_ptr<DecoderModel>> LoadLlama(const ModelConfig& config,
                                                        const ModelShard& shard,
                                                        std::unique_ptr<WeightSource> source);
absl::StatusOr<std::unique_ptr<DecoderModel>> LoadQwen2(const ModelConfig& config,
                                                        const ModelShard& shard,
                                                        std::unique_ptr<WeightSource> source);
absl::StatusOr<std::unique_ptr<DecoderModel>> LoadQwen3(const ModelConfig& config,
                                                        const ModelShard& shard,
                                                        std::unique_ptr<WeightSource> source);
absl::StatusOr<std::unique_ptr<DecoderModel>> LoadQwen3Moe(const ModelConfig& config,
                                                           const ModelShard& shard,
                                                           std::unique_ptr<WeightSource> source);

}  // namespace duet::worker

#endif  // DUET_WORKER_MODELS_REGISTRY_H_
