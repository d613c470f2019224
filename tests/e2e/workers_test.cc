// Two real duet-worker processes on loopback, driven through the real gRPC
// Step streams by the router's WorkerGroup: tensor parallel for the dense
// fixtures and expert parallel for the MoE ones reproduce the transformers
// fixtures (greedy tokens, and logprobs from the fixture logits) for prefill,
// chunked prefill and decode of two sequences batched together. Then the
// faults: a killed worker and a stopped worker are detected within a bounded
// time, the group can be re-formed, a hung collective ends the worker with
// exit code 3, and bad Init requests get clear errors.
#include <signal.h>

#include <chrono>
#include <map>
#include <cmath>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "common/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "router/workers/worker_group.h"
#include "tests/e2e/worker_process.h"
#include "tests/worker/models/golden_reference.h"

namespace duet {
namespace {

using router::WorkerGroup;
using router::WorkerGroupOptions;
using testing::WorkerProcess;
using worker::FixtureDir;
using worker::LoadReference;
using worker::Reference;
namespace v1 = worker::v1;

constexpr float kLogprobAtol = 1e-3f;
constexpr int kBlockSize = 16;

std::vector<float> LogSoftmax(const float* logits, int64_t vocab) {
  const float max = *std::max_element(logits, logits + vocab);
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(double(logits[i]) - max);
  std::vector<float> out(vocab);
  for (int64_t i = 0; i < vocab; ++i) out[i] = float(double(logits[i]) - max - std::log(sum));
  return out;
}

WorkerGroupOptions GroupOptions(const std::vector<std::unique_ptr<WorkerProcess>>& workers,
                                const std::string& fixture) {
  WorkerGroupOptions options;
  for (const auto& worker : workers) options.addresses.push_back(worker->address());
  options.init.set_model_path(FixtureDir(fixture));
  options.init.set_kv_memory_bytes(uint64_t{16} << 20);
  options.init.set_max_model_len(256);
  options.init_timeout = absl::Seconds(60);
  options.step_timeout = absl::Seconds(20);
  options.rpc_timeout = absl::Seconds(20);
  return options;
}

std::vector<std::unique_ptr<WorkerProcess>> StartWorkers(int count,
                                                          std::vector<std::string> flags = {}) {
  std::vector<std::unique_ptr<WorkerProcess>> workers;
  for (int rank = 0; rank < count; ++rank) {
    workers.push_back(std::make_unique<WorkerProcess>("worker" + std::to_string(rank), flags));
    EXPECT_TRUE(workers.back()->started()) << workers.back()->Log();
  }
  return workers;
}

// Plays the router for two sequences: hands out KV blocks, sends prefill
// chunks and decode tokens, collects the sampled tokens.
class Driver {
 public:
  explicit Driver(const WorkerGroup& group)
      : next_block_(static_cast<int64_t>(group.info().num_kv_blocks()) - 1) {}

  v1::StepRequest NewStep() {
    v1::StepRequest request;
    request.set_step_id(++step_id_);
    return request;
  }

  // Schedules tokens [start, start + tokens.size()) of `seq`, granting the
  // blocks they need.
  void Schedule(v1::StepRequest& request, uint64_t seq, const std::vector<int32_t>& tokens,
                int64_t start, bool sample) {
    v1::ScheduledSequence* scheduled = request.add_scheduled();
    scheduled->set_seq_id(seq);
    scheduled->mutable_token_ids()->Add(tokens.begin(), tokens.end());
    scheduled->set_start_position(static_cast<uint32_t>(start));
    scheduled->set_sample(sample);
    int64_t& blocks = blocks_[seq];
    const int64_t end = start + static_cast<int64_t>(tokens.size());
    while (blocks * kBlockSize < end) {
      // Interleave sequences' blocks, from the top of the pool down.
      scheduled->add_new_block_ids(static_cast<uint32_t>(next_block_--));
      ++blocks;
    }
  }

  static void AddSequence(v1::StepRequest& request, uint64_t seq, const std::vector<int32_t>& prompt,
                          uint32_t top_logprobs) {
    v1::NewSequence* added = request.add_new_sequences();
    added->set_seq_id(seq);
    added->mutable_prompt_token_ids()->Add(prompt.begin(), prompt.end());
    added->mutable_sampling()->set_temperature(0.0f);
    added->mutable_sampling()->set_top_logprobs(top_logprobs);
  }

