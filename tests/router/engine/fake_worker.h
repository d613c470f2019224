// A WorkerClient that keeps the worker contract as strictly as a real worker
// and whose "model" can only be right if the router's KV bookkeeping is:
// every token run is written into a simulated KV pool at its block and
// slot, and the next token is a hash of the history read back through the
// sequence's block table. Shared prefix blocks, recompute after preemption
// and block tables are thereby checked end to end: wrong bookkeeping gives
// different tokens, and writing a block another live sequence uses is
// rejected.
//
// Greedy (temperature 0): the token depends on the history only. Sampled:
// also on the seed and the output index, like the real sampler, so results
// do not depend on batching or preemption.
//
// Thread-compatible (the engine's step thread); counters are atomic so a
// test may read them while the engine runs.
#ifndef DUET_TESTS_ROUTER_ENGINE_FAKE_WORKER_H_
#define DUET_TESTS_ROUTER_ENGINE_FAKE_WORKER_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "common/str_cat.h"
#include "router/workers/worker_client.h"

namespace duet::testing {

struct FakeWorkerOptions {
  int32_t num_blocks = 64;
  int32_t block_size = 16;
  // Tokens come from [first_token, first_token + num_tokens) (printable
  // ASCII in the tests' byte tokenizer), or eos_token_id.
  int32_t first_token = 'a';
  int32_t num_tokens = 26;
  int32_t eos_token_id = -1;  // < 0: never
  // One history in eos_period ends with EOS (when eos_token_id >= 0).
  int32_t eos_period = 0;
  // Read the whole history back from the KV pool for every sample, and
  // check every request against the contract; both off for benchmarks,
  // where only the last token is hashed.
  bool read_history = true;
  bool check_requests = true;
  // Sample the hashed token even where an allowed-token mask excludes it
  // (a broken worker); otherwise a masked row takes an allowed id chosen by
  // the same hash.
  bool ignore_masks = false;
};

class FakeWorker : public router::WorkerClient {
 public:
  struct Shared {
    std::atomic<int64_t> num_steps{0};
    std::atomic<int32_t> max_batch_seqs{0};
    std::atomic<int32_t> num_live_seqs{0};
    // Step() fails with Unavailable once num_steps reaches this (and keeps
    // failing until Reinitialize).
    std::atomic<int64_t> fail_at_step{-1};
    std::atomic<int32_t> num_reinitializations{0};
    // Each step takes at least this long.
    std::atomic<int32_t> step_delay_ms{0};
    // What each step's result reports as the workers' compute time.
    std::atomic<int64_t> compute_micros{0};
  };

  explicit FakeWorker(const FakeWorkerOptions& options, std::shared_ptr<Shared> shared = nullptr)
      : options_(options),
        shared_(shared ? std::move(shared) : std::make_shared<Shared>()),
        kv_(static_cast<size_t>(options.num_blocks) * options.block_size, -1) {}

  const std::shared_ptr<Shared>& shared() const { return shared_; }

