#include "worker/models/model_shard.h"

#include <algorithm>

#include "common/str_cat.h"

namespace duet::worker {
namespace {

absl::Status Indivisible(std::string_view what, int64_t n, int32_t world_size) {
  return absl::InvalidArgumentError(StrCat(what, " (", n, ") is not divisible by the world size (",
                                           world_size, ")"));
}

}  // namespace

IndexRange ModelShard::Even(int64_t n) const {
  const int64_t count = n / world_size;
  return IndexRange{.begin = rank * count, .count = count};
}

IndexRange ModelShard::QueryHeads(const ModelConfig& config) const {
  return Even(config.num_attention_heads);
}

IndexRange ModelShard::KvHeads(const ModelConfig& config) const {
  if (config.num_key_value_heads >= world_size) return Even(config.num_key_value_heads);
  // Query head h uses KV head h / group; this rank's first query head decides.
  const int64_t group = config.num_attention_heads / config.num_key_value_heads;
  return IndexRange{.begin = QueryHeads(config).begin / group, .count = 1};
}

int64_t ModelShard::VocabPerRank(int64_t vocab_size) const {
  return (vocab_size + world_size - 1) / world_size;
}

IndexRange ModelShard::Vocab(int64_t vocab_size) const {
  const int64_t per_rank = VocabPerRank(vocab_size);
  const int64_t begin = std::min(vocab_size, rank * per_rank);
  return IndexRange{.begin = begin, .count = std::min(vocab_size, begin + per_rank) - begin};
}

IndexRange ModelShard::Experts(const ModelConfig& config) const {
  if (!expert_parallel) return IndexRange{.begin = 0, .count = config.num_experts};
  return Even(config.num_experts);
}

IndexRange ModelShard::ExpertIntermediate(const ModelConfig& config) const {
  if (expert_parallel) return IndexRange{.begin = 0, .count = config.moe_intermediate_size};
  return Even(config.moe_intermediate_size);
}

absl::Status ValidateShard(const ModelConfig& config, const ModelShard& shard) {
  if (shard.world_size < 1) return absl::InvalidArgumentError("world size must be at least 1");
  if (shard.rank < 0 || shard.rank >= shard.world_size) {
    return absl::InvalidArgumentError(
        StrCat("rank ", shard.rank, " is outside a world of size ", shard.world_size));
  }
  const int32_t w = shard.world_size;
  if (config.num_attention_heads % w != 0) {
    return Indivisible("num_attention_heads", config.num_attention_heads, w);
  }
  if (config.num_key_value_heads % w != 0 && w % config.num_key_value_heads != 0) {
    return absl::InvalidArgumentError(
        StrCat("num_key_value_heads (", config.num_key_value_heads,
               ") and the world size (", w, ") must divide one another"));
  }
  const bool is_moe = config.num_experts > 0;
  bool has_dense_layer = !is_moe;
  for (int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
    if (!config.IsMoeLayer(layer)) has_dense_layer = true;
  }
  if (has_dense_layer && config.intermediate_size % w != 0) {
    return Indivisible("intermediate_size", config.intermediate_size, w);
  }
  if (shard.expert_parallel && !is_moe) {
    return absl::InvalidArgumentError(
        StrCat(config.architecture, " has no experts: use tensor parallelism"));
  }
  if (is_moe && shard.expert_parallel && config.num_experts % w != 0) {
    return Indivisible("num_experts", config.num_experts, w);
  }
  if (is_moe && !shard.expert_parallel && config.moe_intermediate_size % w != 0) {
    return Indivisible("moe_intermediate_size", config.moe_intermediate_size, w);
  }
  return absl::OkStatus();
}

}  // namespace duet::worker