 private:
  int64_t next_block_;
  uint64_t step_id_ = 0;
  std::map<uint64_t, int64_t> blocks_;
};

const v1::SampledToken* Find(const v1::StepResult& result, uint64_t seq) {
  for (const v1::SampledToken& token : result.sampled()) {
    if (token.seq_id() == seq) return &token;
  }
  return nullptr;
}

// Checks a sampled token's logprobs against log-softmax of the fixture logits.
void ExpectLogprobs(const v1::SampledToken& token, const float* logits, int64_t vocab,
                    const std::string& where) {
  const std::vector<float> expected = LogSoftmax(logits, vocab);
  ASSERT_TRUE(token.has_logprob()) << where;
  EXPECT_NEAR(token.logprob(), expected[token.token_id()], kLogprobAtol) << where;
  ASSERT_EQ(token.top_logprobs_size(), 5) << where;
  EXPECT_EQ(token.top_logprobs(0).token_id(), token.token_id()) << where << ": greedy is the top";
  for (const v1::TopLogprob& top : token.top_logprobs()) {
    EXPECT_NEAR(top.logprob(), expected[top.token_id()], kLogprobAtol) << where;
  }
}

// Runs the fixture's two prompts through `group`: sequence 1 prefilled in
// the fixture's two chunks, sequence 2 in one pass batched with the second
// chunk, then both decoded together. Compares with the fixture.
void RunFixture(WorkerGroup& group, const Reference& ref, int64_t vocab, uint64_t first_seq_id) {
  Driver driver(group);
  const uint64_t a = first_seq_id, b = first_seq_id + 1;
  const std::vector<int32_t> chunk1(ref.prompt_ids.begin(), ref.prompt_ids.begin() + ref.chunk_lens[0]);
  const std::vector<int32_t> chunk2(ref.prompt_ids.begin() + ref.chunk_lens[0], ref.prompt_ids.end());

  v1::StepRequest step = driver.NewStep();
  Driver::AddSequence(step, a, ref.prompt_ids, 5);
  driver.Schedule(step, a, chunk1, 0, /*sample=*/false);
  absl::StatusOr<v1::StepResult> result = group.Step(step);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->sampled_size(), 0) << "a prefill chunk that is not the last samples nothing";

  step = driver.NewStep();
  Driver::AddSequence(step, b, ref.prompt2_ids, 5);
  driver.Schedule(step, a, chunk2, ref.chunk_lens[0], true);
  driver.Schedule(step, b, ref.prompt2_ids, 0, true);
  result = group.Step(step);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->sampled_size(), 2);

  const int64_t prompt_len = static_cast<int64_t>(ref.prompt_ids.size());
  const int64_t prompt2_len = static_cast<int64_t>(ref.prompt2_ids.size());
  const int64_t steps_a = static_cast<int64_t>(ref.decode_logits.size()) / vocab;
  const int64_t steps_b = static_cast<int64_t>(ref.prompt2_decode_logits.size()) / vocab;
  for (int64_t i = 0;; ++i) {
    const v1::SampledToken* token_a = Find(*result, a);
    const v1::SampledToken* token_b = Find(*result, b);
    step = driver.NewStep();
    if (i <= steps_a) {
      ASSERT_NE(token_a, nullptr);
      EXPECT_EQ(token_a->token_id(), ref.greedy_ids[i]) << "sequence a, token " << i;
      const float* logits = i == 0 ? ref.prefill_logits.data() + (prompt_len - 1) * vocab
                                   : ref.decode_logits.data() + (i - 1) * vocab;
      ExpectLogprobs(*token_a, logits, vocab, StrCat("sequence a, token ", i));
      if (i < steps_a) driver.Schedule(step, a, {token_a->token_id()}, prompt_len + i, true);
    }
    if (i <= steps_b) {
      ASSERT_NE(token_b, nullptr);
      EXPECT_EQ(token_b->token_id(), ref.prompt2_greedy_ids[i]) << "sequence b, token " << i;
      const float* logits = i == 0 ? ref.prompt2_prefill_logits.data() + (prompt2_len - 1) * vocab
                                   : ref.prompt2_decode_logits.data() + (i - 1) * vocab;
      ExpectLogprobs(*token_b, logits, vocab, StrCat("sequence b, token ", i));
      if (i < steps_b) driver.Schedule(step, b, {token_b->token_id()}, prompt2_len + i, true);
    }
    if (step.scheduled_size() == 0) break;
    result = group.Step(step);
    ASSERT_TRUE(result.ok()) << result.status();
  }
  step = driver.NewStep();
  step.add_finished_seq_ids(a);
  step.add_finished_seq_ids(b);
  result = group.Step(step);
  ASSERT_TRUE(result.ok()) << result.status();
}

