// Qwen3 dense (Qwen3ForCausalLM): per-head RMSNorm on q and k before RoPE
// (config.qk_norm), an explicit head_dim that may differ from
// hidden_size / num_attention_heads, tied embeddings where the config says so.
#include "worker/models/registry.h"

namespace duet::worker {

absl::StatusOr<std::unique_ptr<DecoderModel>> LoadQwen3(const ModelConfig& config,
                                                        const ModelShard& shard,
                                                        std::unique_ptr<WeightSource> source) {
  return DecoderModel::Load(config, shard, std::move(source), LoadDenseFeedForward);
}

}  // namespace duet::worker
