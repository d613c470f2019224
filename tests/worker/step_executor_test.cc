// StepExecutor on one rank (world size 1) with the qwen3 fixture: requests
// invalid as a whole change nothing; a sampled sequence that is dropped and
// recomputed from its prompt + outputs (as the router does after preemption)
// continues with exactly the tokens it would have produced, penalties and
// seeded draws included; sequences sample independently of their batch.
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/model_config.h"
#include "kernels/ops.h"
#include "tests/worker/models/golden_reference.h"
#include "worker/models/registry.h"
#include "worker/step_executor.h"

namespace duet::worker {
namespace {

using ::testing::HasSubstr;

constexpr int kBlockSize = 16;
constexpr int kNumBlocks = 64;

class StepExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<DecoderModel>> model = LoadFixtureModel("qwen3");
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = *std::move(model);
    backend_ = kernels::MakeCpuBackend(1);
    comm_ = MakeLocalCommunicator();
  }

  std::unique_ptr<StepExecutor> NewExecutor(std::unique_ptr<KvCache>& cache) {
    cache = std::make_unique<KvCache>(model_->config().num_hidden_layers,
                                      model_->KvLayout(kNumBlocks, kBlockSize));
    return std::make_unique<StepExecutor>(*model_, *backend_, *comm_, *cache, 512);
  }

  std::unique_ptr<DecoderModel> model_;
  std::unique_ptr<kernels::Backend> backend_;
  std::unique_ptr<Communicator> comm_;
};

v1::SamplingParams Sampled(uint64_t seed) {
  v1::SamplingParams params;
  // Hot enough that the seeded draw, not the argmax, picks the tokens (the
  // fixture's logits are sharp), with penalties strong enough to matter.
  params.set_temperature(3.0f);
  params.set_seed(seed);
  params.set_presence_penalty(1.5f);
  params.set_frequency_penalty(1.0f);
  params.set_repetition_penalty(1.5f);
  return params;
}

void AddNew(v1::StepRequest& request, uint64_t id, const std::vector<int32_t>& prompt,
            const v1::SamplingParams& params) {
  v1::NewSequence* sequence = request.add_new_sequences();
  sequence->set_seq_id(id);
  sequence->mutable_prompt_token_ids()->Add(prompt.begin(), prompt.end());
  *sequence->mutable_sampling() = params;
}

// Schedules `tokens` at `start`; blocks [first_block, ...) cover positions up
// to start + tokens.size() (only the ones not granted before are sent).
void Schedule(v1::StepRequest& request, uint64_t id, const std::vector<int32_t>& tokens,
              int64_t start, int first_block, int64_t* blocks_granted) {
  v1::ScheduledSequence* step = request.add_scheduled();
  step->set_seq_id(id);
  step->mutable_token_ids()->Add(tokens.begin(), tokens.end());
  step->set_start_position(static_cast<uint32_t>(start));
  step->set_sample(true);
  const int64_t end = start + static_cast<int64_t>(tokens.size());
  while (*blocks_granted * kBlockSize < end) {
    step->add_new_block_ids(static_cast<uint32_t>(first_block + (*blocks_granted)++));
  }
}

// Generates `count` tokens for sequence `id` alone, one decode per step.
std::vector<int32_t> Generate(StepExecutor& executor, uint64_t id, const std::vector<int32_t>& prompt,
                              const v1::SamplingParams& params, int count, int first_block) {
  int64_t blocks = 0;
  v1::StepRequest request;
  AddNew(request, id, prompt, params);
  Schedule(request, id, prompt, 0, first_block, &blocks);
  std::vector<int32_t> output;
  for (int i = 0; i < count; ++i) {
    absl::StatusOr<v1::StepResult> result = executor.Execute(request);
    EXPECT_TRUE(result.ok() && result->error().empty()) << result.status();
    if (!result.ok() || result->sampled_size() != 1) return output;
    output.push_back(result->sampled(0).token_id());
    request.Clear();
    Schedule(request, id, {output.back()}, static_cast<int64_t>(prompt.size() + output.size() - 1),
             first_block, &blocks);
  }
  return output;
}

