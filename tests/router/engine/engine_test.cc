// The engine end to end over a FakeWorker (tests/router/engine/fake_worker.h),
// whose tokens are only right when the KV bookkeeping is.
#include "router/engine/engine.h"

#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "router/grammar/json_schema_grammar.h"
#include "router/grammar/regex_grammar.h"
#include "tests/router/engine/engine_test_util.h"
#include "tests/router/engine/fake_worker.h"

namespace duet::engine {
namespace {

using ::duet::testing::Bytes;
using ::duet::testing::Collect;
using ::duet::testing::Collected;
using ::duet::testing::FakeWorker;
using ::duet::testing::FakeWorkerOptions;
using ::duet::testing::kByteEosId;
using ::testing::HasSubstr;
using ::testing::Not;

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override { tokenizer_ = testing::ByteTokenizer(); }

  // A fresh engine over a fresh fake worker.
  std::unique_ptr<Engine> StartEngine(FakeWorkerOptions worker = {}, EngineOptions options = {},
                                      int32_t max_model_len = 512) {
    ModelInfo info;
    info.model_name = "fake";
    info.max_model_len = max_model_len;
    info.vocab_size = 257;
    info.eos_token_ids = {kByteEosId};
    info.num_kv_blocks = worker.num_blocks;
    info.kv_block_size = worker.block_size;
    auto fake = std::make_unique<FakeWorker>(worker);
    shared_ = fake->shared();
    absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Start(options, info, tokenizer_.get(), std::move(fake));
    CHECK(engine.ok()) << engine.status();
    return *std::move(engine);
  }

  GenerateRequest Greedy(const std::string& prompt, int32_t max_tokens) {
    GenerateRequest request;
    request.prompt_token_ids = Bytes(prompt);
    request.sampling.temperature = 0;
    request.max_tokens = max_tokens;
    return request;
  }

  std::shared_ptr<EventQueue> Submit(Engine& engine, GenerateRequest request, uint64_t* id = nullptr) {
    absl::StatusOr<ValidatedRequest> valid = ValidateRequest(std::move(request), engine.request_limits());
    CHECK(valid.ok()) << valid.status();
    auto queue = std::make_shared<EventQueue>();
    absl::StatusOr<uint64_t> submitted = engine.Submit(*std::move(valid), queue);
    CHECK(submitted.ok()) << submitted.status();
    if (id != nullptr) *id = *submitted;
    return queue;
  }

  Collected Run(Engine& engine, GenerateRequest request) {
    const int32_t n = request.n;
    std::shared_ptr<EventQueue> queue = Submit(engine, std::move(request));
    return Collect(*queue, n);
  }

