// A decoder-only transformer as the four supported families share it:
// embeddings, N × (RMSNorm → attention → residual, RMSNorm → MLP or MoE →
// residual), final RMSNorm, lm_head. Family files (llama.cc, qwen2.cc, ...)
// say what differs; the registry picks one from config.json. A model object
// holds one rank's shard (model_shard.h); with world_size 1, all of it.
#ifndef DUET_WORKER_MODELS_DECODER_MODEL_H_
#define DUET_WORKER_MODELS_DECODER_MODEL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "kernels/ops.h"
#include "worker/comm/communicator.h"
#include "worker/kv_cache.h"
#include "worker/models/forward_batch.h"
#include "worker/models/layers.h"
#include "worker/models/model_shard.h"
#include "worker/models/weight_source.h"

namespace duet::worker {

struct DecoderLayerWeights {
  std::vector<float> input_norm;           // [H]
  std::vector<float> post_attention_norm;  // [H]
  AttentionWeights attention;
  std::optional<GatedMlpWeights> mlp;  // exactly one of mlp and moe is set
  std::optional<MoeWeights> moe;
};

// Loads this shard's feed-forward part of layer `layer`
// ("model.layers.<layer>.mlp").
using FeedForwardLoader =
    std::function<absl::Status(WeightSource& source, const ModelConfig& config,
                               const ModelShard& shard, int64_t layer, DecoderLayerWeights* weights)>;

// The dense gated MLP every non-MoE layer uses.
absl::Status LoadDenseFeedForward(WeightSource& source, const ModelConfig& config,
                                  const ModelShard& shard, int64_t layer,
                                  DecoderLayerWeights* weights);

// Immutable after Load; Forward may be called from one thread at a time per
// KvCache (the model itself holds no per-request state).
class DecoderModel {
 public:
  // Reads every weight the config implies from `source` (which the model then
  // owns: weights borrow from it). Errors name the missing or mismatched
  // tensor. Logs progress every tenth of the layers once
  // 256 MiB are loaded.
  // InvalidArgument when the config cannot be split as `shard` asks.
  static absl::StatusOr<std::unique_ptr<DecoderModel>> Load(
      const ModelConfig& config, const ModelShard& shard, std::unique_ptr<WeightSource> source,
      const FeedForwardLoader& load_feed_forward);

  // Runs `batch`, writing this rank's KV into `cache` and the logits of
  // batch.logit_rows to `logits`: [batch.logit_rows.size(), vocab_size], the
  // whole vocabulary on every rank. Every rank of the group must call it with
  // the same batch; `comm` connects them (its world must match the shard's).
  // InvalidArgument when the batch is malformed (sizes, ids outside the
  // vocabulary, slots outside the cache): the cache is then untouched and
  // every rank fails the same way before any collective. Errors of the
  // collectives are returned as they are (the communicator is then broken).
  absl::Status Forward(kernels::Backend& backend, Communicator& comm, const ForwardBatch& batch,
                       KvCache& cache, float* logits,
                       const TensorObserver* observer = nullptr) const;
  // The same for a whole (unsharded) model.
  absl::Status Forward(kernels::Backend& backend, const ForwardBatch& batch, KvCache& cache,
                       float* logits, const TensorObserver* observer = nullptr) const;

  const ModelConfig& config() const { return config_; }
  const ModelShard& shard() const { return shard_; }
  // Bytes of this shard's weights.
  uint64_t weight_bytes() const { return source_->bytes_loaded(); }
  // KV layout for a cache of `num_blocks` blocks of `block_size` tokens (this
  // rank's KV heads) stored as `dtype`.
  kernels::KvCacheLayout KvLayout(int32_t num_blocks, int32_t block_size,
                                  kernels::KvDtype dtype = kernels::KvDtype::kFloat32) const;

 private:
  DecoderModel(const ModelConfig& config, const ModelShard& shard,
               std::unique_ptr<WeightSource> source);
  absl::Status ValidateBatch(const ForwardBatch& batch, const KvCache& cache) const;
  // out [T, H]: the embeddings of token_ids, gathered from the ranks' rows.
  absl::Status Embed(kernels::Backend& backend, Communicator& comm, const std::vector<int32_t>& token_ids,
                     float* out) const;

  ModelConfig config_;
  ModelShard shard_;
  std::unique_ptr<WeightSource> source_;
  IndexRange vocab_rows_;         // this rank's vocabulary rows (all of them when whole)
  kernels::Weight embed_tokens_;  // [rank's vocabulary rows, H]
  kernels::Weight lm_head_;       // [rank's vocabulary rows, H]; embed_tokens_ when tied
  std::vector<float> final_norm_;  // [H]
  std::vector<DecoderLayerWeights> layers_;
  std::vector<float> rope_inv_freq_;  // [head_dim / 2]
};

}  // namespace duet::worker

#endif  // DUET_WORKER_MODELS_DECODER_MODEL_H_