using Param = std::tuple<std::string /*fixture*/, int /*world size*/>;

class WorkersGoldenTest : public ::testing::TestWithParam<Param> {};

TEST_P(WorkersGoldenTest, GreedyTokensAndLogprobsMatchTransformers) {
  const auto& [fixture, world_size] = GetParam();
  auto workers = StartWorkers(world_size);
  absl::StatusOr<std::unique_ptr<WorkerGroup>> group = WorkerGroup::Start(GroupOptions(workers, fixture));
  ASSERT_TRUE(group.ok()) << group.status() << "\n" << workers[0]->Log();
  const bool moe = fixture.find("moe") != std::string::npos;
  EXPECT_EQ((*group)->info().parallel_mode(),
            moe ? v1::PARALLEL_MODE_EXPERT : v1::PARALLEL_MODE_TENSOR);
  EXPECT_GT((*group)->info().num_kv_blocks(), 16u);
  const Reference ref = LoadReference(FixtureDir(fixture));
  RunFixture(**group, ref, (*group)->info().vocab_size(), 1);
  EXPECT_TRUE((*group)->Shutdown().ok());
  for (auto& worker : workers) EXPECT_EQ(worker->WaitExit(std::chrono::seconds(10)), 0);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, WorkersGoldenTest,
                         ::testing::Values(Param{"llama", 2}, Param{"qwen2", 2}, Param{"qwen3", 2},
                                           Param{"qwen3_moe_topk_norm", 2},
                                           Param{"qwen3_moe_no_norm", 2}, Param{"qwen3", 1},
                                           Param{"llama_awq", 2}, Param{"qwen3_moe_fp8", 2}),
                         [](const ::testing::TestParamInfo<Param>& info) {
                           return std::get<0>(info.param) + "_world" +
                                  std::to_string(std::get<1>(info.param));
                         });

TEST(WorkersFaultTest, KilledWorkerIsDetectedAndTheGroupCanBeReformed) {
  auto workers = StartWorkers(2);
  WorkerGroupOptions options = GroupOptions(workers, "qwen3");
  absl::StatusOr<std::unique_ptr<WorkerGroup>> group = WorkerGroup::Start(options);
  ASSERT_TRUE(group.ok()) << group.status();
  const Reference ref = LoadReference(FixtureDir("qwen3"));
  const int64_t vocab = (*group)->info().vocab_size();

  // A sequence in flight when rank 1 dies.
  Driver driver(**group);
  v1::StepRequest step = driver.NewStep();
  Driver::AddSequence(step, 7, ref.prompt_ids, 0);
  driver.Schedule(step, 7, ref.prompt_ids, 0, true);
  const absl::StatusOr<v1::StepResult> first = (*group)->Step(step);
  ASSERT_TRUE(first.ok()) << first.status();
  const int port1 = workers[1]->port();
  workers[1]->Signal(SIGKILL);
  workers[1]->WaitExit(std::chrono::seconds(5));

  step = driver.NewStep();
  driver.Schedule(step, 7, {ref.greedy_ids[0]}, static_cast<int64_t>(ref.prompt_ids.size()), true);
  const auto started = std::chrono::steady_clock::now();
  absl::StatusOr<v1::StepResult> result = (*group)->Step(step);
  const auto waited = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable) << result.status();
  EXPECT_NE(result.status().message().find("rank 1"), std::string::npos) << result.status();
  EXPECT_LT(waited, std::chrono::seconds(10)) << "a dead worker is noticed without waiting out the step timeout";
  EXPECT_TRUE((*group)->broken());
  EXPECT_EQ((*group)->Step(step).status().code(), absl::StatusCode::kUnavailable);

  // The survivor stays up; with a new rank 1 on the same port the group forms again.
  workers[1] = std::make_unique<WorkerProcess>("worker1b", std::vector<std::string>{}, port1);
  ASSERT_TRUE(workers[1]->started()) << workers[1]->Log();
  const absl::Status reformed = (*group)->Reinitialize();
  ASSERT_TRUE(reformed.ok()) << reformed << "\n" << workers[0]->Log();
  RunFixture(**group, ref, vocab, 100);
  EXPECT_EQ(workers[0]->WaitExit(std::chrono::milliseconds(0)), -1) << "the survivor kept running";
}

