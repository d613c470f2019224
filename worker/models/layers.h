// The building blocks every decoder family is assembled from: attention over
// the paged KV cache, the gated (SwiGLU) MLP and the mixture-of-experts block,
// with the loaders that read their weights by Hugging Face names. Shapes use
// T = tokens in the batch, H = hidden size, D = head_dim.
#ifndef DUET_WORKER_MODELS_LAYERS_H_
#define DUET_WORKER_MODELS_LAYERS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "kernels/ops.h"
#include "worker/kv_cache.h"
#include "worker/models/forward_batch.h"
#include "worker/models/weight_source.h"

namespace duet::worker {

struct AttentionWeights {
  kernels::Weight q_proj;  // [num_heads * D, H]
  kernels::Weight k_proj;  // [num_kv_heads * D, H]
  kernels::Weight v_proj;  // [num_kv_heads * D, H]
  kernels::Weight o_proj;  // [H, num_heads * D]
  std::vector<float> q_bias, k_bias, v_bias, o_bias;  // empty when the model has none
  std::vector<float> q_norm, k_norm;  // [D] per-head RMSNorm (Qwen3); empty when none
};

struct GatedMlpWeights {
  kernels::Weight gate_proj;  // [I, H]
  kernels::Weight up_proj;    // [I, H]
  kernels::Weight down_proj;  // [H, I]
};

struct MoeWeights {
  kernels::Weight router;                // [num_experts, H]
  std::vector<GatedMlpWeights> experts;  // [num_experts], each with I = moe_intermediate_size
};

// Loaders; `prefix` is e.g. "model.layers.3.self_attn". Errors name the tensor.
absl::StatusOr<AttentionWeights> LoadAttention(WeightSource& source, const std::string& prefix,
                                               const ModelConfig& config);
absl::StatusOr<GatedMlpWeights> LoadGatedMlp(WeightSource& source, const std::string& prefix,
                                             int64_t hidden_size, int64_t intermediate_size);
absl::StatusOr<MoeWeights> LoadMoe(WeightSource& source, const std::string& prefix,
                                   const ModelConfig& config);

// What the layer forward functions share within one forward pass.
struct LayerContext {
  kernels::Backend& backend;
  const ModelConfig& config;
  const ForwardBatch& batch;
  const kernels::AttentionBatch& attention_batch;  // views into `batch`
  const std::vector<float>& rope_inv_freq;         // [D / 2]
  KvCache& kv_cache;
  const TensorObserver* observer;  // may be null

  // Reports a [rows, cols] intermediate named "<prefix>.<name>" to the observer.
  void Observe(const std::string& name, const float* data, int64_t rows, int64_t cols) const;
};

// Self-attention of layer `layer`: projections, optional q/k norm, RoPE, KV
// write, paged causal attention, output projection.
// x: [T, H] (normalised input); out: [T, H].
void AttentionForward(const LayerContext& context, int64_t layer, const AttentionWeights& weights,
                      const float* x, float* out);

// out = down(silu(gate(x)) * up(x)). x: [num_rows, H]; out: [num_rows, H].
void GatedMlpForward(kernels::Backend& backend, const GatedMlpWeights& weights, const float* x,
                     int64_t num_rows, float* out);

// Qwen3-MoE sparse block: softmax over all experts in fp32, top-k, the top-k
// weights renormalised when norm_topk_prob, the weighted sum of the chosen
// experts' SwiGLU outputs. x: [T, H]; out: [T, H].
void MoeForward(const LayerContext& context, int64_t layer, const MoeWeights& weights,
                const float* x, float* out);

}  // namespace duet::worker

#endif  // DUET_WORKER_MODELS_LAYERS_H_
