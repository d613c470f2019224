// Which part of a model one rank holds (DESIGN.md, "Parallelism"). With
// world_size 1 the shard is the whole model. Megatron layout for attention
// and dense MLPs: q/k/v and gate/up split by output rows, o_proj and down by
// input columns, the embeddings and the lm_head by vocabulary rows. MoE
// experts are split by expert id (expert parallel) or, in tensor-parallel
// mode, each expert by its intermediate rows like a dense MLP.
#ifndef DUET_WORKER_MODELS_MODEL_SHARD_H_
#define DUET_WORKER_MODELS_MODEL_SHARD_H_

#include <cstdint>

#include "absl/status/status.h"
#include "common/model_config.h"

namespace duet::worker {

// [begin, begin + count).
struct IndexRange {
  int64_t begin = 0;
  int64_t count = 0;
  int64_t end() const { return begin + count; }
  bool operator==(const IndexRange&) const = default;
};

struct ModelShard {
  int32_t rank = 0;
  int32_t world_size = 1;
  bool expert_parallel = false;

  bool is_whole() const { return world_size == 1; }

  // This rank's part of n things split evenly; n % world_size == 0 (see
  // ValidateShard).
  IndexRange Even(int64_t n) const;
  IndexRange QueryHeads(const ModelConfig& config) const;
  // KV heads: split when num_key_value_heads >= world_size, otherwise each
  // rank holds (a replica of) the one KV head its query heads use.
  IndexRange KvHeads(const ModelConfig& config) const;
  // Vocabulary rows of the embeddings and the lm_head: ceil(vocab /
  // world_size) per rank, the last rank's part shorter when it does not
  // divide.
  int64_t VocabPerRank(int64_t vocab_size) const;
  IndexRange Vocab(int64_t vocab_size) const;
  // Experts this rank holds: all of them unless expert_parallel.
  IndexRange Experts(const ModelConfig& config) const;
  // Intermediate rows of each expert this rank holds: all of them when
  // expert_parallel.
  IndexRange ExpertIntermediate(const ModelConfig& config) const;
};

// InvalidArgument, saying which size does not divide, when `config` cannot be
// split as `shard` asks (rank outside the world, heads or intermediate sizes
// not divisible, expert parallel for a dense model).
absl::Status ValidateShard(const ModelConfig& config, const ModelShard& shard);

}  // namespace duet::worker

#endif  // DUET_WORKER_MODELS_MODEL_SHARD_H_
