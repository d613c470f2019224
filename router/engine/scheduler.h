// Iteration-level continuous batching. Each Schedule() call decides what the
// next step runs:
//   1. every running sequence in admission order: a decode runs its last
//      sampled token; a prefill runs its next chunk from the token budget that
//      the decodes leave (decodes first, then chunked prefill);
//   2. waiting sequences in arrival order (FCFS; the first one that does not
//      fit stops admission), each with its longest cached prefix and a first
//      chunk, while the sequence cap and token budget allow, and (when
//      something runs) watermark_blocks stay free.
// When a running sequence needs a block and none is free, the newest running
// sequence is preempted: its blocks go back (they stay in the prefix cache),
// it returns to the front of the waiting queue and is later recomputed from
// its prompt and outputs. A step that preempts admits nothing new. The oldest
// running sequence always progresses, since one sequence of the longest
// allowed length fits the pool.
//
// Pure: no I/O, no threads, no clock. Thread-compatible, single owner. The
// scheduler holds pointers to sequences it does not own; the owner calls
// Finish before destroying one.
#ifndef DUET_ROUTER_ENGINE_SCHEDULER_H_
#define DUET_ROUTER_ENGINE_SCHEDULER_H_

#include <cstdint>
#include <deque>
#include <vector>

#include "router/engine/block_manager.h"
#include "router/engine/sequence.h"

namespace duet::engine {

struct SchedulerConfig {
  int32_t max_num_seqs = 256;
  // Must be >= max_num_seqs, so that every running decode fits one step.
  int32_t max_num_batched_tokens = 2048;
  // Admission leaves this many blocks free while anything runs, so the
  // running sequences' next blocks do not have to come from preempting the
  // sequence just admitted. An empty engine admits into the whole pool.
  int32_t watermark_blocks = 0;
};

// One sequence's work in a step.
struct ScheduledChunk {
  Sequence* seq = nullptr;
  int32_t start_position = 0;
  int32_t num_tokens = 0;
  // The chunk ends at the sequence's last token: sample the next one.
  bool sample = false;
  // The workers do not hold the sequence yet: send it as a NewSequence.
  bool new_to_workers = false;
  // Blocks the workers have not been told about yet, in table order.
  std::vector<int32_t> new_block_ids;
};

struct SchedulerOutput {
  std::vector<ScheduledChunk> chunks;
  // Sequences preempted by this step whose state the workers must drop.
  std::vector<uint64_t> dropped_seq_ids;
  int32_t num_batched_tokens = 0;
  int32_t num_preempted = 0;
  bool empty() const { return chunks.empty(); }
};

struct SchedulerCounters {
  int64_t num_preemptions = 0;
  // Tokens looked up in the prefix cache at admission, and found there.
  int64_t prefix_cache_queried_tokens = 0;
  int64_t prefix_cache_hit_tokens = 0;
};

class Scheduler {
 public:
  // `blocks` must outlive the scheduler.
  Scheduler(const SchedulerConfig& config, BlockManager* blocks);

  // Queues a sequence (status kWaiting, holding no blocks). at_front: ahead
  // of every other waiting sequence (siblings of a request already admitted).
  void AddWaiting(Sequence* seq, bool at_front = false);

  // Plans the next step. Chunks are in running order, admissions last.
  SchedulerOutput Schedule();

  // The step of `output` ran: its tokens now have KV, and full blocks enter
  // the prefix cache. Call before appending the sampled tokens.
  void OnStepComputed(const SchedulerOutput& output);

  // Removes `seq` from the queues and releases its blocks; status kFinished.
  void Finish(Sequence* seq);

  int32_t num_running() const { return static_cast<int32_t>(running_.size()); }
  int32_t num_waiting() const { return static_cast<int32_t>(waiting_.size()); }
  const std::deque<Sequence*>& running() const { return running_; }
  const std::deque<Sequence*>& waiting() const { return waiting_; }
  const SchedulerCounters& counters() const { return counters_; }
  const SchedulerConfig& config() const { return config_; }

 private:
  void Preempt(Sequence* seq, SchedulerOutput* output);
  void Emit(Sequence* seq, int32_t num_tokens, SchedulerOutput* output);
  void TryAdmit(int32_t* prefill_budget, SchedulerOutput* output);

  SchedulerConfig config_;
  BlockManager* blocks_;
  std::deque<Sequence*> running_;  // admission order
  std::deque<Sequence*> waiting_;  // arrival order; preempted ones in front
  SchedulerCounters counters_;
};

}  // namespace duet::engine

#endif  // DUET_ROUTER_ENGINE_SCHEDULER_H_