  // Stats settle after the output thread delivered the last event.
  EngineStats SettledStats(Engine& engine) {
    EngineStats stats = engine.stats();
    for (int i = 0; i < 200 && (stats.num_used_kv_blocks != 0 || stats.num_running_seqs != 0); ++i) {
      absl::SleepFor(absl::Milliseconds(5));
      stats = engine.stats();
    }
    return stats;
  }

  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  std::shared_ptr<FakeWorker::Shared> shared_;
};

std::string Prompt(int i, int length) {
  std::string prompt;
  for (int k = 0; k < length; ++k) prompt += static_cast<char>('A' + (i * 7 + k * 3) % 26);
  return prompt;
}

// The engine times each step and takes the workers' compute time from the
// result: the difference is the round trip's overhead. A request of 9
// prompt tokens and 5 outputs runs a prefill step and 4 decode steps.
TEST_F(EngineTest, StepTimesAndTheWorkersComputeTimeAreCounted) {
  std::unique_ptr<Engine> engine = StartEngine();
  shared_->step_delay_ms = 20;
  shared_->compute_micros = 15000;
  const Collected collected = Run(*engine, Greedy("abcdefghi", 5));
  ASSERT_TRUE(collected.error.ok()) << collected.error;
  ASSERT_EQ(collected.samples[0].token_ids.size(), 5u);
  const EngineStats stats = SettledStats(*engine);
  EXPECT_EQ(stats.num_steps, 5);
  EXPECT_EQ(stats.num_decode_steps, 4);
  EXPECT_DOUBLE_EQ(stats.step_compute_seconds, 5 * 0.015);
  EXPECT_DOUBLE_EQ(stats.decode_step_compute_seconds, 4 * 0.015);
  EXPECT_GE(stats.step_seconds, 5 * 0.020);
  EXPECT_GE(stats.decode_step_seconds, 4 * 0.020);
  EXPECT_LT(stats.decode_step_seconds, stats.step_seconds);
}

TEST_F(EngineTest, ConcurrentGreedyRequestsGiveWhatEachGivesAlone) {
  FakeWorkerOptions worker;
  worker.num_blocks = 512;
  worker.eos_token_id = kByteEosId;
  worker.eos_period = 40;
  std::vector<GenerateRequest> requests;
  for (int i = 0; i < 32; ++i) requests.push_back(Greedy(Prompt(i, 5 + 13 * i % 90), 10 + (i * 17) % 50));

  std::vector<Collected> alone;
  {
    std::unique_ptr<Engine> engine = StartEngine(worker);
    for (const GenerateRequest& request : requests) alone.push_back(Run(*engine, request));
  }
  std::unique_ptr<Engine> engine = StartEngine(worker, EngineOptions{.max_num_batched_tokens = 256});
  std::vector<std::shared_ptr<EventQueue>> queues;
  for (const GenerateRequest& request : requests) queues.push_back(Submit(*engine, request));
  int num_eos = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    Collected together = Collect(*queues[i], 1);
    ASSERT_TRUE(together.error.ok()) << together.error;
    EXPECT_EQ(together.samples[0].token_ids, alone[i].samples[0].token_ids) << "request " << i;
    EXPECT_EQ(together.samples[0].text, alone[i].samples[0].text) << "request " << i;
    EXPECT_EQ(together.samples[0].finish_reason, alone[i].samples[0].finish_reason);
    num_eos += together.samples[0].stop_token_id == kByteEosId ? 1 : 0;
  }
  EXPECT_GT(shared_->max_batch_seqs.load(), 8) << "the requests were not batched";
  EXPECT_GT(num_eos, 0) << "no request ended with EOS; the test lost its stop coverage";
  EXPECT_EQ(SettledStats(*engine).num_used_kv_blocks, 0);
}

TEST_F(EngineTest, TooSmallKvPoolPreemptsRecomputesAndReturnsEveryBlock) {
  FakeWorkerOptions worker;
  worker.num_blocks = 12;  // 192 tokens for requests that need up to ~90 each
  std::vector<GenerateRequest> requests;
  for (int i = 0; i < 10; ++i) requests.push_back(Greedy(Prompt(i, 20 + 3 * i), 60));
  std::vector<Collected> alone;
  {
    std::unique_ptr<Engine> engine = StartEngine(worker, {}, /*max_model_len=*/192);
    for (const GenerateRequest& request : requests) alone.push_back(Run(*engine, request));
  }
  std::unique_ptr<Engine> engine = StartEngine(worker, {}, /*max_model_len=*/192);
  std::vector<std::shared_ptr<EventQueue>> queues;
  for (const GenerateRequest& request : requests) queues.push_back(Submit(*engine, request));
  for (size_t i = 0; i < requests.size(); ++i) {
    Collected together = Collect(*queues[i], 1);
    ASSERT_TRUE(together.error.ok()) << together.error;
    EXPECT_EQ(together.samples[0].token_ids, alone[i].samples[0].token_ids) << "request " << i;
    EXPECT_EQ(together.samples[0].finish_reason, FinishReason::kLength);
  }
  const EngineStats stats = SettledStats(*engine);
  EXPECT_GT(stats.num_preemptions, 0);
  EXPECT_EQ(stats.num_used_kv_blocks, 0);
  EXPECT_EQ(stats.num_running_seqs + stats.num_waiting_seqs, 0);
  EXPECT_EQ(shared_->num_live_seqs.load(), 0) << "the workers were not told to drop every sequence";
}

