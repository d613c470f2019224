#include "worker/models/decoder_model.h"

#include <algorithm>

#include "common/str_cat.h"
#include "common/status_macros.h"
#include "glog/logging.h"
#include "kernels/rope.h"

namespace duet::worker {
namespace {

// Progress lines start once this much is loaded, so small models load quietly.
constexpr uint64_t kProgressLogBytes = uint64_t{256} << 20;

absl::StatusOr<std::vector<float>> RopeFrequencies(const ModelConfig& config) {
  kernels::RopeConfig rope;
  rope.theta = config.rope_theta;
  rope.rotary_dim = static_cast<int32_t>(config.head_dim);
  if (config.rope_scaling.has_value()) {
    rope.llama3 = kernels::Llama3RopeScaling{
        .factor = config.rope_scaling->factor,
        .low_freq_factor = config.rope_scaling->low_freq_factor,
        .high_freq_factor = config.rope_scaling->high_freq_factor,
        .original_max_position_embeddings = config.rope_scaling->original_max_position_embeddings};
  }
  absl::StatusOr<std::vector<float>> inv_freq = kernels::RopeInvFreq(rope);
  if (!inv_freq.ok() || config.rope_freq_factors.empty()) return inv_freq;
  if (config.rope_freq_factors.size() != inv_freq->size()) {
    return absl::InvalidArgumentError(StrCat("rope frequency factors: ", config.rope_freq_factors.size(),
                                             " for ", inv_freq->size(), " frequencies"));
  }
  for (size_t i = 0; i < inv_freq->size(); ++i) (*inv_freq)[i] /= config.rope_freq_factors[i];
  return inv_freq;
}

absl::Status BatchError(const std::string& what) {
  return absl::InvalidArgumentError(StrCat("forward batch: ", what));
}

}  // namespace

absl::Status LoadDenseFeedForward(WeightSource& source, const ModelConfig& config,
                                  const ModelShard& shard, int64_t layer,
                                  DecoderLayerWeights* weights) {
  DUET_ASSIGN_OR_RETURN(weights->mlp,
                        LoadGatedMlp(source, StrCat("model.layers.", layer, ".mlp"),
                                     config.hidden_size, config.intermediate_size,
                                     shard.Even(config.intermediate_size)));
  return absl::OkStatus();
}

DecoderModel::DecoderModel(const ModelConfig& config, const ModelShard& shard,
                           std::unique_ptr<WeightSource> source)
    : config_(config), shard_(shard), source_(std::move(source)) {}

absl::StatusOr<std::unique_ptr<DecoderModel>> DecoderModel::Load(
    const ModelConfig& config, const ModelShard& shard, std::unique_ptr<WeightSource> source,
    const FeedForwardLoader& load_feed_forward) {
  DUET_RETURN_IF_ERROR(ValidateShard(config, shard));
  std::unique_ptr<DecoderModel> model(new DecoderModel(config, shard, std::move(source)));
  WeightSource& weights = *model->source_;
  const int64_t hidden = config.hidden_size;

  DUET_ASSIGN_OR_RETURN(model->rope_inv_freq_, RopeFrequencies(config));
  // Embeddings and lm_head are split by vocabulary rows, like the logits.
  model->vocab_rows_ = shard.Vocab(config.vocab_size);
  DUET_ASSIGN_OR_RETURN(model->embed_tokens_,
                        weights.GetMatrixRows("model.embed_tokens.weight", config.vocab_size, hidden,
                                              model->vocab_rows_));
  model->layers_.resize(config.num_hidden_layers);
  for (int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
    const std::string prefix = StrCat("model.layers.", layer);
    DecoderLayerWeights& layer_weights = model->layers_[layer];
    DUET_ASSIGN_OR_RETURN(layer_weights.input_norm,
                          weights.GetVector(prefix + ".input_layernorm.weight", hidden));
    DUET_ASSIGN_OR_RETURN(layer_weights.post_attention_norm,
                          weights.GetVector(prefix + ".post_attention_layernorm.weight", hidden));
    DUET_ASSIGN_OR_RETURN(layer_weights.attention,
                          LoadAttention(weights, prefix + ".self_attn", config, shard));
    DUET_RETURN_IF_ERROR(load_feed_forward(weights, config, shard, layer, &layer_weights));
    CHECK(layer_weights.mlp.has_value() != layer_weights.moe.has_value())
        << "a feed-forward loader must set exactly one of mlp and moe";
    const int64_t log_every = std::max<int64_t>(1, config.num_hidden_layers / 10);
    if (weights.bytes_loaded() >= kProgressLogBytes &&
        ((layer + 1) % log_every == 0 || layer + 1 == config.num_hidden_layers)) {
      LOG(INFO) << "loaded layer " << layer + 1 << "/" << config.num_hidden_layers << " ("
                << weights.bytes_loaded() / (1 << 20) << " MiB)";
    }
  }
  DUET_ASSIGN_OR_RETURN(model->final_norm_, weights.GetVector("model.norm.weight", hidden));
  if (config.tie_word_embeddings) {
    model->lm_head_ = model->embed_tokens_;
  } else {
    DUET_ASSIGN_OR_RETURN(model->lm_head_, weights.GetMatrixRows("lm_head.weight", config.vocab_size,
                                                                 hidden, model->vocab_rows_));
  }
  return model;
}

kernels::KvCacheLayout DecoderModel::KvLayout(int32_t num_blocks, int32_t block_size,
                                              kernels::KvDtype dtype) const {
  return kernels::KvCacheLayout{.num_blocks = num_blocks,
                                .block_size = block_size,
                                .num_kv_heads = static_cast<int32_t>(shard_.KvHeads(config_).count),
                                .head_dim = static_cast<int32_t>(config_.head_dim),
                                .dtype = dtype};
}

absl::Status DecoderModel::ValidateBatch(const ForwardBatch& batch, const KvCache& cache) const {
  const int64_t num_tokens = batch.num_tokens();
  const int64_t num_seqs = batch.num_seqs();
  if (batch.positions.size() != batch.token_ids.size() ||
      batch.slots.size() != batch.token_ids.size()) {
    return BatchError("token_ids, positions and slots differ in length");
  }
  if (static_cast<int64_t>(batch.query_start.size()) != num_seqs + 1 ||
      batch.query_start.front() != 0 || batch.query_start.back() != num_tokens) {
    return BatchError("query_start must have num_seqs + 1 entries from 0 to num_tokens");
  }
  if (static_cast<int64_t>(batch.block_tables.size()) != num_seqs * batch.max_blocks_per_seq) {
    return BatchError("block_tables must hold num_seqs * max_blocks_per_seq entries");
  }
  const kernels::KvCacheLayout& layout = cache.layout();
  const int64_t num_slots = static_cast<int64_t>(layout.num_blocks) * layout.block_size;
  for (int64_t s = 0; s < num_seqs; ++s) {
    const int32_t num_queries = batch.query_start[s + 1] - batch.query_start[s];
    if (num_queries < 0 || batch.context_len[s] < num_queries ||
        batch.context_len[s] > int64_t{batch.max_blocks_per_seq} * layout.block_size) {
      return BatchError(StrCat("sequence ", s, " has an inconsistent context length"));
    }
  }
  for (int64_t t = 0; t < num_tokens; ++t) {
    if (batch.token_ids[t] < 0 || batch.token_ids[t] >= config_.vocab_size) {
      return BatchError(StrCat("token id ", batch.token_ids[t], " is outside the vocabulary of ",
                                     config_.vocab_size));
    }
    if (batch.slots[t] < 0 || batch.slots[t] >= num_slots) {
      return BatchError(StrCat("KV slot ", batch.slots[t], " is outside the cache"));
    }
    if (batch.positions[t] < 0) return BatchError("negative position");
  }
  for (int32_t block : batch.block_tables) {
    if (block < 0 || block >= layout.num_blocks) {
      return BatchError(StrCat("KV block ", block, " is outside the cache"));
    }
  }
  for (int32_t row : batch.logit_rows) {
    if (row < 0 || row >= num_tokens) return BatchError("logit row outside the batch");
  }
  return absl::OkStatus();
}

absl::Status DecoderModel::Forward(kernels::Backend& backend, const ForwardBatch& batch,
                                   KvCache& cache, float* logits,
                                   const TensorObserver* observer) const {
  CHECK(shard_.is_whole()) << "a sharded model needs its communicator";
  std::unique_ptr<Communicator> local = MakeLocalCommunicator();
  return Forward(backend, *local, batch, cache, logits, observer);
}

absl::Status DecoderModel::Embed(kernels::Backend& backend, Communicator& comm,
                                 const std::vector<int32_t>& token_ids, float* out) const {
  const int64_t num_tokens = static_cast<int64_t>(token_ids.size());
  const int64_t hidden = config_.hidden_size;
  if (shard_.is_whole()) {
    backend.Embedding(token_ids.data(), num_tokens, embed_tokens_, out);
    return absl::OkStatus();
  }
  // Each rank looks up the tokens in its rows and leaves the others zero;
  // the sum over ranks is the whole lookup (exact: one term is non-zero).
  std::vector<int32_t> local_ids;    // row within this rank's table
  std::vector<int64_t> positions;    // where in the batch
  for (int64_t t = 0; t < num_tokens; ++t) {
    const int64_t row = token_ids[t] - vocab_rows_.begin;
    if (row >= 0 && row < vocab_rows_.count) {
      local_ids.push_back(static_cast<int32_t>(row));
      positions.push_back(t);
    }
  }
  std::fill_n(out, num_tokens * hidden, 0.0f);
  if (!local_ids.empty()) {
    std::vector<float> rows(local_ids.size() * hidden);  // [local tokens, H]
    backend.Embedding(local_ids.data(), static_cast<int64_t>(local_ids.size()), embed_tokens_, rows.data());
    for (size_t i = 0; i < positions.size(); ++i) {
      std::copy_n(rows.data() + i * hidden, hidden, out + positions[i] * hidden);
    }
  }
  return comm.AllReduceSum(out, num_tokens * hidden);
}

absl::Status DecoderModel::Forward(kernels::Backend& backend, Communicator& comm,
                                   const ForwardBatch& batch, KvCache& cache, float* logits,
                                   const TensorObserver* observer) const {
  CHECK_EQ(comm.world_size(), shard_.world_size);
  CHECK_EQ(comm.rank(), shard_.rank);
  DUET_RETURN_IF_ERROR(ValidateBatch(batch, cache));
  const int64_t num_tokens = batch.num_tokens();
  const int64_t hidden = config_.hidden_size;
  const float eps = static_cast<float>(config_.rms_norm_eps);
  const kernels::AttentionBatch attention_batch{
      .num_seqs = static_cast<int32_t>(batch.num_seqs()),
      .query_start = batch.query_start.data(),
      .context_len = batch.context_len.data(),
      .block_tables = batch.block_tables.data(),
      .max_blocks_per_seq = batch.max_blocks_per_seq};
  const LayerContext context{.backend = backend,
                             .config = config_,
                             .batch = batch,
                             .attention_batch = attention_batch,
                             .rope_inv_freq = rope_inv_freq_,
                             .kv_cache = cache,
                             .comm = comm,
                             .observer = observer};

  std::vector<float> residual(num_tokens * hidden);  // [T, H]
  std::vector<float> normed(num_tokens * hidden);    // [T, H]
  std::vector<float> branch(num_tokens * hidden);    // [T, H]
  DUET_RETURN_IF_ERROR(Embed(backend, comm, batch.token_ids, residual.data()));
  context.Observe("embeddings", residual.data(), num_tokens, hidden);

  for (int64_t layer = 0; layer < config_.num_hidden_layers; ++layer) {
    const DecoderLayerWeights& weights = layers_[layer];
    backend.RmsNorm(residual.data(), weights.input_norm.data(), normed.data(), num_tokens, hidden, eps);
    DUET_RETURN_IF_ERROR(
        AttentionForward(context, layer, weights.attention, normed.data(), branch.data()));
    context.Observe(StrCat("layers.", layer, ".attn_out"), branch.data(), num_tokens, hidden);
    backend.Add(residual.data(), branch.data(), residual.data(), num_tokens * hidden);

    backend.RmsNorm(residual.data(), weights.post_attention_norm.data(), normed.data(), num_tokens,
                    hidden, eps);
    if (weights.moe.has_value()) {
      DUET_RETURN_IF_ERROR(MoeForward(context, layer, *weights.moe, normed.data(), branch.data()));
    } else {
      DUET_RETURN_IF_ERROR(DenseMlpForward(context, *weights.mlp, normed.data(), branch.data()));
    }
    context.Observe(StrCat("layers.", layer, ".mlp_out"), branch.data(), num_tokens, hidden);
    backend.Add(residual.data(), branch.data(), residual.data(), num_tokens * hidden);
    context.Observe(StrCat("layers.", layer, ".out"), residual.data(), num_tokens, hidden);
  }

  const int64_t num_logit_rows = static_cast<int64_t>(batch.logit_rows.size());
  std::vector<float> last_hidden(num_logit_rows * hidden);  // [num_logit_rows, H]
  for (int64_t r = 0; r < num_logit_rows; ++r) {
    std::copy_n(residual.data() + batch.logit_rows[r] * hidden, hidden, last_hidden.data() + r * hidden);
  }
  backend.RmsNorm(last_hidden.data(), final_norm_.data(), last_hidden.data(), num_logit_rows, hidden, eps);
  const int64_t vocab = config_.vocab_size;
  if (shard_.is_whole()) {
    backend.Matmul(last_hidden.data(), lm_head_, logits, num_logit_rows);
  } else {
    // Each rank computes its vocabulary rows, zero-padded to the same width;
    // the all-gather lays them out [rank, row, vocab_per_rank].
    const int64_t per_rank = shard_.VocabPerRank(vocab);
    std::vector<float> local(num_logit_rows * per_rank, 0.0f);         // [rows, per_rank]
    std::vector<float> part(num_logit_rows * lm_head_.rows);           // [rows, rank's vocab]
    backend.Matmul(last_hidden.data(), lm_head_, part.data(), num_logit_rows);
    for (int64_t r = 0; r < num_logit_rows; ++r) {
      std::copy_n(part.data() + r * lm_head_.rows, lm_head_.rows, local.data() + r * per_rank);
    }
    std::vector<float> gathered(shard_.world_size * local.size());  // [W, rows, per_rank]
    DUET_RETURN_IF_ERROR(
        comm.AllGather(local.data(), static_cast<int64_t>(local.size()), gathered.data()));
    for (int32_t rank = 0; rank < shard_.world_size; ++rank) {
      const IndexRange columns = ModelShard{.rank = rank, .world_size = shard_.world_size}.Vocab(vocab);
      for (int64_t r = 0; r < num_logit_rows; ++r) {
        std::copy_n(gathered.data() + (rank * num_logit_rows + r) * per_rank, columns.count,
                    logits + r * vocab + columns.begin);
      }
    }
  }
  context.Observe("logits", logits, num_logit_rows, vocab);
  return absl::OkStatus();
}

}  // namespace duet::worker