  absl::StatusOr<worker::v1::StepResult> Step(const worker::v1::StepRequest& request) override {
    const int64_t step = shared_->num_steps.fetch_add(1);
    if (shared_->step_delay_ms > 0) absl::SleepFor(absl::Milliseconds(shared_->step_delay_ms.load()));
    if (broken_ || (shared_->fail_at_step >= 0 && step >= shared_->fail_at_step)) {
      broken_ = true;
      sequences_.clear();
      shared_->num_live_seqs = 0;
      return absl::UnavailableError("rank 1 (fake) stopped answering");
    }
    if (options_.check_requests) {
      absl::Status valid = Validate(request);
      if (!valid.ok()) return absl::InvalidArgumentError(valid.message());
    }
    for (uint64_t id : request.finished_seq_ids()) sequences_.erase(id);
    for (const worker::v1::NewSequence& added : request.new_sequences()) {
      Seq& seq = sequences_[added.seq_id()];
      seq.sampling = added.sampling();
      seq.num_prompt_tokens = added.prompt_token_ids_size();
    }
    shared_->num_live_seqs = static_cast<int32_t>(sequences_.size());
    shared_->max_batch_seqs = std::max<int32_t>(shared_->max_batch_seqs, request.scheduled_size());
    worker::v1::StepResult result;
    result.set_step_id(request.step_id());
    result.set_compute_micros(static_cast<uint64_t>(shared_->compute_micros.load()));
    for (const worker::v1::ScheduledSequence& scheduled : request.scheduled()) {
      Seq& seq = sequences_.at(scheduled.seq_id());
      seq.block_ids.insert(seq.block_ids.end(), scheduled.new_block_ids().begin(),
                           scheduled.new_block_ids().end());
      for (int i = 0; i < scheduled.token_ids_size(); ++i) {
        kv_[Slot(seq, scheduled.start_position() + i)] = scheduled.token_ids(i);
      }
      seq.num_computed = scheduled.start_position() + scheduled.token_ids_size();
      if (scheduled.sample()) {
        worker::v1::SampledToken* sampled = result.add_sampled();
        sampled->set_seq_id(scheduled.seq_id());
        sampled->set_token_id(NextToken(seq, scheduled.allowed_token_mask()));
        if (seq.sampling.has_top_logprobs()) {
          sampled->set_logprob(-0.25f);
          for (uint32_t k = 0; k < seq.sampling.top_logprobs(); ++k) {
            worker::v1::TopLogprob* top = sampled->add_top_logprobs();
            top->set_token_id(k == 0 ? sampled->token_id() : options_.first_token + static_cast<int32_t>(k));
            top->set_logprob(-0.25f - static_cast<float>(k));
          }
        }
      }
    }
    return result;
  }

  absl::Status Reinitialize() override {
    broken_ = false;
    shared_->fail_at_step = -1;
    sequences_.clear();
    ++shared_->num_reinitializations;
    return absl::OkStatus();
  }

 private:
  struct Seq {
    worker::v1::SamplingParams sampling;
    int32_t num_prompt_tokens = 0;
    int32_t num_computed = 0;
    std::vector<uint32_t> block_ids;
  };

  size_t Slot(const Seq& seq, int32_t position) const {
    return static_cast<size_t>(seq.block_ids[position / options_.block_size]) * options_.block_size +
           position % options_.block_size;
  }