TEST(WorkersFaultTest, StoppedWorkerTimesOutAndAHungCollectiveEndsTheWorker) {
  auto workers = StartWorkers(2, {"--collective-timeout=2"});
  WorkerGroupOptions options = GroupOptions(workers, "llama");
  options.step_timeout = absl::Seconds(4);
  absl::StatusOr<std::unique_ptr<WorkerGroup>> group = WorkerGroup::Start(options);
  ASSERT_TRUE(group.ok()) << group.status();
  const Reference ref = LoadReference(FixtureDir("llama"));

  workers[1]->Signal(SIGSTOP);
  Driver driver(**group);
  v1::StepRequest step = driver.NewStep();
  Driver::AddSequence(step, 1, ref.prompt_ids, 0);
  driver.Schedule(step, 1, ref.prompt_ids, 0, true);
  const auto started = std::chrono::steady_clock::now();
  absl::StatusOr<v1::StepResult> result = (*group)->Step(step);
  const auto waited = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable) << result.status();
  EXPECT_LT(waited, std::chrono::seconds(15));

  // Rank 0 waited in an all-reduce for the stopped rank: past its collective
  // timeout it exits with code 3 and says why.
  EXPECT_EQ(workers[0]->WaitExit(std::chrono::seconds(20)), 3) << workers[0]->Log();
  EXPECT_NE(workers[0]->Log().find("timed out"), std::string::npos) << workers[0]->Log();
  workers[1]->Signal(SIGKILL);
}

TEST(WorkersFaultTest, RejectedStepLeavesTheGroupUsable) {
  auto workers = StartWorkers(2);
  absl::StatusOr<std::unique_ptr<WorkerGroup>> group = WorkerGroup::Start(GroupOptions(workers, "qwen3"));
  ASSERT_TRUE(group.ok()) << group.status();
  Driver driver(**group);
  v1::StepRequest step = driver.NewStep();
  driver.Schedule(step, 42, {1, 2, 3}, 0, true);  // never added
  absl::StatusOr<v1::StepResult> result = (*group)->Step(step);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
  EXPECT_NE(result.status().message().find("sequence 42"), std::string::npos) << result.status();
  EXPECT_FALSE((*group)->broken());

  step = driver.NewStep();
  Driver::AddSequence(step, 1, {5, 6, 7}, 0);
  driver.Schedule(step, 1, {5, 6, 7}, 0, true);
  step.mutable_scheduled(0)->set_new_block_ids(0, 1u << 30);  // outside the pool
  result = (*group)->Step(step);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();

  RunFixture(**group, LoadReference(FixtureDir("qwen3")), (*group)->info().vocab_size(), 1);
}

