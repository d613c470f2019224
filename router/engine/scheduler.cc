#include "router/engine/scheduler.h"

#include <algorithm>

#include "glog/logging.h"

namespace duet::engine {

Scheduler::Scheduler(const SchedulerConfig& config, BlockManager* blocks)
    : config_(config), blocks_(blocks) {
  CHECK_GE(config.max_num_seqs, 1);
  CHECK_GE(config.max_num_batched_tokens, config.max_num_seqs);
}

void Scheduler::AddWaiting(Sequence* seq, bool at_front) {
  CHECK_EQ(seq->block_table.num_blocks(), 0);
  seq->status = SequenceStatus::kWaiting;
  if (at_front) waiting_.push_front(seq);
  else waiting_.push_back(seq);
}

SchedulerOutput Scheduler::Schedule() {
  SchedulerOutput output;
  const int32_t block_size = blocks_->block_size();
  int32_t num_decodes = 0;
  for (const Sequence* seq : running_) num_decodes += seq->is_decoding() ? 1 : 0;
  int32_t prefill_budget = config_.max_num_batched_tokens - num_decodes;

  // Running sequences, oldest first. Preemption takes from the back, so a
  // sequence already given work this step is never preempted.
  for (size_t i = 0; i < running_.size(); ++i) {
    Sequence* seq = running_[i];
    const bool decoding = seq->is_decoding();
    int32_t num_tokens = 1;
    if (!decoding) {
      num_tokens = std::min(seq->num_tokens() - seq->num_computed_tokens, prefill_budget);
      if (num_tokens <= 0) continue;
    }
    bool preempted_self = false;
    // A decode needs its next token's block; a prefill chunk takes what fits.
    while (true) {
      const int32_t capacity_tokens =
          (seq->block_table.num_blocks() + blocks_->num_free_blocks()) * block_size -
          seq->num_computed_tokens;
      if (capacity_tokens >= 1) {
        num_tokens = std::min(num_tokens, capacity_tokens);
        break;
      }
      Sequence* victim = running_.back();
      if (victim == seq) {
        preempted_self = true;
        Preempt(victim, &output);
        break;
      }
      Preempt(victim, &output);
    }
    if (preempted_self) break;
    Emit(seq, num_tokens, &output);
    if (!decoding) prefill_budget -= num_tokens;
  }
  if (output.num_preempted == 0) TryAdmit(&prefill_budget, &output);
  return output;
}

void Scheduler::TryAdmit(int32_t* prefill_budget, SchedulerOutput* output) {
  const int32_t block_size = blocks_->block_size();
  while (!waiting_.empty() && *prefill_budget > 0 &&
         num_running() < config_.max_num_seqs) {
    Sequence* seq = waiting_.front();
    // At least the last token runs, to give logits to sample from.
    const PrefixMatch match = blocks_->Match(seq->cache_salt, seq->token_ids, seq->num_tokens() - 1);
    const int32_t num_cached_tokens = match.num_tokens(block_size);
    const int32_t reserve = running_.empty() ? 0 : config_.watermark_blocks;
    const int32_t blocks_available = blocks_->num_free_blocks() - match.num_free_blocks +
                                     static_cast<int32_t>(match.block_ids.size()) - reserve;
    const int32_t num_tokens = std::min({seq->num_tokens() - num_cached_tokens, *prefill_budget,
                                         blocks_available * block_size - num_cached_tokens});
    if (num_tokens <= 0) break;  // FCFS: nobody overtakes the head of the queue
    blocks_->Allocate(&seq->block_table, match, num_cached_tokens + num_tokens);
    counters_.prefix_cache_queried_tokens += seq->num_tokens();
    counters_.prefix_cache_hit_tokens += num_cached_tokens;
    if (!seq->admitted_before) {
      seq->num_cached_prompt_tokens = std::min(num_cached_tokens, seq->num_prompt_tokens);
      seq->admitted_before = true;
    }
    seq->num_computed_tokens = num_cached_tokens;
    seq->status = SequenceStatus::kRunning;
    waiting_.pop_front();
    running_.push_back(seq);
    Emit(seq, num_tokens, output);
    *prefill_budget -= num_tokens;
  }
}

void Scheduler::Emit(Sequence* seq, int32_t num_tokens, SchedulerOutput* output) {
  const int32_t end = seq->num_computed_tokens + num_tokens;
  blocks_->Grow(&seq->block_table, end);
  ScheduledChunk chunk;
  chunk.seq = seq;
  chunk.start_position = seq->num_computed_tokens;
  chunk.num_tokens = num_tokens;
  chunk.sample = end == seq->num_tokens();
  chunk.new_to_workers = !seq->known_to_workers;
  const std::vector<int32_t>& table = seq->block_table.block_ids();
  chunk.new_block_ids.assign(table.begin() + seq->num_blocks_sent, table.end());
  seq->known_to_workers = true;
  seq->num_blocks_sent = seq->block_table.num_blocks();
  output->num_batched_tokens += num_tokens;
  output->chunks.push_back(std::move(chunk));
}

void Scheduler::Preempt(Sequence* seq, SchedulerOutput* output) {
  CHECK(!running_.empty() && running_.back() == seq);
  running_.pop_back();
  seq->block_table.Release();
  seq->num_computed_tokens = 0;
  seq->num_blocks_sent = 0;
  if (seq->known_to_workers) output->dropped_seq_ids.push_back(seq->seq_id);
  seq->known_to_workers = false;
  seq->status = SequenceStatus::kWaiting;
  waiting_.push_front(seq);
  ++output->num_preempted;
  ++counters_.num_preemptions;
}

void Scheduler::OnStepComputed(const SchedulerOutput& output) {
  for (const ScheduledChunk& chunk : output.chunks) {
    Sequence* seq = chunk.seq;
    if (seq->status != SequenceStatus::kRunning) continue;  // finished meanwhile
    seq->num_computed_tokens = chunk.start_position + chunk.num_tokens;
    blocks_->CacheComputedBlocks(&seq->block_table, seq->cache_salt, seq->token_ids,
                                 seq->num_computed_tokens);
  }
}

void Scheduler::Finish(Sequence* seq) {
  auto drop = [seq](std::deque<Sequence*>& queue) {
    auto it = std::find(queue.begin(), queue.end(), seq);
    if (it != queue.end()) queue.erase(it);
  };
  if (seq->status == SequenceStatus::kRunning) drop(running_);
  else if (seq->status == SequenceStatus::kWaiting) drop(waiting_);
  seq->block_table.Release();
  seq->status = SequenceStatus::kFinished;
}

}  // namespace duet::engine