TEST_F(StepExecutorTest, RecomputedSequenceContinuesIdentically) {
  const std::vector<int32_t> prompt = {3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46, 26, 43};
  std::unique_ptr<KvCache> cache;
  std::unique_ptr<StepExecutor> executor = NewExecutor(cache);
  const std::vector<int32_t> original = Generate(*executor, 1, prompt, Sampled(77), 16, 0);
  ASSERT_EQ(original.size(), 16u);

  // Preempted after 4 outputs: dropped, then re-sent with its original prompt
  // and prompt + outputs prefilled in one step, into other blocks.
  std::unique_ptr<KvCache> cache2;
  std::unique_ptr<StepExecutor> recomputing = NewExecutor(cache2);
  std::vector<int32_t> resumed_prefix = prompt;
  resumed_prefix.insert(resumed_prefix.end(), original.begin(), original.begin() + 4);
  v1::StepRequest request;
  AddNew(request, 9, prompt, Sampled(77));
  int64_t blocks = 0;
  Schedule(request, 9, resumed_prefix, 0, 30, &blocks);
  std::vector<int32_t> continued;
  for (int i = 4; i < 16; ++i) {
    absl::StatusOr<v1::StepResult> result = recomputing->Execute(request);
    ASSERT_TRUE(result.ok() && result->error().empty()) << result.status();
    continued.push_back(result->sampled(0).token_id());
    request.Clear();
    Schedule(request, 9, {continued.back()}, static_cast<int64_t>(prompt.size()) + i, 30, &blocks);
  }
  EXPECT_EQ(continued, std::vector<int32_t>(original.begin() + 4, original.end()));

  // Without the penalties' output history the continuation would differ:
  // the same seed with penalties off gives another sequence.
  std::unique_ptr<KvCache> cache3;
  std::unique_ptr<StepExecutor> plain = NewExecutor(cache3);
  v1::SamplingParams no_penalties = Sampled(77);
  no_penalties.clear_repetition_penalty();
  no_penalties.set_presence_penalty(0);
  no_penalties.set_frequency_penalty(0);
  EXPECT_NE(Generate(*plain, 1, prompt, no_penalties, 16, 0), original);
}

TEST_F(StepExecutorTest, RecomputedFromThePrefixCacheKeepsItsOutputHistory) {
  const std::vector<int32_t> prompt = {3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46, 26, 43};
  std::unique_ptr<KvCache> cache;
  std::unique_ptr<StepExecutor> executor = NewExecutor(cache);
  const std::vector<int32_t> original = Generate(*executor, 1, prompt, Sampled(77), 16, 0);
  ASSERT_EQ(original.size(), 16u);

  // Preempted after 4 outputs; block 0 (prompt + 3 outputs) is still cached,
  // so only position 16 (the 4th output) runs again, into a fresh block. The
  // outputs whose KV comes from the cache arrive as output_token_ids.
  v1::StepRequest request;
  request.add_finished_seq_ids(1);
  AddNew(request, 2, prompt, Sampled(77));
  request.mutable_new_sequences(0)->mutable_output_token_ids()->Add(original.begin(), original.begin() + 4);
  v1::ScheduledSequence* step = request.add_scheduled();
  step->set_seq_id(2);
  step->add_token_ids(original[3]);
  step->set_start_position(16);
  step->add_new_block_ids(0);
  step->add_new_block_ids(40);
  step->set_sample(true);
  int64_t blocks = 2;
  std::vector<int32_t> continued;
  for (int i = 4; i < 16; ++i) {
    absl::StatusOr<v1::StepResult> result = executor->Execute(request);
    ASSERT_TRUE(result.ok() && result->error().empty()) << result.status() << result->error();
    continued.push_back(result->sampled(0).token_id());
    request.Clear();
    // Blocks 0 and 40 hold positions 0..31; all 29 tokens fit.
    Schedule(request, 2, {continued.back()}, static_cast<int64_t>(prompt.size()) + i, 40, &blocks);
  }
  EXPECT_EQ(continued, std::vector<int32_t>(original.begin() + 4, original.end()));
}

