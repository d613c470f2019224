#include "worker/generator.h"

#include <numeric>

#include "common/str_cat.h"
#include "common/status_macros.h"

namespace duet::worker {

absl::StatusOr<std::unique_ptr<Generator>> Generator::Create(const DecoderModel& model,
                                                             kernels::Backend& backend,
                                                             const GeneratorOptions& options) {
  if (options.block_size <= 0) return absl::InvalidArgumentError("block_size must be positive");
  if (options.comm == nullptr && !model.shard().is_whole()) {
    return absl::InvalidArgumentError("a sharded model needs a communicator");
  }
  GeneratorOptions resolved = options;
  const int64_t max_positions = model.config().max_position_embeddings;
  if (resolved.num_blocks <= 0) {
    resolved.num_blocks = static_cast<int32_t>((max_positions + options.block_size - 1) / options.block_size);
  }
  if (resolved.block_order.empty()) {
    resolved.block_order.resize(resolved.num_blocks);
    std::iota(resolved.block_order.begin(), resolved.block_order.end(), 0);
  }
  for (int32_t block : resolved.block_order) {
    if (block < 0 || block >= resolved.num_blocks) {
      return absl::InvalidArgumentError(StrCat("block ", block, " is outside the cache"));
    }
  }
  auto cache = std::make_unique<KvCache>(model.config().num_hidden_layers,
                                         model.KvLayout(resolved.num_blocks, resolved.block_size, resolved.kv_dtype));
  return std::unique_ptr<Generator>(new Generator(model, backend, resolved, std::move(cache)));
}

Generator::Generator(const DecoderModel& model, kernels::Backend& backend,
                     const GeneratorOptions& options, std::unique_ptr<KvCache> cache)
    : model_(model), backend_(backend), options_(options), cache_(std::move(cache)) {}

absl::StatusOr<std::vector<float>> Generator::Append(const std::vector<int32_t>& tokens,
                                                     bool all_logits) {
  if (tokens.empty()) return absl::InvalidArgumentError("no tokens to append");
  const int64_t block_size = options_.block_size;
  const int64_t new_total = num_tokens_ + static_cast<int64_t>(tokens.size());
  const int64_t blocks_needed = (new_total + block_size - 1) / block_size;
  if (blocks_needed > static_cast<int64_t>(options_.block_order.size())) {
    return absl::ResourceExhaustedError(
        StrCat("sequence of ", new_total, " tokens does not fit the KV cache"));
  }
  while (static_cast<int64_t>(block_table_.size()) < blocks_needed) {
    block_table_.push_back(options_.block_order[block_table_.size()]);
  }

  ForwardBatch batch;
  batch.token_ids = tokens;
  for (int64_t i = 0; i < static_cast<int64_t>(tokens.size()); ++i) {
    const int64_t position = num_tokens_ + i;
    batch.positions.push_back(static_cast<int32_t>(position));
    batch.slots.push_back(static_cast<int32_t>(block_table_[position / block_size] * block_size +
                                               position % block_size));
    if (all_logits || i + 1 == static_cast<int64_t>(tokens.size())) {
      batch.logit_rows.push_back(static_cast<int32_t>(i));
    }
  }
  batch.query_start = {0, static_cast<int32_t>(tokens.size())};
  batch.context_len = {static_cast<int32_t>(new_total)};
  batch.block_tables = block_table_;
  batch.max_blocks_per_seq = static_cast<int32_t>(block_table_.size());

  std::vector<float> logits(batch.logit_rows.size() * model_.config().vocab_size);
  if (options_.comm != nullptr) {
    DUET_RETURN_IF_ERROR(model_.Forward(backend_, *options_.comm, batch, *cache_, logits.data()));
  } else {
    DUET_RETURN_IF_ERROR(model_.Forward(backend_, batch, *cache_, logits.data()));
  }
  num_tokens_ = new_total;
  return logits;
}

}  // namespace duet::worker