  // Everything a real worker rejects, plus writes into a block that another
  // live sequence holds.
  absl::Status Validate(const worker::v1::StepRequest& request) const {
    absl::flat_hash_map<uint64_t, const worker::v1::NewSequence*> added;
    for (const worker::v1::NewSequence& seq : request.new_sequences()) {
      if (sequences_.contains(seq.seq_id()) &&
          std::find(request.finished_seq_ids().begin(), request.finished_seq_ids().end(), seq.seq_id()) ==
              request.finished_seq_ids().end()) {
        return absl::InvalidArgumentError(StrCat("sequence ", seq.seq_id(), " already exists"));
      }
      added[seq.seq_id()] = &seq;
    }
    // Blocks of every live sequence after this step's additions.
    absl::flat_hash_map<uint32_t, int32_t> holders;
    absl::flat_hash_map<uint64_t, std::vector<uint32_t>> tables;
    for (const auto& [id, seq] : sequences_) {
      if (std::find(request.finished_seq_ids().begin(), request.finished_seq_ids().end(), id) !=
          request.finished_seq_ids().end()) {
        continue;
      }
      tables[id] = seq.block_ids;
    }
    for (const auto& [id, seq] : added) tables[id];
    for (const worker::v1::ScheduledSequence& scheduled : request.scheduled()) {
      auto it = tables.find(scheduled.seq_id());
      if (it == tables.end()) return absl::InvalidArgumentError(StrCat("unknown sequence ", scheduled.seq_id()));
      for (uint32_t block : scheduled.new_block_ids()) {
        if (block >= static_cast<uint32_t>(options_.num_blocks)) {
          return absl::InvalidArgumentError(StrCat("block ", block, " outside the pool"));
        }
        it->second.push_back(block);
      }
    }
    for (const auto& [id, table] : tables) {
      for (uint32_t block : table) ++holders[block];
    }
    for (const worker::v1::ScheduledSequence& scheduled : request.scheduled()) {
      const std::vector<uint32_t>& table = tables[scheduled.seq_id()];
      const auto existing = sequences_.find(scheduled.seq_id());
      const int32_t computed = existing == sequences_.end() || added.contains(scheduled.seq_id())
                                   ? -1
                                   : existing->second.num_computed;
      const int32_t start = static_cast<int32_t>(scheduled.start_position());
      if (computed >= 0 && start != computed) {
        return absl::InvalidArgumentError(StrCat("sequence ", scheduled.seq_id(), " starts at ", start,
                                                 " but has KV for ", computed, " tokens"));
      }
      const int32_t end = start + scheduled.token_ids_size();
      if (end > static_cast<int32_t>(table.size()) * options_.block_size) {
        return absl::InvalidArgumentError(StrCat("sequence ", scheduled.seq_id(), " has too few blocks"));
      }
      for (int32_t pos = start; pos < end; ++pos) {
        const uint32_t block = table[pos / options_.block_size];
        if (holders[block] > 1) {
          return absl::InvalidArgumentError(StrCat("sequence ", scheduled.seq_id(), " writes block ", block,
                                                   " which another sequence holds"));
        }
      }
    }
    return absl::OkStatus();
  }

  int32_t NextToken(const Seq& seq, const std::string& mask) const {
    const int32_t token = HashedToken(seq);
    if (mask.empty() || options_.ignore_masks) return token;
    auto allowed = [&](int32_t id) { return id / 8 < static_cast<int32_t>(mask.size()) && ((mask[id / 8] >> (id % 8)) & 1); };
    if (allowed(token)) return token;
    std::vector<int32_t> ids;
    for (int32_t id = 0; id < static_cast<int32_t>(mask.size()) * 8; ++id) {
      if (allowed(id)) ids.push_back(id);
    }
    return ids.empty() ? token : ids[static_cast<uint32_t>(token * 2654435761u) % ids.size()];
  }

  int32_t HashedToken(const Seq& seq) const {
    uint64_t hash = 0x12345;
    const int32_t from = options_.read_history ? 0 : seq.num_computed - 1;
    for (int32_t pos = from; pos < seq.num_computed; ++pos) {
      hash = (hash ^ static_cast<uint64_t>(kv_[Slot(seq, pos)] + 7)) * 0x100000001b3ULL;
      hash ^= hash >> 29;
    }
    if (seq.sampling.temperature() > 0) {
      const uint64_t output_index = static_cast<uint64_t>(seq.num_computed - seq.num_prompt_tokens);
      hash = (hash ^ seq.sampling.seed()) * 0x9e3779b97f4a7c15ULL;
      hash = (hash ^ output_index) * 0xbf58476d1ce4e5b9ULL;
      hash ^= hash >> 31;
    }
    const bool banned = seq.num_computed - seq.num_prompt_tokens < static_cast<int32_t>(seq.sampling.min_tokens());
    if (options_.eos_token_id >= 0 && options_.eos_period > 0 && hash % options_.eos_period == 0 && !banned) {
      return options_.eos_token_id;
    }
    return options_.first_token + static_cast<int32_t>((hash >> 8) % options_.num_tokens);
  }

  FakeWorkerOptions options_;
  std::shared_ptr<Shared> shared_;
  std::vector<int32_t> kv_;  // token id written at each (block, slot)
  absl::flat_hash_map<uint64_t, Seq> sequences_;
  bool broken_ = false;
};

}  // namespace duet::testing

#endif  // DUET_TESTS_ROUTER_ENGINE_FAKE_WORKER_H_