TEST_F(StepExecutorTest, SamplesDoNotDependOnTheBatch) {
  const std::vector<int32_t> prompt_a = {5, 6, 7, 8, 9, 10, 11};
  const std::vector<int32_t> prompt_b = {100, 200, 300, 400};
  std::unique_ptr<KvCache> cache;
  std::unique_ptr<StepExecutor> alone = NewExecutor(cache);
  const std::vector<int32_t> a_alone = Generate(*alone, 1, prompt_a, Sampled(5), 6, 0);

  std::unique_ptr<KvCache> cache2;
  std::unique_ptr<StepExecutor> together = NewExecutor(cache2);
  int64_t blocks_a = 0, blocks_b = 0;
  v1::StepRequest request;
  AddNew(request, 1, prompt_a, Sampled(5));
  AddNew(request, 2, prompt_b, Sampled(6));
  Schedule(request, 2, prompt_b, 0, 10, &blocks_b);
  Schedule(request, 1, prompt_a, 0, 20, &blocks_a);
  std::vector<int32_t> a_batched;
  for (int i = 0; i < 6; ++i) {
    absl::StatusOr<v1::StepResult> result = together->Execute(request);
    ASSERT_TRUE(result.ok() && result->error().empty()) << result.status();
    ASSERT_EQ(result->sampled_size(), 2);
    const bool b_first = i == 0;  // results come in request order
    EXPECT_EQ(result->sampled(0).seq_id(), b_first ? 2u : 1u);
    a_batched.push_back(result->sampled(b_first ? 1 : 0).token_id());
    const int32_t b_token = result->sampled(b_first ? 0 : 1).token_id();
    request.Clear();
    Schedule(request, 1, {a_batched.back()}, static_cast<int64_t>(prompt_a.size()) + i, 20, &blocks_a);
    Schedule(request, 2, {b_token}, static_cast<int64_t>(prompt_b.size()) + i, 10, &blocks_b);
  }
  EXPECT_EQ(a_batched, a_alone);
}

// A mask allowing only `token`.
std::string OnlyToken(int32_t token) {
  std::string mask(token / 8 + 1, '\0');
  mask[token / 8] = static_cast<char>(1 << (token % 8));
  return mask;
}

TEST_F(StepExecutorTest, AllowedTokenMaskDecidesTheSample) {
  std::unique_ptr<KvCache> cache;
  std::unique_ptr<StepExecutor> executor = NewExecutor(cache);
  const std::vector<int32_t> prompt = {5, 6, 7, 8};
  // Unconstrained first, to know what the mask must change.
  const std::vector<int32_t> free = Generate(*executor, 1, prompt, Sampled(4), 1, 0);
  ASSERT_EQ(free.size(), 1u);
  const int32_t allowed = free[0] == 11 ? 12 : 11;
  int64_t blocks = 0;
  v1::StepRequest request;
  AddNew(request, 2, prompt, Sampled(4));
  Schedule(request, 2, prompt, 0, 8, &blocks);
  request.mutable_scheduled(0)->set_allowed_token_mask(OnlyToken(allowed));
  absl::StatusOr<v1::StepResult> result = executor->Execute(request);
  ASSERT_TRUE(result.ok() && result->error().empty()) << result->error();
  ASSERT_EQ(result->sampled_size(), 1);
  EXPECT_EQ(result->sampled(0).token_id(), allowed);
}

v1::StepRequest LateMasksOf(uint64_t step_id, const std::vector<std::string>& masks) {
  v1::StepRequest late;
  late.set_step_id(step_id);
  v1::LateMasks* late_masks = late.mutable_late_masks();  // present even when empty
  for (const std::string& mask : masks) late_masks->add_allowed_token_masks(mask);
  return late;
}

