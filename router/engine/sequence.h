// One sequence as the scheduler sees it: its tokens, how many of them the
// workers hold KV for, and its blocks. A request with n samples has n
// sequences.
#ifndef DUET_ROUTER_ENGINE_SEQUENCE_H_
#define DUET_ROUTER_ENGINE_SEQUENCE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "router/engine/block_manager.h"

namespace duet::engine {

enum class SequenceStatus { kWaiting, kRunning, kFinished };

struct Sequence {
  uint64_t seq_id = 0;
  // The prompt, then every output token so far.
  std::vector<int32_t> token_ids;
  int32_t num_prompt_tokens = 0;
  // Tokens whose KV the workers hold; 0 again after a preemption.
  int32_t num_computed_tokens = 0;
  // Prompt tokens taken from the prefix cache when the sequence was first
  // admitted (reported to the client as cached tokens).
  int32_t num_cached_prompt_tokens = 0;
  bool admitted_before = false;
  std::string cache_salt;
  SequenceStatus status = SequenceStatus::kWaiting;
  BlockTable block_table;
  // Whether the workers hold this sequence's state (a NewSequence was sent
  // since it was last admitted), and how many of its blocks they know.
  bool known_to_workers = false;
  int32_t num_blocks_sent = 0;

  int32_t num_tokens() const { return static_cast<int32_t>(token_ids.size()); }
  int32_t num_output_tokens() const { return num_tokens() - num_prompt_tokens; }
  // Decoding: everything but the last sampled token has KV.
  bool is_decoding() const {
    return num_output_tokens() > 0 && num_computed_tokens == num_tokens() - 1;
  }
};

}  // namespace duet::engine

#endif  // DUET_ROUTER_ENGINE_SEQUENCE_H_