TEST_F(EngineTest, SharedSystemPromptIsPrefilledOnce) {
  std::unique_ptr<Engine> engine = StartEngine();
  const std::string system = Prompt(3, 64);  // 4 full blocks
  Collected first = Run(*engine, Greedy(system + "first question", 8));
  ASSERT_TRUE(first.error.ok());
  EXPECT_EQ(first.samples[0].num_cached_prompt_tokens, 0);
  const EngineStats before = engine->stats();

  Collected second = Run(*engine, Greedy(system + "another one", 8));
  ASSERT_TRUE(second.error.ok());
  EXPECT_EQ(second.samples[0].num_cached_prompt_tokens, 64);
  const EngineStats after = engine->stats();
  EXPECT_EQ(after.prefix_cache_hit_tokens - before.prefix_cache_hit_tokens, 64);
  EXPECT_EQ(after.prefix_cache_queried_tokens - before.prefix_cache_queried_tokens,
            static_cast<int64_t>(system.size() + std::string("another one").size()));

  // Cached KV gives what computing it gives.
  std::unique_ptr<Engine> fresh = StartEngine();
  EXPECT_EQ(Run(*fresh, Greedy(system + "another one", 8)).samples[0].token_ids, second.samples[0].token_ids);

  // Another tenant shares nothing.
  GenerateRequest salted = Greedy(system + "another one", 8);
  salted.cache_salt = "tenant-b";
  EXPECT_EQ(Run(*engine, salted).samples[0].num_cached_prompt_tokens, 0);
}

TEST_F(EngineTest, SeededSamplingIsReproducibleAcrossBatches) {
  GenerateRequest seeded = Greedy(Prompt(1, 30), 24);
  seeded.sampling.temperature = 1.0f;
  seeded.sampling.seed = 42;
  std::unique_ptr<Engine> engine = StartEngine();
  const Collected alone = Run(*engine, seeded);

  std::vector<std::shared_ptr<EventQueue>> others;
  for (int i = 0; i < 6; ++i) {
    GenerateRequest other = Greedy(Prompt(10 + i, 10 + 5 * i), 30);
    other.sampling.temperature = 0.8f;
    others.push_back(Submit(*engine, other));
  }
  std::shared_ptr<EventQueue> in_batch = Submit(*engine, seeded);
  EXPECT_EQ(Collect(*in_batch, 1).samples[0].token_ids, alone.samples[0].token_ids);
  for (auto& queue : others) Collect(*queue, 1);

  GenerateRequest other_seed = seeded;
  other_seed.sampling.seed = 43;
  EXPECT_NE(Run(*engine, other_seed).samples[0].token_ids, alone.samples[0].token_ids);
}

TEST_F(EngineTest, ParallelSamplesShareThePromptAndDiffer) {
  std::unique_ptr<Engine> engine = StartEngine();
  GenerateRequest request = Greedy(Prompt(5, 40), 16);
  request.sampling.temperature = 1.0f;
  request.sampling.seed = 9;
  request.n = 4;
  const Collected result = Run(*engine, request);
  ASSERT_TRUE(result.error.ok()) << result.error;
  ASSERT_EQ(result.samples.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(result.samples[i].token_ids.size(), 16u);
    for (int j = 0; j < i; ++j) EXPECT_NE(result.samples[i].token_ids, result.samples[j].token_ids);
  }
  // Siblings found the prompt's full blocks in the prefix cache.
  EXPECT_EQ(result.samples[0].num_cached_prompt_tokens, 0);
  for (int i = 1; i < 4; ++i) EXPECT_EQ(result.samples[i].num_cached_prompt_tokens, 32);
  // Sample 0 is what n = 1 with the same seed gives.
  GenerateRequest single = request;
  single.n = 1;
  std::unique_ptr<Engine> fresh = StartEngine();
  EXPECT_EQ(Run(*fresh, single).samples[0].token_ids, result.samples[0].token_ids);
}

