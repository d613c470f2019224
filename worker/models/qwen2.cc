// Qwen2 (Qwen2ForCausalLM; DeepSeek-R1-Distill-Qwen): like Llama, with biases
// on q/k/v (config.qkv_bias, always set for this family) and none on o_proj.
#include "worker/models/registry.h"

namespace duet::worker {

absl::StatusOr<std::unique_ptr<DecoderModel>> LoadQwen2(const ModelConfig& config,
                                                        const ModelShard& shard,
                                                        std::unique_ptr<WeightSource> source) {
  return DecoderModel::Load(config, shard, std::move(source), LoadDenseFeedForward);
}

}  // namespace duet::worker
