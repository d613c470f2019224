// The router's engine driving two real duet-worker processes (tensor
// parallel over Gloo) with the qwen3 fixture model: batching, preemption
// and the prefix cache must not change a single token.
#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "router/engine/engine.h"
#include "router/workers/worker_group.h"
#include "tests/e2e/worker_process.h"
#include "tests/router/engine/engine_test_util.h"
#include "tests/test_paths.h"

namespace duet {
namespace {

using engine::Engine;
using engine::EngineOptions;
using engine::EventQueue;
using engine::GenerateRequest;
using testing::Collect;
using testing::Collected;
using testing::WorkerProcess;

class EngineWorkersTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    workers_ = new std::vector<std::unique_ptr<WorkerProcess>>();
    for (int rank = 0; rank < 2; ++rank) {
      workers_->push_back(std::make_unique<WorkerProcess>("engine_worker" + std::to_string(rank)));
    }
  }
  static void TearDownTestSuite() {
    delete workers_;
    workers_ = nullptr;
  }

  void SetUp() override {
    for (const auto& worker : *workers_) ASSERT_TRUE(worker->started()) << worker->Log();
    tokenizer_ = testing::ByteTokenizer();
  }

  router::WorkerGroupOptions GroupOptions(uint64_t kv_memory_bytes) {
    router::WorkerGroupOptions options;
    for (const auto& worker : *workers_) options.addresses.push_back(worker->address());
    options.init.set_model_path(testing::SourceDir() + "/tests/golden/fixtures/qwen3");
    options.init.set_kv_block_size(16);
    options.init.set_kv_memory_bytes(kv_memory_bytes);
    options.init.set_max_model_len(256);
    options.init_timeout = absl::Seconds(60);
    options.step_timeout = absl::Seconds(30);
    options.rpc_timeout = absl::Seconds(20);
    return options;
  }

  // An engine over the two workers with a KV pool of `num_blocks` blocks
  // (0: a large pool).
  std::unique_ptr<Engine> StartEngine(int32_t num_blocks = 0, EngineOptions options = {}) {
    uint64_t kv_memory_bytes = uint64_t{16} << 20;
    if (num_blocks > 0) {
      absl::StatusOr<std::unique_ptr<router::WorkerGroup>> probe =
          router::WorkerGroup::Start(GroupOptions(kv_memory_bytes));
      CHECK(probe.ok()) << probe.status();
      kv_memory_bytes = (*probe)->info().kv_block_bytes() * static_cast<uint64_t>(num_blocks);
    }
    absl::StatusOr<std::unique_ptr<router::WorkerGroup>> group =
        router::WorkerGroup::Start(GroupOptions(kv_memory_bytes));
    CHECK(group.ok()) << group.status();
    engine::ModelInfo info;
    info.model_name = "qwen3-fixture";
    info.max_model_len = static_cast<int32_t>((*group)->info().max_model_len());
    info.vocab_size = static_cast<int32_t>((*group)->info().vocab_size());
    info.num_kv_blocks = static_cast<int32_t>((*group)->info().num_kv_blocks());
    info.kv_block_size = 16;
    info.world_size = 2;
    if (num_blocks > 0) CHECK_EQ(info.num_kv_blocks, num_blocks);
    absl::StatusOr<std::unique_ptr<Engine>> engine =
        Engine::Start(options, info, tokenizer_.get(), *std::move(group));
    CHECK(engine.ok()) << engine.status();
    return *std::move(engine);
  }

  std::shared_ptr<EventQueue> Submit(Engine& engine, GenerateRequest request) {
    absl::StatusOr<engine::ValidatedRequest> valid = engine::ValidateRequest(request, engine.request_limits());
    CHECK(valid.ok()) << valid.status();
    auto queue = std::make_shared<EventQueue>();
    CHECK(engine.Submit(*std::move(valid), queue).ok());
    return queue;
  }

  std::vector<int32_t> Tokens(Engine& engine, const GenerateRequest& request) {
    Collected result = Collect(*Submit(engine, request), 1);
    EXPECT_TRUE(result.error.ok()) << result.error;
    return result.samples[0].token_ids;
  }

  static std::vector<std::unique_ptr<WorkerProcess>>* workers_;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
};

std::vector<std::unique_ptr<WorkerProcess>>* EngineWorkersTest::workers_ = nullptr;

// Mixed-length greedy requests with random prompts.
std::vector<GenerateRequest> MixedRequests(int count, int max_prompt, int max_output, uint32_t seed) {
  std::mt19937 random(seed);
  std::vector<GenerateRequest> requests;
  for (int i = 0; i < count; ++i) {
    GenerateRequest request;
    const int length = 3 + static_cast<int>(random() % max_prompt);
    for (int k = 0; k < length; ++k) request.prompt_token_ids.push_back(static_cast<int32_t>(random() % 1024));
    request.sampling.temperature = 0;
    request.max_tokens = 4 + static_cast<int32_t>(random() % max_output);
    request.ignore_eos = true;
    requests.push_back(std::move(request));
  }
  return requests;
}

