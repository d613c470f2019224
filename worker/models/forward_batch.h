// One forward pass over the tokens of several sequences: prefill chunks and
// decode tokens mixed, as the scheduler packs them.
#ifndef DUET_WORKER_MODELS_FORWARD_BATCH_H_
#define DUET_WORKER_MODELS_FORWARD_BATCH_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

namespace duet::worker {

// Sequence s owns token rows [query_start[s], query_start[s + 1]); they sit
// at positions context_len[s] - (its token count) .. context_len[s] - 1 and
// their KV goes to `slots`. Invariants (checked by DecoderModel::Forward):
// sizes agree, ids are in the vocabulary, slots lie in the blocks of the
// sequence's block table.
struct ForwardBatch {
  std::vector<int32_t> token_ids;     // [num_tokens]
  std::vector<int32_t> positions;     // [num_tokens]
  std::vector<int32_t> slots;         // [num_tokens] block_id * block_size + offset
  std::vector<int32_t> query_start;   // [num_seqs + 1]
  std::vector<int32_t> context_len;   // [num_seqs]
  std::vector<int32_t> block_tables;  // [num_seqs, max_blocks_per_seq]
  int32_t max_blocks_per_seq = 0;
  std::vector<int32_t> logit_rows;    // [num_logit_rows] token rows whose logits are wanted

  int64_t num_tokens() const { return static_cast<int64_t>(token_ids.size()); }
  int64_t num_seqs() const { return static_cast<int64_t>(context_len.size()); }
};

// Called with every named intermediate tensor of a forward pass (e.g.
// "layers.3.attn_out", [num_tokens, hidden]) for debugging dumps.
using TensorObserver =
    std::function<void(std::string_view name, const float* data, std::span<const int64_t> shape)>;

}  // namespace duet::worker

#endif  // DUET_WORKER_MODELS_FORWARD_BATCH_H_
