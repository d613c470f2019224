// The router's own cost, with the model taken out: a FakeWorker that answers
// at once (tests/router/engine/fake_worker.h, hashing only the last token).
//
// - BM_SchedulerStep/<seqs>: one scheduler step with <seqs> decoding
//   sequences: Schedule (block growth, preemption checks), OnStepComputed
//   (prefix-cache entries for blocks that filled) and appending the tokens.
//   Sequences that reach their length finish and new ones arrive, so the
//   block manager keeps allocating and freeing.
// - BM_EngineStep/<seqs>: the whole engine loop at <seqs> running requests:
//   scheduling, building the StepRequest, the fake's answer, stop checks,
//   detokenization and event delivery on the output thread.
// - BM_SubmitToFirstEvent/<busy>: Submit to the first event of a one-token
//   request, on an idle engine (0) or beside <busy> running requests;
//   p50/p99 in microseconds.
#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

#include "benchmark/benchmark.h"
#include "router/engine/engine.h"
#include "router/engine/scheduler.h"
#include "tests/router/engine/engine_test_util.h"
#include "tests/router/engine/fake_worker.h"

namespace duet::engine {
namespace {

using Clock = std::chrono::steady_clock;

void BM_SchedulerStep(benchmark::State& state) {
  const int32_t num_seqs = static_cast<int32_t>(state.range(0));
  const int32_t prompt_len = 512, max_len = 1024, block_size = 16;
  BlockManager blocks(num_seqs * max_len / block_size + 64, block_size, /*enable_prefix_caching=*/true);
  Scheduler scheduler({.max_num_seqs = num_seqs, .max_num_batched_tokens = 8192}, &blocks);
  std::vector<std::unique_ptr<Sequence>> sequences;
  uint64_t next_id = 1;
  int32_t next_token = 0;
  auto add = [&](int32_t stagger) {
    auto seq = std::make_unique<Sequence>();
    seq->seq_id = next_id++;
    for (int32_t i = 0; i < prompt_len + stagger; ++i) seq->token_ids.push_back(next_token++ % 150000);
    seq->num_prompt_tokens = prompt_len;
    scheduler.AddWaiting(seq.get());
    sequences.push_back(std::move(seq));
  };
  for (int32_t i = 0; i < num_seqs; ++i) add(i % 256);
  // Prefill everything first; then every step is decodes.
  while (scheduler.num_waiting() > 0 || !scheduler.running().front()->is_decoding()) {
    SchedulerOutput output = scheduler.Schedule();
    scheduler.OnStepComputed(output);
    for (const ScheduledChunk& chunk : output.chunks) {
      if (chunk.sample) chunk.seq->token_ids.push_back(next_token++ % 150000);
    }
  }
  int64_t num_scheduled = 0;
  for (auto _ : state) {
    SchedulerOutput output = scheduler.Schedule();
    scheduler.OnStepComputed(output);
    num_scheduled += static_cast<int64_t>(output.chunks.size());
    for (const ScheduledChunk& chunk : output.chunks) {
      if (chunk.sample) chunk.seq->token_ids.push_back(next_token++ % 150000);
    }
    // Sequences at their length finish; a new one takes each place.
    for (size_t i = 0; i < sequences.size(); ++i) {
      if (sequences[i]->num_tokens() >= max_len) {
        scheduler.Finish(sequences[i].get());
        std::swap(sequences[i], sequences.back());
        sequences.pop_back();
        add(0);
      }
    }
    benchmark::DoNotOptimize(output);
  }
  for (auto& seq : sequences) scheduler.Finish(seq.get());
  state.counters["seqs_per_step"] =
      benchmark::Counter(static_cast<double>(num_scheduled) / static_cast<double>(state.iterations()));
}
BENCHMARK(BM_SchedulerStep)->Arg(64)->Arg(256)->Unit(benchmark::kMicrosecond);

struct BenchEngine {
  std::unique_ptr<tokenizer::Tokenizer> tokenizer = testing::ByteTokenizer();
  std::shared_ptr<testing::FakeWorker::Shared> shared;
  std::unique_ptr<Engine> engine;