// Structured output overlapped with the forward pass: the request goes out
// first, the masks are computed while both ranks run it, and rank 0 samples
// inside them. Both ranks wait for the masks (compute_micros covers the
// time the router spent on them), also for a rejected request, whose masks
// are read and dropped so the stream stays in step.
TEST(WorkersLateMasksTest, MasksSentAfterTheRequestDecideTheSample) {
  auto workers = StartWorkers(2);
  absl::StatusOr<std::unique_ptr<WorkerGroup>> group = WorkerGroup::Start(GroupOptions(workers, "qwen3"));
  ASSERT_TRUE(group.ok()) << group.status();
  Driver driver(**group);
  const int64_t vocab = (*group)->info().vocab_size();
  const std::vector<int32_t> prompt = {5, 6, 7, 8};

  v1::StepRequest free = driver.NewStep();
  Driver::AddSequence(free, 1, prompt, 0);
  driver.Schedule(free, 1, prompt, 0, true);
  absl::StatusOr<v1::StepResult> result = (*group)->Step(free);
  ASSERT_TRUE(result.ok()) << result.status();
  const int32_t greedy = result->sampled(0).token_id();
  const int32_t allowed = (greedy + 1) % static_cast<int32_t>(vocab);

  v1::StepRequest step = driver.NewStep();
  Driver::AddSequence(step, 2, prompt, 0);
  driver.Schedule(step, 2, prompt, 0, true);
  step.mutable_scheduled(0)->set_mask_follows(true);
  constexpr auto kMaskTime = std::chrono::milliseconds(300);
  int calls = 0;
  result = (*group)->StepWithLateMasks(step, [&] {
    ++calls;
    std::this_thread::sleep_for(kMaskTime);  // a grammar's first mask can take this long
    v1::LateMasks masks;
    std::string mask(allowed / 8 + 1, '\0');
    mask[allowed / 8] = static_cast<char>(1 << (allowed % 8));
    masks.add_allowed_token_masks(mask);
    return masks;
  });
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(calls, 1);
  ASSERT_EQ(result->sampled_size(), 1);
  EXPECT_EQ(result->sampled(0).token_id(), allowed);
  // The workers had the request while the masks were computed.
  EXPECT_GE(result->compute_micros(), std::chrono::microseconds(kMaskTime).count());

  // Rejected (sequence 2 exists already): its masks are still consumed.
  step = driver.NewStep();
  Driver::AddSequence(step, 2, prompt, 0);
  driver.Schedule(step, 2, {allowed}, static_cast<int64_t>(prompt.size()), true);
  step.mutable_scheduled(0)->set_mask_follows(true);
  result = (*group)->StepWithLateMasks(step, [] {
    v1::LateMasks masks;
    masks.add_allowed_token_masks("");
    return masks;
  });
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
  EXPECT_FALSE((*group)->broken());
  v1::StepRequest decode = driver.NewStep();
  driver.Schedule(decode, 2, {allowed}, static_cast<int64_t>(prompt.size()), true);
  result = (*group)->Step(decode);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->sampled_size(), 1);
}

// A bf16 KV cache across two ranks: the same KV budget holds twice the
// blocks, each half the bytes, and greedy decoding still gives the fixture's
// tokens.
TEST(WorkersKvDtypeTest, Bf16CacheHoldsTwiceTheBlocksAndDecodesTheFixture) {
  const Reference ref = LoadReference(FixtureDir("qwen3"));
  uint64_t fp32_blocks = 0, fp32_block_bytes = 0;
  for (v1::KvCacheDtype dtype : {v1::KV_CACHE_DTYPE_AUTO, v1::KV_CACHE_DTYPE_BFLOAT16}) {
    auto workers = StartWorkers(2);
    WorkerGroupOptions options = GroupOptions(workers, "qwen3");
    options.init.set_kv_cache_dtype(dtype);
    absl::StatusOr<std::unique_ptr<WorkerGroup>> group = WorkerGroup::Start(options);
    ASSERT_TRUE(group.ok()) << group.status() << "\n" << workers[0]->Log();
    const v1::InitResponse& info = (*group)->info();
    if (dtype == v1::KV_CACHE_DTYPE_AUTO) {
      EXPECT_EQ(info.kv_cache_dtype(), v1::KV_CACHE_DTYPE_FLOAT32);
      fp32_blocks = info.num_kv_blocks();
      fp32_block_bytes = info.kv_block_bytes();
    } else {
      EXPECT_EQ(info.kv_cache_dtype(), v1::KV_CACHE_DTYPE_BFLOAT16);
      EXPECT_EQ(info.kv_block_bytes() * 2, fp32_block_bytes);
      EXPECT_EQ(info.num_kv_blocks(), 2 * fp32_blocks);
    }
    Driver driver(**group);
    v1::StepRequest step = driver.NewStep();
    Driver::AddSequence(step, 1, ref.prompt_ids, 0);
    driver.Schedule(step, 1, ref.prompt_ids, 0, true);
    const int64_t prompt_len = static_cast<int64_t>(ref.prompt_ids.size());
    for (size_t i = 0; i < ref.greedy_ids.size(); ++i) {
      absl::StatusOr<v1::StepResult> result = (*group)->Step(step);
      ASSERT_TRUE(result.ok()) << result.status();
      const v1::SampledToken* token = Find(*result, 1);
      ASSERT_NE(token, nullptr);
      EXPECT_EQ(token->token_id(), ref.greedy_ids[i]) << "token " << i;
      step = driver.NewStep();
      if (i + 1 < ref.greedy_ids.size()) {
        driver.Schedule(step, 1, {token->token_id()}, prompt_len + static_cast<int64_t>(i), true);
      }
    }
    step.add_finished_seq_ids(1);
    ASSERT_TRUE((*group)->Step(step).ok());
    EXPECT_TRUE((*group)->Shutdown().ok());
    for (auto& worker : workers) EXPECT_EQ(worker->WaitExit(std::chrono::seconds(10)), 0);
  }
}

