// Scheduler tests as per-step tables: what each step runs (sequence, start
// position + tokens, "s" when it samples, the new block ids), which
// sequences it preempts ("-B"), and how many blocks are free afterwards.
#include "router/engine/scheduler.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "common/str_cat.h"
#include "gtest/gtest.h"

namespace duet::engine {
namespace {

struct Row {
  std::string scheduled;  // e.g. "A0+8[0,1] B0+6s[3,4]"
  int32_t num_free_blocks;
};

class SchedulerTableTest : public ::testing::Test {
 protected:
  void Start(SchedulerConfig config, int32_t num_blocks, int32_t block_size, bool prefix_caching) {
    blocks_ = std::make_unique<BlockManager>(num_blocks, block_size, prefix_caching);
    scheduler_ = std::make_unique<Scheduler>(config, blocks_.get());
  }
  void TearDown() override {
    for (auto& [name, seq] : sequences_) scheduler_->Finish(seq.get());
  }

  Sequence* Add(const std::string& name, std::vector<int32_t> prompt) {
    auto seq = std::make_unique<Sequence>();
    seq->seq_id = sequences_.size() + 1;
    seq->num_prompt_tokens = static_cast<int32_t>(prompt.size());
    seq->token_ids = std::move(prompt);
    names_[seq->seq_id] = name;
    scheduler_->AddWaiting(seq.get());
    return (sequences_[name] = std::move(seq)).get();
  }

  // Runs one step: schedules, "computes" it, appends a token to every
  // sampled sequence; returns the step as a table row.
  Row Step() {
    SchedulerOutput output = scheduler_->Schedule();
    std::vector<std::string> parts;
    for (const ScheduledChunk& chunk : output.chunks) {
      std::string part = StrCat(names_[chunk.seq->seq_id], chunk.start_position, "+", chunk.num_tokens,
                                chunk.sample ? "s" : "");
      if (!chunk.new_block_ids.empty()) part += StrCat("[", absl::StrJoin(chunk.new_block_ids, ","), "]");
      parts.push_back(part);
    }
    for (uint64_t id : output.dropped_seq_ids) parts.push_back("-" + names_[id]);
    scheduler_->OnStepComputed(output);
    for (const ScheduledChunk& chunk : output.chunks) {
      if (chunk.sample) chunk.seq->token_ids.push_back(next_token_++);
    }
    return Row{absl::StrJoin(parts, " "), blocks_->num_free_blocks()};
  }

  void ExpectSteps(const std::vector<Row>& rows) {
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row row = Step();
      EXPECT_EQ(row.scheduled, rows[i].scheduled) << "step " << i + 1;
      EXPECT_EQ(row.num_free_blocks, rows[i].num_free_blocks) << "step " << i + 1;
    }
  }