  explicit BenchEngine(int32_t max_num_seqs) {
    testing::FakeWorkerOptions worker;
    // Room for every request to run 10k tokens: they never end while timed.
    worker.num_blocks = std::max(max_num_seqs, 2) * (10240 / 16) + 64;
    worker.read_history = false;
    worker.check_requests = false;
    auto fake = std::make_unique<testing::FakeWorker>(worker);
    shared = fake->shared();
    ModelInfo info;
    info.max_model_len = 16384;
    info.vocab_size = 257;
    info.eos_token_ids = {testing::kByteEosId};
    info.num_kv_blocks = worker.num_blocks;
    info.kv_block_size = 16;
    EngineOptions options;
    options.max_num_seqs = std::max(max_num_seqs, 1);
    options.max_num_batched_tokens = std::max(8192, max_num_seqs);
    engine = *Engine::Start(options, info, tokenizer.get(), std::move(fake));
  }

  // A request that runs until aborted.
  std::shared_ptr<EventQueue> SubmitEndless(uint64_t* id) {
    GenerateRequest request;
    request.prompt_token_ids = testing::Bytes(std::string(128, 'x'));
    request.sampling.temperature = 0;
    request.max_tokens = 10000;
    auto queue = std::make_shared<EventQueue>();
    *id = *engine->Submit(*ValidateRequest(request, engine->request_limits()), queue);
    return queue;
  }
};

void BM_EngineStep(benchmark::State& state) {
  const int32_t num_seqs = static_cast<int32_t>(state.range(0));
  BenchEngine bench(num_seqs);
  std::vector<uint64_t> ids(num_seqs);
  std::vector<std::shared_ptr<EventQueue>> queues;
  for (int32_t i = 0; i < num_seqs; ++i) queues.push_back(bench.SubmitEndless(&ids[i]));
  // Wait until every request decodes, then time steps.
  while (bench.engine->stats().num_running_seqs < num_seqs) absl::SleepFor(absl::Milliseconds(1));
  for (auto _ : state) {
    const int64_t start = bench.shared->num_steps.load();
    const Clock::time_point begin = Clock::now();
    while (bench.shared->num_steps.load() < start + 100) absl::SleepFor(absl::Microseconds(200));
    const double seconds = std::chrono::duration<double>(Clock::now() - begin).count();
    state.SetIterationTime(seconds / static_cast<double>(bench.shared->num_steps.load() - start));
  }
  for (uint64_t id : ids) bench.engine->Abort(id);
}
BENCHMARK(BM_EngineStep)->Arg(1)->Arg(64)->Arg(256)->UseManualTime()->Iterations(20)->Unit(benchmark::kMicrosecond);

void BM_SubmitToFirstEvent(benchmark::State& state) {
  const int32_t num_busy = static_cast<int32_t>(state.range(0));
  BenchEngine bench(num_busy + 1);
  std::vector<uint64_t> busy_ids(num_busy);
  std::vector<std::shared_ptr<EventQueue>> busy;
  for (int32_t i = 0; i < num_busy; ++i) busy.push_back(bench.SubmitEndless(&busy_ids[i]));
  while (bench.engine->stats().num_running_seqs < num_busy) absl::SleepFor(absl::Milliseconds(1));
  GenerateRequest request;
  request.prompt_token_ids = testing::Bytes("hello there");
  request.sampling.temperature = 0;
  request.max_tokens = 1;
  std::vector<double> micros;
  for (auto _ : state) {
    auto queue = std::make_shared<EventQueue>();
    const Clock::time_point begin = Clock::now();
    benchmark::DoNotOptimize(bench.engine->Submit(*ValidateRequest(request, bench.engine->request_limits()), queue));
    EngineEvent event;
    queue->Next(&event, absl::Seconds(10));
    micros.push_back(std::chrono::duration<double, std::micro>(Clock::now() - begin).count());
    state.SetIterationTime(micros.back() / 1e6);
  }
  std::sort(micros.begin(), micros.end());
  state.counters["p50_us"] = micros[micros.size() / 2];
  state.counters["p99_us"] = micros[std::min(micros.size() - 1, micros.size() * 99 / 100)];
  for (uint64_t id : busy_ids) bench.engine->Abort(id);
}
BENCHMARK(BM_SubmitToFirstEvent)->Arg(0)->Arg(255)->UseManualTime()->Iterations(500)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace duet::engine

BENCHMARK_MAIN();
