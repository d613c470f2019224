// Qwen3-MoE (Qwen3MoeForCausalLM): Qwen3 attention; layers chosen by
// ModelConfig::IsMoeLayer (decoder_sparse_step, mlp_only_layers) use the
// sparse block: router "mlp.gate" softmax over all experts in fp32, top-k,
// renormalised when norm_topk_prob, SwiGLU experts "mlp.experts.<e>"; the
// other layers keep a dense MLP of intermediate_size.
#include "common/str_cat.h"
#include "common/status_macros.h"
#include "worker/models/registry.h"

namespace duet::worker {
namespace {

absl::Status LoadQwen3MoeFeedForward(WeightSource& source, const ModelConfig& config,
                                     const ModelShard& shard, int64_t layer,
                                     DecoderLayerWeights* weights) {
  if (!config.IsMoeLayer(layer)) return LoadDenseFeedForward(source, config, shard, layer, weights);
  DUET_ASSIGN_OR_RETURN(weights->moe,
                        LoadMoe(source, StrCat("model.layers.", layer, ".mlp"), config, shard));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<DecoderModel>> LoadQwen3Moe(const ModelConfig& config,
                                                           const ModelShard& shard,
                                                           std::unique_ptr<WeightSource> source) {
  return DecoderModel::Load(config, shard, std::move(source), LoadQwen3MoeFeedForward);
}

}  // namespace duet::worker