TEST_F(EngineTest, StopStringsEndTheTextAndNeverReachTheClient) {
  std::unique_ptr<Engine> engine = StartEngine();
  const Collected plain = Run(*engine, Greedy(Prompt(2, 12), 40));
  const std::string text = plain.samples[0].text;
  ASSERT_EQ(text.size(), 40u);
  const std::string stop = text.substr(20, 3);
  const size_t cut = text.find(stop);

  GenerateRequest request = Greedy(Prompt(2, 12), 40);
  request.stop = {"not in it", stop};
  std::shared_ptr<EventQueue> queue = Submit(*engine, request);
  std::string streamed;
  EngineEvent event;
  while (queue->Next(&event, absl::Seconds(10))) {
    streamed += event.text;
    EXPECT_THAT(streamed, Not(HasSubstr(stop))) << "a stop string reached the client";
    if (event.last) break;
  }
  EXPECT_EQ(streamed, text.substr(0, cut));
  EXPECT_EQ(event.finish_reason, FinishReason::kStop);
  EXPECT_EQ(event.stop_string, stop);
  EXPECT_EQ(SettledStats(*engine).num_used_kv_blocks, 0);
}

TEST_F(EngineTest, StopTokenIdsAndEosEndWithStop) {
  std::unique_ptr<Engine> engine = StartEngine();
  const Collected plain = Run(*engine, Greedy(Prompt(4, 12), 30));
  const int32_t stop_id = plain.samples[0].token_ids[6];
  const size_t first = std::find(plain.samples[0].token_ids.begin(), plain.samples[0].token_ids.end(), stop_id) -
                       plain.samples[0].token_ids.begin();
  GenerateRequest request = Greedy(Prompt(4, 12), 30);
  request.stop_token_ids = {stop_id};
  const Collected stopped = Run(*engine, request);
  EXPECT_EQ(stopped.samples[0].finish_reason, FinishReason::kStop);
  EXPECT_EQ(stopped.samples[0].stop_token_id, stop_id);
  EXPECT_EQ(stopped.samples[0].token_ids.size(), first + 1);
  EXPECT_EQ(stopped.samples[0].text, plain.samples[0].text.substr(0, first));

  // min_tokens holds the stop back.
  request.min_tokens = static_cast<int32_t>(first) + 2;
  const Collected held = Run(*engine, request);
  EXPECT_GE(held.samples[0].token_ids.size(), first + 3);

  FakeWorkerOptions eos_worker;
  eos_worker.eos_token_id = kByteEosId;
  eos_worker.eos_period = 3;
  std::unique_ptr<Engine> eos_engine = StartEngine(eos_worker);
  const Collected eos = Run(*eos_engine, Greedy(Prompt(6, 12), 200));
  EXPECT_EQ(eos.samples[0].finish_reason, FinishReason::kStop);
  EXPECT_EQ(eos.samples[0].stop_token_id, kByteEosId);
  EXPECT_THAT(eos.samples[0].text, Not(HasSubstr("<eos>")));
  GenerateRequest ignore = Greedy(Prompt(6, 12), 50);
  ignore.ignore_eos = true;
  const Collected ignored = Run(*eos_engine, ignore);
  EXPECT_EQ(ignored.samples[0].finish_reason, FinishReason::kLength);
  EXPECT_EQ(ignored.samples[0].token_ids.size(), 50u);
}

TEST_F(EngineTest, LengthLimits) {
  std::unique_ptr<Engine> engine = StartEngine({}, {}, /*max_model_len=*/64);
  const Collected capped = Run(*engine, Greedy(Prompt(1, 10), 7));
  EXPECT_EQ(capped.samples[0].token_ids.size(), 7u);
  EXPECT_EQ(capped.samples[0].finish_reason, FinishReason::kLength);
  EXPECT_EQ(capped.samples[0].num_completion_tokens, 7);
  GenerateRequest unbounded = Greedy(Prompt(1, 10), 0);
  unbounded.max_tokens.reset();
  const Collected context = Run(*engine, unbounded);
  EXPECT_EQ(context.samples[0].token_ids.size(), 54u);  // up to the context length
  EXPECT_EQ(context.samples[0].finish_reason, FinishReason::kLength);
}

TEST_F(EngineTest, LogprobsComeWithEveryToken) {
  std::unique_ptr<Engine> engine = StartEngine();
  GenerateRequest request = Greedy(Prompt(1, 10), 12);
  request.sampling.top_logprobs = 3;
  const Collected result = Run(*engine, request);
  EXPECT_EQ(result.samples[0].num_logprobs, 12);
}