TEST_F(StepExecutorTest, LateMasksAreReadOnceAndDecideTheSample) {
  std::unique_ptr<KvCache> cache;
  std::unique_ptr<StepExecutor> executor = NewExecutor(cache);
  const std::vector<int32_t> prompt = {5, 6, 7, 8};
  const std::vector<int32_t> free = Generate(*executor, 1, prompt, Sampled(4), 1, 0);
  ASSERT_EQ(free.size(), 1u);
  const int32_t allowed = free[0] == 11 ? 12 : 11;
  // Two sampled sequences, only the second one's mask follows.
  int64_t blocks_a = 0, blocks_b = 0;
  v1::StepRequest request;
  request.set_step_id(7);
  AddNew(request, 2, prompt, Sampled(4));
  AddNew(request, 3, prompt, Sampled(4));
  Schedule(request, 2, prompt, 0, 8, &blocks_a);
  Schedule(request, 3, prompt, 0, 16, &blocks_b);
  request.mutable_scheduled(1)->set_mask_follows(true);
  int reads = 0;
  absl::StatusOr<v1::StepResult> result = executor->Execute(request, [&](v1::StepRequest* late) {
    ++reads;
    *late = LateMasksOf(7, {OnlyToken(allowed)});
    return true;
  });
  ASSERT_TRUE(result.ok() && result->error().empty()) << result.status() << result->error();
  EXPECT_EQ(reads, 1);
  ASSERT_EQ(result->sampled_size(), 2);
  EXPECT_EQ(result->sampled(0).token_id(), free[0]) << "the other sequence samples freely";
  EXPECT_EQ(result->sampled(1).token_id(), allowed);

  // An empty late mask allows any token: the same draw as without one.
  request.Clear();
  Schedule(request, 3, {allowed}, static_cast<int64_t>(prompt.size()), 16, &blocks_b);
  request.set_step_id(8);
  request.mutable_scheduled(0)->set_mask_follows(true);
  result = executor->Execute(request, [](v1::StepRequest* late) {
    *late = LateMasksOf(8, {""});
    return true;
  });
  ASSERT_TRUE(result.ok() && result->error().empty()) << result.status() << result->error();
  EXPECT_EQ(result->sampled_size(), 1);
}

TEST_F(StepExecutorTest, MalformedLateMasksBreakTheStep) {
  const int64_t vocab = model_->config().vocab_size;
  v1::StepRequest request;
  request.set_step_id(3);
  int64_t blocks = 0;
  AddNew(request, 1, {1, 2, 3}, Sampled(1));
  Schedule(request, 1, {1, 2, 3}, 0, 0, &blocks);
  request.mutable_scheduled(0)->set_mask_follows(true);
  auto run = [&](const v1::StepRequest& late) {
    std::unique_ptr<KvCache> cache;
    std::unique_ptr<StepExecutor> executor = NewExecutor(cache);
    int reads = 0;
    absl::StatusOr<v1::StepResult> result = executor->Execute(request, [&](v1::StepRequest* next) {
      ++reads;
      *next = late;
      return true;
    });
    EXPECT_EQ(reads, 1);
    // Found after the forward pass: the state has changed, the group breaks.
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
    return std::string(result.status().message());
  };
  EXPECT_THAT(run(LateMasksOf(3, {})), HasSubstr("0 late masks for 1"));
  EXPECT_THAT(run(LateMasksOf(3, {"", ""})), HasSubstr("2 late masks for 1"));
  EXPECT_THAT(run(LateMasksOf(4, {""})), HasSubstr("not its LateMasks"));
  v1::StepRequest not_masks;
  not_masks.set_step_id(3);
  EXPECT_THAT(run(not_masks), HasSubstr("not its LateMasks"));
  EXPECT_THAT(run(LateMasksOf(3, {std::string(4, '\0')})), HasSubstr("allows nothing"));
  EXPECT_THAT(run(LateMasksOf(3, {std::string((vocab + 7) / 8 + 1, '\xFF')})),
              HasSubstr("allowed-token mask of"));

  // A stream that ends before the masks breaks the step.
  std::unique_ptr<KvCache> cache;
  std::unique_ptr<StepExecutor> executor = NewExecutor(cache);
  absl::StatusOr<v1::StepResult> result = executor->Execute(request, [](v1::StepRequest*) { return false; });
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable) << result.status();
  EXPECT_FALSE(executor->Execute(request).ok()) << "no reader: the masks cannot come";
}