// Init errors: each is clear, names the rank, and the workers stay usable.
TEST(WorkersInitTest, BadInitRequestsGetClearErrors) {
  auto workers = StartWorkers(2, {"--connect-timeout=10"});
  WorkerGroupOptions options = GroupOptions(workers, "qwen3");

  options.init.set_model_path("/nonexistent/model");
  absl::StatusOr<std::unique_ptr<WorkerGroup>> group = WorkerGroup::Start(options);
  ASSERT_FALSE(group.ok());
  EXPECT_EQ(group.status().code(), absl::StatusCode::kNotFound) << group.status();
  EXPECT_NE(group.status().message().find("/nonexistent/model: no such file or directory"), std::string::npos)
      << group.status();

  options = GroupOptions(workers, "qwen3");
  options.init.set_kv_memory_bytes(4096);
  group = WorkerGroup::Start(options);
  ASSERT_FALSE(group.ok());
  EXPECT_EQ(group.status().code(), absl::StatusCode::kResourceExhausted) << group.status();
  EXPECT_NE(group.status().message().find("max_model_len"), std::string::npos) << group.status();

  options = GroupOptions(workers, "qwen3");
  options.init.set_parallel_mode(v1::PARALLEL_MODE_EXPERT);  // a dense model
  group = WorkerGroup::Start(options);
  ASSERT_FALSE(group.ok());
  EXPECT_EQ(group.status().code(), absl::StatusCode::kInvalidArgument) << group.status();

  // Rank >= world size, straight to the worker.
  auto channel = grpc::CreateChannel(workers[0]->address(), grpc::InsecureChannelCredentials());
  auto stub = v1::Worker::NewStub(channel);
  {
    grpc::ClientContext context;
    v1::InitRequest request = options.init;
    request.set_rank(2);
    request.set_world_size(2);
    v1::InitResponse response;
    const grpc::Status status = stub->Init(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(status.error_message().find("rank 2"), std::string::npos) << status.error_message();
  }

  // Different models on the two ranks.
  {
    grpc::ClientContext bootstrap_context;
    v1::CreateBootstrapRequest bootstrap_request;
    bootstrap_request.set_world_size(2);
    v1::CreateBootstrapResponse bootstrap;
    ASSERT_TRUE(stub->CreateBootstrap(&bootstrap_context, bootstrap_request, &bootstrap).ok());
    grpc::Status statuses[2];
    std::vector<std::thread> threads;
    for (int rank = 0; rank < 2; ++rank) {
      threads.emplace_back([&, rank] {
        auto rank_stub = v1::Worker::NewStub(
            grpc::CreateChannel(workers[rank]->address(), grpc::InsecureChannelCredentials()));
        v1::InitRequest request = GroupOptions(workers, rank == 0 ? "qwen3" : "llama").init;
        request.set_rank(rank);
        request.set_world_size(2);
        request.set_collective_bootstrap(bootstrap.collective_bootstrap());
        grpc::ClientContext context;
        v1::InitResponse response;
        statuses[rank] = rank_stub->Init(&context, request, &response);
      });
    }
    for (std::thread& thread : threads) thread.join();
    for (int rank = 0; rank < 2; ++rank) {
      EXPECT_EQ(statuses[rank].error_code(), grpc::StatusCode::FAILED_PRECONDITION) << rank;
      EXPECT_NE(statuses[rank].error_message().find("different models"), std::string::npos)
          << statuses[rank].error_message();
    }
  }

  // After all that, a good Init works on the same processes.
  group = WorkerGroup::Start(GroupOptions(workers, "qwen3"));
  ASSERT_TRUE(group.ok()) << group.status();
  RunFixture(**group, LoadReference(FixtureDir("qwen3")), (*group)->info().vocab_size(), 1);
}

}  // namespace
}  // namespace duet