TEST_F(EngineTest, AbortEndsTheRequestAndFreesItsBlocks) {
  std::unique_ptr<Engine> engine = StartEngine();
  shared_->step_delay_ms = 2;
  uint64_t id = 0;
  std::shared_ptr<EventQueue> queue = Submit(*engine, Greedy(Prompt(1, 40), 400), &id);
  EngineEvent event;
  ASSERT_TRUE(queue->Next(&event, absl::Seconds(10)));
  engine->Abort(id);
  while (!event.last) ASSERT_TRUE(queue->Next(&event, absl::Seconds(10)));
  EXPECT_EQ(event.kind, EngineEvent::Kind::kFinished);
  EXPECT_EQ(event.finish_reason, FinishReason::kAbort);
  EXPECT_EQ(SettledStats(*engine).num_used_kv_blocks, 0);
  EXPECT_EQ(Run(*engine, Greedy(Prompt(1, 10), 3)).samples[0].token_ids.size(), 3u);
}

TEST_F(EngineTest, WorkerFailureFailsRequestsExplicitlyAndRecovers) {
  std::unique_ptr<Engine> engine =
      StartEngine({}, EngineOptions{.reinitialize_interval = absl::Milliseconds(200)});
  shared_->fail_at_step = 3;
  const Collected failed = Run(*engine, Greedy(Prompt(1, 10), 50));
  EXPECT_EQ(failed.error.code(), absl::StatusCode::kUnavailable) << failed.error;
  absl::StatusOr<ValidatedRequest> valid = ValidateRequest(Greedy("x", 2), engine->request_limits());
  ASSERT_TRUE(valid.ok());
  EXPECT_EQ(engine->Submit(*std::move(valid), std::make_shared<EventQueue>()).status().code(),
            absl::StatusCode::kUnavailable);
  for (int i = 0; i < 200 && shared_->num_reinitializations == 0; ++i) absl::SleepFor(absl::Milliseconds(10));
  for (int i = 0; i < 200 && !engine->stats().workers_healthy; ++i) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_TRUE(engine->stats().workers_healthy);
  const Collected recovered = Run(*engine, Greedy(Prompt(1, 10), 5));
  EXPECT_TRUE(recovered.error.ok()) << recovered.error;
  EXPECT_EQ(recovered.samples[0].token_ids.size(), 5u);
}