TEST_F(EngineWorkersTest, ThirtyTwoConcurrentGreedyRequestsGiveWhatEachGivesAlone) {
  const std::vector<GenerateRequest> requests = MixedRequests(32, 100, 20, 1);
  std::unique_ptr<Engine> engine = StartEngine();
  std::vector<std::vector<int32_t>> alone;
  for (const GenerateRequest& request : requests) alone.push_back(Tokens(*engine, request));

  std::vector<std::shared_ptr<EventQueue>> queues;
  for (const GenerateRequest& request : requests) queues.push_back(Submit(*engine, request));
  for (size_t i = 0; i < requests.size(); ++i) {
    Collected together = Collect(*queues[i], 1);
    ASSERT_TRUE(together.error.ok()) << together.error;
    EXPECT_EQ(together.samples[0].token_ids, alone[i]) << "request " << i;
  }
}

TEST_F(EngineWorkersTest, SmallKvPoolPreemptsYetGivesTheSameTokens) {
  const std::vector<GenerateRequest> requests = MixedRequests(12, 60, 40, 2);
  std::vector<std::vector<int32_t>> alone;
  {
    std::unique_ptr<Engine> engine = StartEngine();
    for (const GenerateRequest& request : requests) alone.push_back(Tokens(*engine, request));
  }
  // 20 blocks = 320 tokens for 12 requests of up to ~100 tokens each.
  std::unique_ptr<Engine> engine = StartEngine(/*num_blocks=*/20);
  std::vector<std::shared_ptr<EventQueue>> queues;
  for (const GenerateRequest& request : requests) queues.push_back(Submit(*engine, request));
  for (size_t i = 0; i < requests.size(); ++i) {
    Collected together = Collect(*queues[i], 1);
    ASSERT_TRUE(together.error.ok()) << together.error;
    EXPECT_EQ(together.samples[0].token_ids, alone[i]) << "request " << i;
  }
  engine::EngineStats stats = engine->stats();
  for (int i = 0; i < 100 && stats.num_used_kv_blocks != 0; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
    stats = engine->stats();
  }
  EXPECT_GT(stats.num_preemptions, 0);
  EXPECT_EQ(stats.num_used_kv_blocks, 0) << "every block is back in the pool";
}

TEST_F(EngineWorkersTest, SecondRequestPrefillsOnlyItsSuffix) {
  std::unique_ptr<Engine> engine = StartEngine();
  GenerateRequest first = MixedRequests(1, 1, 8, 3)[0];
  first.prompt_token_ids.clear();
  for (int i = 0; i < 64; ++i) first.prompt_token_ids.push_back((i * 37 + 11) % 1024);  // the system prompt
  GenerateRequest second = first;
  first.prompt_token_ids.insert(first.prompt_token_ids.end(), {5, 6, 7});
  second.prompt_token_ids.insert(second.prompt_token_ids.end(), {900, 901, 902, 903, 904});

  Collected a = Collect(*Submit(*engine, first), 1);
  ASSERT_TRUE(a.error.ok()) << a.error;
  const engine::EngineStats before = engine->stats();
  Collected b = Collect(*Submit(*engine, second), 1);
  ASSERT_TRUE(b.error.ok()) << b.error;
  EXPECT_EQ(b.samples[0].num_cached_prompt_tokens, 64);
  EXPECT_EQ(engine->stats().prefix_cache_hit_tokens - before.prefix_cache_hit_tokens, 64);

  // The same request under another salt computes everything, and agrees.
  GenerateRequest salted = second;
  salted.cache_salt = "other tenant";
  Collected c = Collect(*Submit(*engine, salted), 1);
  EXPECT_EQ(c.samples[0].num_cached_prompt_tokens, 0);
  EXPECT_EQ(c.samples[0].token_ids, b.samples[0].token_ids);
}

TEST_F(EngineWorkersTest, SeededSamplesAreReproducibleAndParallelSamplesDiffer) {
  GenerateRequest request = MixedRequests(1, 40, 1, 4)[0];
  request.max_tokens = 16;
  request.sampling.temperature = 3.0f;  // the fixture's logits are sharp
  request.sampling.seed = 1234;
  request.sampling.presence_penalty = 0.5f;
  std::unique_ptr<Engine> engine = StartEngine();
  const std::vector<int32_t> alone = Tokens(*engine, request);

  std::vector<std::shared_ptr<EventQueue>> others;
  for (const GenerateRequest& other : MixedRequests(8, 50, 20, 5)) others.push_back(Submit(*engine, other));
  EXPECT_EQ(Tokens(*engine, request), alone) << "the batch changed a seeded sample";
  for (auto& queue : others) Collect(*queue, 1);

  request.n = 3;
  Collected parallel = Collect(*Submit(*engine, request), 3);
  ASSERT_TRUE(parallel.error.ok()) << parallel.error;
  EXPECT_EQ(parallel.samples[0].token_ids, alone);
  EXPECT_NE(parallel.samples[1].token_ids, parallel.samples[0].token_ids);
  EXPECT_NE(parallel.samples[2].token_ids, parallel.samples[1].token_ids);
  EXPECT_NE(parallel.samples[2].token_ids, parallel.samples[0].token_ids);
}

}  // namespace
}  // namespace duet