TEST_F(StepExecutorTest, ARejectedRequestStillConsumesItsLateMasks) {
  std::unique_ptr<KvCache> cache;
  std::unique_ptr<StepExecutor> executor = NewExecutor(cache);
  v1::StepRequest request;
  request.set_step_id(5);
  int64_t blocks = 0;
  Schedule(request, 99, {1, 2, 3}, 0, 0, &blocks);  // never added
  request.mutable_scheduled(0)->set_mask_follows(true);
  int reads = 0;
  absl::StatusOr<v1::StepResult> result = executor->Execute(request, [&](v1::StepRequest* late) {
    ++reads;
    *late = LateMasksOf(5, {""});
    return true;
  });
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->error(), HasSubstr("not known"));
  EXPECT_EQ(reads, 1);
  // mask_follows only with sample, never with a mask in the request, and a
  // LateMasks message is never a step.
  v1::StepRequest bad;
  AddNew(bad, 1, {1, 2, 3}, Sampled(1));
  blocks = 0;
  Schedule(bad, 1, {1, 2, 3}, 0, 0, &blocks);
  bad.mutable_scheduled(0)->set_mask_follows(true);
  bad.mutable_scheduled(0)->set_sample(false);
  auto read_any = [](v1::StepRequest* late) {
    *late = LateMasksOf(0, {""});
    return true;
  };
  EXPECT_THAT(executor->Execute(bad, read_any)->error(), HasSubstr("mask_follows without sample"));
  bad.mutable_scheduled(0)->set_sample(true);
  bad.mutable_scheduled(0)->set_allowed_token_mask("\x01");
  EXPECT_THAT(executor->Execute(bad, read_any)->error(), HasSubstr("an allowed-token mask and mask_follows"));
  EXPECT_THAT(executor->Execute(LateMasksOf(9, {""}))->error(), HasSubstr("LateMasks where a step"));
  EXPECT_EQ(executor->num_sequences(), 0);
}

TEST_F(StepExecutorTest, InvalidRequestsChangeNothing) {
  std::unique_ptr<KvCache> cache;
  std::unique_ptr<StepExecutor> executor = NewExecutor(cache);
  int64_t blocks = 0;
  v1::StepRequest good;
  good.set_step_id(1);
  AddNew(good, 1, {1, 2, 3}, Sampled(1));
  Schedule(good, 1, {1, 2, 3}, 0, 0, &blocks);

  auto expect_rejected = [&](v1::StepRequest request, const std::string& why) {
    absl::StatusOr<v1::StepResult> result = executor->Execute(request);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_NE(result->error().find(why), std::string::npos) << result->error();
    EXPECT_EQ(result->sampled_size(), 0);
    EXPECT_EQ(executor->num_sequences(), 0) << why;
  };
  v1::StepRequest bad = good;
  bad.mutable_new_sequences(0)->set_prompt_token_ids(1, 1 << 20);
  expect_rejected(bad, "outside the vocabulary");
  bad = good;
  bad.mutable_scheduled(0)->set_new_block_ids(0, kNumBlocks);
  expect_rejected(bad, "outside the pool");
  bad = good;
  bad.mutable_scheduled(0)->set_start_position(20);  // past the one granted block
  expect_rejected(bad, "need more KV blocks");
  bad = good;
  bad.mutable_new_sequences(0)->mutable_sampling()->set_top_p(0.0f);
  expect_rejected(bad, "top_p");
  bad = good;
  *bad.add_scheduled() = good.scheduled(0);
  expect_rejected(bad, "scheduled twice");
  bad = good;
  *bad.add_new_sequences() = good.new_sequences(0);
  expect_rejected(bad, "already exists");
  bad = good;
  bad.mutable_scheduled(0)->set_seq_id(2);
  expect_rejected(bad, "not known");
  bad = good;
  bad.mutable_scheduled(0)->set_start_position(510);
  expect_rejected(bad, "max_model_len");
  const int64_t vocab = model_->config().vocab_size;
  bad = good;
  bad.mutable_scheduled(0)->set_allowed_token_mask(std::string((vocab + 7) / 8 + 1, '\xFF'));
  expect_rejected(bad, "allowed-token mask of");
  bad = good;
  bad.mutable_scheduled(0)->set_allowed_token_mask(std::string(4, '\0'));
  expect_rejected(bad, "allows nothing");
  bad = good;
  bad.mutable_scheduled(0)->set_allowed_token_mask("\x01");
  bad.mutable_scheduled(0)->set_sample(false);
  expect_rejected(bad, "without sample");

  absl::StatusOr<v1::StepResult> result = executor->Execute(good);
  ASSERT_TRUE(result.ok() && result->error().empty()) << result->error();
  EXPECT_EQ(executor->num_sequences(), 1);
  v1::StepRequest finish;
  finish.add_finished_seq_ids(1);
  finish.add_finished_seq_ids(12345);  // unknown ids are ignored
  ASSERT_TRUE(executor->Execute(finish).ok());
  EXPECT_EQ(executor->num_sequences(), 0);
}

}  // namespace
}  // namespace duet::worker