// The step that only tells the workers which sequences finished runs while
// the engine is otherwise idle; when that one fails, the engine still
// re-forms the group without waiting for new work to arrive.
TEST_F(EngineTest, WorkerFailureWhileIdleIsRecoveredWithoutNewWork) {
  std::unique_ptr<Engine> engine =
      StartEngine({}, EngineOptions{.reinitialize_interval = absl::Milliseconds(50)});
  // A 10-token prompt and 5 tokens: one prefill step and 4 decode steps
  // (0-4); step 5 drops the finished sequence.
  shared_->fail_at_step = 5;
  const Collected done = Run(*engine, Greedy(Prompt(1, 10), 5));
  ASSERT_TRUE(done.error.ok()) << done.error;
  ASSERT_EQ(done.samples[0].token_ids.size(), 5u);
  for (int i = 0; i < 300 && shared_->num_reinitializations == 0; ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(shared_->num_reinitializations, 1);
  for (int i = 0; i < 300 && !engine->stats().workers_healthy; ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_TRUE(engine->stats().workers_healthy);
  EXPECT_GE(shared_->num_steps, 6);
}

TEST_F(EngineTest, FullWaitingQueueRefusesWithResourceExhausted) {
  std::unique_ptr<Engine> engine =
      StartEngine({}, EngineOptions{.max_num_seqs = 1, .max_waiting_requests = 1});
  shared_->step_delay_ms = 300;
  std::shared_ptr<EventQueue> running = Submit(*engine, Greedy("a", 2));
  absl::SleepFor(absl::Milliseconds(50));  // the step thread is now inside a step
  std::shared_ptr<EventQueue> waiting = Submit(*engine, Greedy("b", 2));
  absl::StatusOr<ValidatedRequest> third = ValidateRequest(Greedy("c", 2), engine->request_limits());
  ASSERT_TRUE(third.ok());
  const absl::Status refused = engine->Submit(*std::move(third), std::make_shared<EventQueue>()).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  shared_->step_delay_ms = 0;
  EXPECT_TRUE(Collect(*running, 1).error.ok());
  EXPECT_TRUE(Collect(*waiting, 1).error.ok());
}

TEST_F(EngineTest, ShutdownEndsOpenRequestsWithAnError) {
  std::unique_ptr<Engine> engine = StartEngine();
  shared_->step_delay_ms = 5;
  std::shared_ptr<EventQueue> queue = Submit(*engine, Greedy(Prompt(1, 10), 400));
  EngineEvent event;
  ASSERT_TRUE(queue->Next(&event, absl::Seconds(10)));
  engine.reset();
  while (!event.last) ASSERT_TRUE(queue->Next(&event, absl::Seconds(1)));
  EXPECT_EQ(event.kind, EngineEvent::Kind::kError);
  EXPECT_EQ(event.error.code(), absl::StatusCode::kAborted);
}

TEST_F(EngineTest, GrammarConstrainsEverySampleAndEndsAtTheStopToken) {
  FakeWorkerOptions worker;
  worker.eos_token_id = kByteEosId;
  worker.eos_period = 3;  // EOS is hashed often, and only allowed once the grammar may end
  std::unique_ptr<Engine> engine = StartEngine(worker);
  auto vocabulary = grammar::TokenVocabulary::FromTokenizer(*tokenizer_);
  absl::StatusOr<grammar::Grammar> regex = grammar::RegexGrammar("[a-c]{2,4}-(yes|no)");
  ASSERT_TRUE(regex.ok());
  auto compiled = std::make_shared<grammar::CompiledGrammar>(*regex, vocabulary);
  for (uint64_t seed = 0; seed < 8; ++seed) {
    GenerateRequest request = Greedy("grammar", 32);
    request.sampling.temperature = 1;
    request.sampling.seed = seed;
    request.n = 2;
    request.grammar = compiled;
    const Collected collected = Run(*engine, std::move(request));
    ASSERT_TRUE(collected.error.ok()) << collected.error;
    for (const Collected::Sample& sample : collected.samples) {
      EXPECT_TRUE(std::regex_match(sample.text, std::regex("[a-c]{2,4}-(yes|no)"))) << sample.text;
      EXPECT_EQ(sample.finish_reason, FinishReason::kStop) << sample.text;
      EXPECT_EQ(sample.stop_token_id, kByteEosId);
    }
  }
  // Even with ignore_eos the output ends where the grammar does.
  GenerateRequest request = Greedy("grammar", 32);
  request.ignore_eos = true;
  request.grammar = compiled;
  const Collected collected = Run(*engine, std::move(request));
  ASSERT_TRUE(collected.error.ok());
  EXPECT_EQ(collected.samples[0].finish_reason, FinishReason::kStop);
  EXPECT_TRUE(std::regex_match(collected.samples[0].text, std::regex("[a-c]{2,4}-(yes|no)")));
}

TEST_F(EngineTest, AThinkBlockGoesFirstUnconstrainedThenTheGrammar) {
  std::unique_ptr<Engine> engine = StartEngine();
  auto vocabulary = grammar::TokenVocabulary::FromTokenizer(*tokenizer_);
  absl::StatusOr<grammar::Grammar> regex = grammar::RegexGrammar("[0-9]{3}");
  ASSERT_TRUE(regex.ok());
  auto compiled = std::make_shared<grammar::CompiledGrammar>(*regex, vocabulary);
  // 'p' opens the think block and 'q' closes it (letters the fake samples).
  GenerateRequest::GrammarAfterReasoning think;
  think.start_token = 'p';
  think.end_token = 'q';
  // Opened by the prompt: free letters up to the first 'q', then the grammar.
  think.open = true;
  for (int i = 0; i < 6; ++i) {
    GenerateRequest request = Greedy(StrCat("open ", i), 300);
    request.grammar = compiled;
    request.grammar_after_reasoning = think;
    const Collected collected = Run(*engine, std::move(request));
    ASSERT_TRUE(collected.error.ok()) << collected.error;
    EXPECT_TRUE(std::regex_match(collected.samples[0].text, std::regex("[a-pr-z]*q[0-9]{3}")))
        << collected.samples[0].text;
    EXPECT_EQ(collected.samples[0].finish_reason, FinishReason::kStop);
  }
  // Not opened: the first token is the grammar's or the one that opens it.
  think.open = false;
  int thought = 0, answered = 0;
  for (int i = 0; i < 40; ++i) {
    GenerateRequest request = Greedy(StrCat("maybe ", i), 300);
    request.grammar = compiled;
    request.grammar_after_reasoning = think;
    const Collected collected = Run(*engine, std::move(request));
    ASSERT_TRUE(collected.error.ok()) << collected.error;
    const std::string& text = collected.samples[0].text;
    EXPECT_TRUE(std::regex_match(text, std::regex("(p[a-pr-z]*q)?[0-9]{3}"))) << text;
    (text[0] == 'p' ? thought : answered) += 1;
  }
  EXPECT_GT(thought, 0);
  EXPECT_GT(answered, 0);
  // Out of the vocabulary, or without a grammar: refused.
  GenerateRequest bad = Greedy("bad", 4);
  bad.grammar = compiled;
  bad.grammar_after_reasoning = think;
  bad.grammar_after_reasoning->end_token = 999;
  EXPECT_FALSE(ValidateRequest(bad, engine->request_limits()).ok());
  bad.grammar_after_reasoning->end_token = 'q';
  bad.grammar = nullptr;
  EXPECT_FALSE(ValidateRequest(bad, engine->request_limits()).ok());
}

TEST_F(EngineTest, AGrammarTheVocabularyCannotContinueFailsItsRequest) {
  std::unique_ptr<Engine> engine = StartEngine();
  // A vocabulary with letters only, so "7" can never be written.
  std::vector<std::string> letters(257);
  for (char c = 'a'; c <= 'z'; ++c) letters[c] = std::string(1, c);
  auto vocabulary = grammar::TokenVocabulary::FromTokens(letters);
  for (const char* pattern : {"7", "ab7"}) {
    absl::StatusOr<grammar::Grammar> regex = grammar::RegexGrammar(pattern);
    ASSERT_TRUE(regex.ok());
    GenerateRequest request = Greedy("dead end", 8);
    request.grammar = std::make_shared<grammar::CompiledGrammar>(*regex, vocabulary);
    const Collected collected = Run(*engine, std::move(request));
    EXPECT_EQ(collected.error.code(), absl::StatusCode::kInvalidArgument) << pattern;
    EXPECT_THAT(std::string(collected.error.message()), HasSubstr("cannot be continued")) << pattern;
  }
  EXPECT_EQ(SettledStats(*engine).num_used_kv_blocks, 0);
  EXPECT_EQ(Run(*engine, Greedy("still serving", 4)).samples[0].token_ids.size(), 4u);
}

TEST_F(EngineTest, ATokenOutsideTheGrammarFailsOnlyItsRequest) {
  FakeWorkerOptions worker;
  worker.ignore_masks = true;
  std::unique_ptr<Engine> engine = StartEngine(worker);
  absl::StatusOr<grammar::Grammar> choice = grammar::ChoiceGrammar({"0123"});
  ASSERT_TRUE(choice.ok());
  GenerateRequest constrained = Greedy("digits", 8);
  constrained.grammar =
      std::make_shared<grammar::CompiledGrammar>(*choice, grammar::TokenVocabulary::FromTokenizer(*tokenizer_));
  std::shared_ptr<EventQueue> bad = Submit(*engine, std::move(constrained));
  std::shared_ptr<EventQueue> good = Submit(*engine, Greedy("plain", 8));
  const Collected failed = Collect(*bad, 1);
  EXPECT_EQ(failed.error.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(failed.error.message()), HasSubstr("grammar"));
  const Collected fine = Collect(*good, 1);
  EXPECT_TRUE(fine.error.ok());
  EXPECT_EQ(fine.samples[0].token_ids.size(), 8u);
  EXPECT_EQ(SettledStats(*engine).num_used_kv_blocks, 0);
}

}  // namespace
}  // namespace duet::engine
