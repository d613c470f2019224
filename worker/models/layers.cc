#include "worker/models/layers.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/str_cat.h"
#include "common/status_macros.h"

namespace duet::worker {
namespace {

using kernels::Backend;
using kernels::Weight;

// Loads elements `range` of "<prefix>.bias" of `size` when the model has one.
absl::Status LoadOptionalBias(WeightSource& source, const std::string& prefix, bool has_bias,
                              int64_t size, IndexRange range, std::vector<float>* bias) {
  if (!has_bias) return absl::OkStatus();
  DUET_ASSIGN_OR_RETURN(*bias, source.GetVectorRange(prefix + ".bias", size, range));
  return absl::OkStatus();
}

IndexRange Scaled(IndexRange range, int64_t factor) {
  return IndexRange{.begin = range.begin * factor, .count = range.count * factor};
}

// Sums the ranks' partial outputs; a no-op on one rank.
absl::Status AllReduce(Communicator& comm, float* data, int64_t count) {
  if (comm.world_size() == 1) return absl::OkStatus();
  return comm.AllReduceSum(data, count);
}

// x[r, :] += bias for every row; no-op for an empty bias.
void AddBias(Backend& backend, const std::vector<float>& bias, float* x, int64_t rows) {
  if (!bias.empty()) backend.AddBias(x, bias.data(), rows, static_cast<int64_t>(bias.size()));
}

}  // namespace

void LayerContext::Observe(const std::string& name, const float* data, int64_t rows,
                           int64_t cols) const {
  if (observer == nullptr || !*observer) return;
  const int64_t shape[2] = {rows, cols};
  (*observer)(name, data, shape);
}

absl::StatusOr<AttentionWeights> LoadAttention(WeightSource& source, const std::string& prefix,
                                               const ModelConfig& config, const ModelShard& shard) {
  const int64_t hidden = config.hidden_size;
  const int64_t head_dim = config.head_dim;
  const IndexRange q_rows = Scaled(shard.QueryHeads(config), head_dim);
  const IndexRange kv_rows = Scaled(shard.KvHeads(config), head_dim);
  AttentionWeights weights;
  weights.num_heads = static_cast<int32_t>(shard.QueryHeads(config).count);
  weights.num_kv_heads = static_cast<int32_t>(shard.KvHeads(config).count);
  DUET_ASSIGN_OR_RETURN(weights.q_proj, source.GetMatrixRows(prefix + ".q_proj.weight", config.q_size(), hidden, q_rows));
  DUET_ASSIGN_OR_RETURN(weights.k_proj, source.GetMatrixRows(prefix + ".k_proj.weight", config.kv_size(), hidden, kv_rows));
  DUET_ASSIGN_OR_RETURN(weights.v_proj, source.GetMatrixRows(prefix + ".v_proj.weight", config.kv_size(), hidden, kv_rows));
  DUET_ASSIGN_OR_RETURN(weights.o_proj, source.GetMatrixCols(prefix + ".o_proj.weight", hidden, config.q_size(), q_rows));
  DUET_RETURN_IF_ERROR(LoadOptionalBias(source, prefix + ".q_proj", config.qkv_bias, config.q_size(), q_rows, &weights.q_bias));
  DUET_RETURN_IF_ERROR(LoadOptionalBias(source, prefix + ".k_proj", config.qkv_bias, config.kv_size(), kv_rows, &weights.k_bias));
  DUET_RETURN_IF_ERROR(LoadOptionalBias(source, prefix + ".v_proj", config.qkv_bias, config.kv_size(), kv_rows, &weights.v_bias));
  DUET_RETURN_IF_ERROR(LoadOptionalBias(source, prefix + ".o_proj", config.o_proj_bias, hidden, {0, hidden}, &weights.o_bias));
  if (config.qk_norm) {
    DUET_ASSIGN_OR_RETURN(weights.q_norm, source.GetVector(prefix + ".q_norm.weight", head_dim));
    DUET_ASSIGN_OR_RETURN(weights.k_norm, source.GetVector(prefix + ".k_norm.weight", head_dim));
  }
  return weights;
}

absl::StatusOr<GatedMlpWeights> LoadGatedMlp(WeightSource& source, const std::string& prefix,
                                             int64_t hidden_size, int64_t intermediate_size,
                                             IndexRange intermediate_rows) {
  GatedMlpWeights weights;
  DUET_ASSIGN_OR_RETURN(weights.gate_proj, source.GetMatrixRows(prefix + ".gate_proj.weight", intermediate_size, hidden_size, intermediate_rows));
  DUET_ASSIGN_OR_RETURN(weights.up_proj, source.GetMatrixRows(prefix + ".up_proj.weight", intermediate_size, hidden_size, intermediate_rows));
  DUET_ASSIGN_OR_RETURN(weights.down_proj, source.GetMatrixCols(prefix + ".down_proj.weight", hidden_size, intermediate_size, intermediate_rows));
  return weights;
}

absl::StatusOr<MoeWeights> LoadMoe(WeightSource& source, const std::string& prefix,
                                   const ModelConfig& config, const ModelShard& shard) {
  MoeWeights weights;
  DUET_ASSIGN_OR_RETURN(weights.router, source.GetMatrix(prefix + ".gate.weight", config.num_experts, config.hidden_size));
  const IndexRange experts = shard.Experts(config);
  weights.first_expert = experts.begin;
  weights.experts.reserve(experts.count);
  for (int64_t expert = experts.begin; expert < experts.end(); ++expert) {
    DUET_ASSIGN_OR_RETURN(GatedMlpWeights mlp,
                     LoadGatedMlp(source, StrCat(prefix, ".experts.", expert), config.hidden_size,
                                  config.moe_intermediate_size, shard.ExpertIntermediate(config)));
    weights.experts.push_back(mlp);
  }
  return weights;
}

absl::Status AttentionForward(const LayerContext& context, int64_t layer,
                              const AttentionWeights& weights, const float* x, float* out) {
  Backend& backend = context.backend;
  const ModelConfig& config = context.config;
  const int64_t num_tokens = context.batch.num_tokens();
  const int32_t num_heads = weights.num_heads;
  const int32_t num_kv_heads = weights.num_kv_heads;
  const int32_t head_dim = static_cast<int32_t>(config.head_dim);
  const int64_t q_size = int64_t{num_heads} * head_dim;
  const int64_t kv_size = int64_t{num_kv_heads} * head_dim;
  const std::string name = StrCat("layers.", layer, ".");

  std::vector<float> q(num_tokens * q_size);   // [T, Hq, D]
  std::vector<float> k(num_tokens * kv_size);  // [T, Hkv, D]
  std::vector<float> v(num_tokens * kv_size);  // [T, Hkv, D]
  backend.Matmul(x, weights.q_proj, q.data(), num_tokens);
  backend.Matmul(x, weights.k_proj, k.data(), num_tokens);
  backend.Matmul(x, weights.v_proj, v.data(), num_tokens);
  AddBias(backend, weights.q_bias, q.data(), num_tokens);
  AddBias(backend, weights.k_bias, k.data(), num_tokens);
  AddBias(backend, weights.v_bias, v.data(), num_tokens);
  if (!weights.q_norm.empty()) {
    const float eps = static_cast<float>(config.rms_norm_eps);
    backend.RmsNorm(q.data(), weights.q_norm.data(), q.data(), num_tokens * num_heads, head_dim, eps);
    backend.RmsNorm(k.data(), weights.k_norm.data(), k.data(), num_tokens * num_kv_heads, head_dim, eps);
  }
  backend.Rope(q.data(), context.batch.positions.data(), num_tokens, num_heads, head_dim,
               context.rope_inv_freq.data(), head_dim);
  backend.Rope(k.data(), context.batch.positions.data(), num_tokens, num_kv_heads, head_dim,
               context.rope_inv_freq.data(), head_dim);
  context.Observe(name + "q", q.data(), num_tokens, q_size);
  context.Observe(name + "k", k.data(), num_tokens, kv_size);
  context.Observe(name + "v", v.data(), num_tokens, kv_size);

  KvCache& cache = context.kv_cache;
  backend.WriteKv(k.data(), v.data(), context.batch.slots.data(), num_tokens, cache.layout(),
                  cache.keys(layer), cache.values(layer));
  std::vector<float> attention(num_tokens * q_size);  // [T, Hq, D]
  backend.PagedAttention(q.data(), cache.keys(layer), cache.values(layer), cache.layout(),
                         context.attention_batch, num_heads,
                         1.0f / std::sqrt(static_cast<float>(head_dim)), attention.data());
  context.Observe(name + "attention", attention.data(), num_tokens, q_size);

  backend.Matmul(attention.data(), weights.o_proj, out, num_tokens);
  DUET_RETURN_IF_ERROR(AllReduce(context.comm, out, num_tokens * config.hidden_size));
  AddBias(backend, weights.o_bias, out, num_tokens);
  return absl::OkStatus();
}

void GatedMlpForward(Backend& backend, const GatedMlpWeights& weights, const float* x,
                     int64_t num_rows, float* out) {
  const int64_t intermediate = weights.gate_proj.rows;
  std::vector<float> gate(num_rows * intermediate);  // [num_rows, I]
  std::vector<float> up(num_rows * intermediate);    // [num_rows, I]
  backend.Matmul(x, weights.gate_proj, gate.data(), num_rows);
  backend.Matmul(x, weights.up_proj, up.data(), num_rows);
  backend.SiluMul(gate.data(), up.data(), gate.data(), num_rows * intermediate);
  backend.Matmul(gate.data(), weights.down_proj, out, num_rows);
}

absl::Status DenseMlpForward(const LayerContext& context, const GatedMlpWeights& weights,
                             const float* x, float* out) {
  const int64_t num_tokens = context.batch.num_tokens();
  GatedMlpForward(context.backend, weights, x, num_tokens, out);
  return AllReduce(context.comm, out, num_tokens * context.config.hidden_size);
}

absl::Status MoeForward(const LayerContext& context, int64_t layer, const MoeWeights& weights,
                        const float* x, float* out) {
  Backend& backend = context.backend;
  const ModelConfig& config = context.config;
  const int64_t num_tokens = context.batch.num_tokens();
  const int64_t hidden = config.hidden_size;
  const int64_t num_experts = config.num_experts;
  const int64_t top_k = config.num_experts_per_tok;

  std::vector<float> probs(num_tokens * num_experts);  // [T, E]
  backend.Matmul(x, weights.router, probs.data(), num_tokens);
  context.Observe(StrCat("layers.", layer, ".router_logits"), probs.data(), num_tokens, num_experts);
  backend.Softmax(probs.data(), num_tokens, num_experts);

  // Route: per token its top-k experts (higher probability first, lower
  // expert id on ties), then per expert the tokens it serves.
  // Experts this rank holds: [first_expert, first_expert + experts.size()).
  const int64_t first_expert = weights.first_expert;
  const int64_t num_local_experts = static_cast<int64_t>(weights.experts.size());
  std::vector<std::vector<int32_t>> tokens_of_expert(num_local_experts);
  std::vector<std::vector<float>> weights_of_expert(num_local_experts);
  std::vector<int32_t> order(num_experts);
  for (int64_t t = 0; t < num_tokens; ++t) {
    const float* row = probs.data() + t * num_experts;
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + top_k, order.end(),
                      [row](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    float kept_sum = 0.0f;
    for (int64_t j = 0; j < top_k; ++j) kept_sum += row[order[j]];
    for (int64_t j = 0; j < top_k; ++j) {
      const int32_t expert = order[j];
      const int64_t local = expert - first_expert;
      if (local < 0 || local >= num_local_experts) continue;
      tokens_of_expert[local].push_back(static_cast<int32_t>(t));
      weights_of_expert[local].push_back(config.norm_topk_prob ? row[expert] / kept_sum : row[expert]);
    }
  }

  std::fill(out, out + num_tokens * hidden, 0.0f);
  std::vector<float> expert_in, expert_out;
  for (int64_t expert = 0; expert < num_local_experts; ++expert) {
    const std::vector<int32_t>& tokens = tokens_of_expert[expert];
    if (tokens.empty()) continue;
    const int64_t rows = static_cast<int64_t>(tokens.size());
    expert_in.resize(rows * hidden);
    expert_out.resize(rows * hidden);
    for (int64_t r = 0; r < rows; ++r) {
      std::copy_n(x + tokens[r] * hidden, hidden, expert_in.data() + r * hidden);
    }
    GatedMlpForward(backend, weights.experts[expert], expert_in.data(), rows, expert_out.data());
    for (int64_t r = 0; r < rows; ++r) {
      const float weight = weights_of_expert[expert][r];
      float* destination = out + tokens[r] * hidden;
      const float* source = expert_out.data() + r * hidden;
      for (int64_t i = 0; i < hidden; ++i) destination[i] += weight * source[i];
    }
  }
  return AllReduce(context.comm, out, num_tokens * hidden);
}

}  // namespace duet::worker
