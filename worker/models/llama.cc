// Llama 3.x (LlamaForCausalLM): GQA attention without biases (unless the
// config sets attention_bias), RoPE with rope_theta and optional llama3
// frequency scaling, SwiGLU MLP, untied lm_head unless tie_word_embeddings.
#include "worker/models/registry.h"

namespace duet::worker {

absl::StatusOr<std::unique_ptr<DecoderModel>> LoadLlama(const ModelConfig& config,
                                                        const ModelShard& shard,
                                                        std::unique_ptr<WeightSource> source) {
  return DecoderModel::Load(config, shard, std::move(source), LoadDenseFeedForward);
}

}  // namespace duet::worker