  std::unique_ptr<BlockManager> blocks_;
  std::unique_ptr<Scheduler> scheduler_;
  std::map<std::string, std::unique_ptr<Sequence>> sequences_;
  std::map<uint64_t, std::string> names_;
  int32_t next_token_ = 1000;
};

std::vector<int32_t> Prompt(int32_t length, int32_t first) {
  std::vector<int32_t> tokens;
  for (int32_t i = 0; i < length; ++i) tokens.push_back(first + i);
  return tokens;
}

TEST_F(SchedulerTableTest, ChunkedPrefillDecodesFirstAndPreemptsTheNewest) {
  // 6 blocks of 4 tokens, 2 sequences, 8 tokens per step.
  Start({.max_num_seqs = 2, .max_num_batched_tokens = 8}, 6, 4, /*prefix_caching=*/false);
  Add("A", Prompt(10, 0));
  Add("B", Prompt(6, 100));
  Add("C", Prompt(3, 200));
  ExpectSteps({
      {"A0+8[0,1]", 4},             // A's first chunk takes the whole budget
      {"A8+2s[2] B0+6s[3,4]", 1},   // A finishes its prompt; B fits the rest
      {"A10+1s B6+1s", 1},          // both decode; C waits: 2 sequences at most
      {"A11+1s B7+1s", 1},
      {"A12+1s[5] -B", 2},          // B needs a block, none is left: B, the newest, goes
      {"A13+1s B0+7[4,3]", 0},      // B is recomputed (prompt + 3 outputs) in chunks
      {"A14+1s B7+1", 0},           // the chunk shrinks to the room left in B's blocks
      {"A15+1s -B", 2},             // B needs a block again and is preempted
      {"A16+1s[3] B0+4[4]", 0},     // blocks come back least recently freed first
  });
  EXPECT_EQ(scheduler_->counters().num_preemptions, 2);
}

TEST_F(SchedulerTableTest, TheOldestSequenceAlwaysProgresses) {
  // Two sequences that cannot both fit: the older one preempts the newer.
  Start({.max_num_seqs = 4, .max_num_batched_tokens = 16}, 4, 4, false);
  Add("A", Prompt(7, 0));
  Add("B", Prompt(7, 100));
  ExpectSteps({
      {"A0+7s[0,1] B0+7s[2,3]", 0},
      {"A7+1s B7+1s", 0},    // 8 tokens still fit 2 blocks
      {"A8+1s[3] -B", 1},    // A needs a third block: B, the newer, goes
      {"A9+1s B0+4[2]", 0},  // B comes back into what is free
      {"A10+1s -B", 1},      // and cannot grow
      {"A11+1s B0+4[2]", 0},
      {"A12+1s[2] -B", 0},   // A takes the last block
      {"A13+1s", 0},         // B waits until A is done
  });
}

TEST_F(SchedulerTableTest, AdmissionIsFcfsAndReusesCachedPrefixes) {
  Start({.max_num_seqs = 4, .max_num_batched_tokens = 32}, 8, 4, /*prefix_caching=*/true);
  Add("A", Prompt(9, 0));
  ExpectSteps({{"A0+9s[0,1,2]", 5}});
  // B shares A's first 8 tokens (two full blocks): only its tail runs.
  std::vector<int32_t> b = Prompt(8, 0);
  b.push_back(77);
  b.push_back(78);
  Add("B", b);
  ExpectSteps({{"A9+1s B8+2s[0,1,3]", 4}});
  EXPECT_EQ(sequences_["B"]->num_cached_prompt_tokens, 8);
  EXPECT_EQ(scheduler_->counters().prefix_cache_hit_tokens, 8);
  // C's whole prompt is cached, yet its last token runs to give logits.
  Add("C", Prompt(8, 0));
  ExpectSteps({{"A10+1s B10+1s C4+4s[0,4]", 3}});
  EXPECT_EQ(sequences_["C"]->num_cached_prompt_tokens, 4);
}

TEST_F(SchedulerTableTest, AHeadThatDoesNotFitBlocksTheQueue) {
  Start({.max_num_seqs = 4, .max_num_batched_tokens = 4}, 3, 4, false);
  Add("A", Prompt(4, 0));
  Add("B", Prompt(12, 100));
  Add("C", Prompt(1, 200));
  ExpectSteps({
      {"A0+4s[0]", 2},
      {"A4+1s[1] B0+3[2]", 0},  // B gets what the budget and the blocks allow
      {"A5+1s B3+1", 0},        // and the last slot of its block
      {"A6+1s -B", 1},
      {"A7+1s B0+3[2]", 0},     // B again ahead of C, which would fit
      {"A8+1s[2] -B", 0},
      {"A9+1s", 0},             // nothing fits B; C may not overtake it
  });
}

TEST_F(SchedulerTableTest, AdmissionLeavesTheWatermarkFreeWhileSequencesRun) {
  Start({.max_num_seqs = 4, .max_num_batched_tokens = 32, .watermark_blocks = 2}, 8, 4, false);
  Add("A", Prompt(4, 0));
  Add("B", Prompt(4, 100));
  ExpectSteps({
      // An empty engine admits A into the whole pool; B, admitted while A
      // runs, still leaves 2 blocks free.
      {"A0+4s[0] B0+4s[1]", 6},
  });
  Add("C", Prompt(24, 200));
  ExpectSteps({
      {"A4+1s[2] B4+1s[3] C0+8[4,5]", 2},  // C's first chunk stops at the watermark
      {"A5+1s B5+1s C8+8[6,7]", 0},        // running sequences may use it
  });
}

TEST_F(SchedulerTableTest, WithoutAWatermarkAdmissionTakesTheLastBlock) {
  Start({.max_num_seqs = 4, .max_num_batched_tokens = 32}, 8, 4, false);
  Add("A", Prompt(4, 0));
  Add("B", Prompt(4, 100));
  ExpectSteps({{"A0+4s[0] B0+4s[1]", 6}});
  Add("C", Prompt(24, 200));
  ExpectSteps({{"A4+1s[2] B4+1s[3] C0+16[4,5,6,7]", 0}});
}

}  // namespace
}  // namespace duet::engine
