// Single-sequence generation on one process: prefill (optionally in chunks)
// then decode, with the sequence's KV in a paged cache. Used by
// `duet generate` and by the golden tests; the serving path schedules many
// sequences through the router instead.
#ifndef DUET_WORKER_GENERATOR_H_
#define DUET_WORKER_GENERATOR_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/ops.h"
#include "worker/comm/communicator.h"
#include "worker/kv_cache.h"
#include "worker/models/decoder_model.h"

namespace duet::worker {

struct GeneratorOptions {
  int32_t block_size = 16;
  // Order in which the sequence takes the cache's blocks; empty: 0, 1, 2, ...
  // Tests pass a shuffled order so block tables are not contiguous.
  std::vector<int32_t> block_order;
  int32_t num_blocks = 0;  // 0: enough for max_position_embeddings
  kernels::KvDtype kv_dtype = kernels::KvDtype::kFloat32;
  // Connects the ranks of a sharded model (borrowed); null for a whole model.
  Communicator* comm = nullptr;
};

// Not thread-safe. Borrows the model and the backend, which must outlive it.
class Generator {
 public:
  static absl::StatusOr<std::unique_ptr<Generator>> Create(const DecoderModel& model,
                                                           kernels::Backend& backend,
                                                           const GeneratorOptions& options);

  // Appends `tokens` to the sequence and runs them in one forward pass.
  // Returns the logits of every appended token when all_logits, otherwise of
  // the last one: [rows, vocab].
  absl::StatusOr<std::vector<float>> Append(const std::vector<int32_t>& tokens, bool all_logits);

  // Tokens run so far.
  int64_t num_tokens() const { return num_tokens_; }

 private:
  Generator(const DecoderModel& model, kernels::Backend& backend, const GeneratorOptions& options,
            std::unique_ptr<KvCache> cache);

  const DecoderModel& model_;
  kernels::Backend& backend_;
  GeneratorOptions options_;
  std::unique_ptr<KvCache> cache_;
  std::vector<int32_t> block_table_;  // blocks taken so far
  int64_t num_tokens_ = 0;
};

}  // namespace duet::worker

#endif  // DUET_WORKER_GENERATOR_H_
