// The building blocks every decoder family is assembled from: attention over
// the paged KV cache, the gated (SwiGLU) MLP and the mixture-of-experts block,
// with the loaders that read their weights by Hugging Face names. Each loader
// reads only this rank's shard (model_shard.h); each forward function ends
// with the all-reduce that sums the ranks' partial outputs. Shapes use
// T = tokens in the batch, H = hidden size, D = head_dim, and the rank's
// parts: Hq = its query heads, Hkv = its KV heads, I = its intermediate rows.
#ifndef DUET_WORKER_MODELS_LAYERS_H_
#define DUET_WORKER_MODELS_LAYERS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "kernels/ops.h"
#include "worker/comm/communicator.h"
#include "worker/kv_cache.h"
#include "worker/models/forward_batch.h"
#include "worker/models/model_shard.h"
#include "worker/models/weight_source.h"

namespace duet::worker {

struct AttentionWeights {
  int32_t num_heads = 0;     // Hq
  int32_t num_kv_heads = 0;  // Hkv
  kernels::Weight q_proj;  // [Hq * D, H]
  kernels::Weight k_proj;  // [Hkv * D, H]
  kernels::Weight v_proj;  // [Hkv * D, H]
  kernels::Weight o_proj;  // [H, Hq * D]
  std::vector<float> q_bias, k_bias, v_bias;  // [Hq * D], [Hkv * D]; empty when none
  std::vector<float> o_bias;  // [H], added once after the all-reduce; empty when none
  std::vector<float> q_norm, k_norm;  // [D] per-head RMSNorm (Qwen3); empty when none
};

struct GatedMlpWeights {
  kernels::Weight gate_proj;  // [I, H]
  kernels::Weight up_proj;    // [I, H]
  kernels::Weight down_proj;  // [H, I]
};

struct MoeWeights {
  kernels::Weight router;  // [num_experts, H], every expert
  int64_t first_expert = 0;              // global id of experts[0]
  std::vector<GatedMlpWeights> experts;  // this rank's experts, each with its I rows
};

// Loaders; `prefix` is e.g. "model.layers.3.self_attn". Errors name the tensor.
absl::StatusOr<AttentionWeights> LoadAttention(WeightSource& source, const std::string& prefix,
                                               const ModelConfig& config, const ModelShard& shard);
// Rows `intermediate_rows` of gate/up, the same columns of down.
absl::StatusOr<GatedMlpWeights> LoadGatedMlp(WeightSource& source, const std::string& prefix,
                                             int64_t hidden_size, int64_t intermediate_size,
                                             IndexRange intermediate_rows);
absl::StatusOr<MoeWeights> LoadMoe(WeightSource& source, const std::string& prefix,
                                   const ModelConfig& config, const ModelShard& shard);

// What the layer forward functions share within one forward pass.
struct LayerContext {
  kernels::Backend& backend;
  const ModelConfig& config;
  const ForwardBatch& batch;
  const kernels::AttentionBatch& attention_batch;  // views into `batch`
  const std::vector<float>& rope_inv_freq;         // [D / 2]
  KvCache& kv_cache;
  Communicator& comm;
  const TensorObserver* observer;  // may be null

  // Reports a [rows, cols] intermediate named "<prefix>.<name>" to the observer.
  void Observe(const std::string& name, const float* data, int64_t rows, int64_t cols) const;
};

// Self-attention of layer `layer`: projections, optional q/k norm, RoPE, KV
// write, paged causal attention, output projection, all-reduce.
// x: [T, H] (normalised input); out: [T, H]. Errors come from the collective.
absl::Status AttentionForward(const LayerContext& context, int64_t layer,
                              const AttentionWeights& weights, const float* x, float* out);

// out = down(silu(gate(x)) * up(x)) over this rank's I rows (a partial sum
// when the MLP is split). x: [num_rows, H]; out: [num_rows, H].
void GatedMlpForward(kernels::Backend& backend, const GatedMlpWeights& weights, const float* x,
                     int64_t num_rows, float* out);

// A dense layer's MLP: GatedMlpForward, then the all-reduce.
absl::Status DenseMlpForward(const LayerContext& context, const GatedMlpWeights& weights,
                             const float* x, float* out);

// Qwen3-MoE sparse block: softmax over all experts in fp32, top-k, the top-k
// weights renormalised when norm_topk_prob, the weighted sum of the chosen
// experts' SwiGLU outputs; each rank adds its experts' (or its rows')
// share, one all-reduce sums them. x: [T, H]; out: [T, H].
absl::Status MoeForward(const LayerContext& context, int64_t layer, const MoeWeights& weights,
                const float* x, float* out);

}  // namespace duet::worker

#endif  // DUET_WORKER_MODELS_LAYERS_H_
