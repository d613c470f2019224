// duet-bench-decode: decode throughput of a model file on the CPU backend, as
// a worker runs it: S streams prefilled, then decoded together one token per
// stream per step through the StepExecutor (the batched forward pass, greedy
// sampling on rank 0). Prints one JSON object: tokens per second over all
// streams, milliseconds per step, and the settings.
//
//   duet-bench-decode --model FILE.gguf --threads 2 --streams 4 --tokens 64
//
// tools/bench/gguf_vs_llamacpp.py runs it next to llama.cpp on the same file
// (docs/performance.md).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/model_config.h"
#include "common/str_cat.h"
#include "duet/worker/v1/worker.pb.h"
#include "kernels/ops.h"
#include "nlohmann/json.hpp"
#include "worker/comm/communicator.h"
#include "worker/kv_cache.h"
#include "worker/models/registry.h"
#include "worker/models/weight_source.h"
#include "worker/step_executor.h"

ABSL_FLAG(std::string, model, "", "model file (.gguf) or checkpoint directory");
ABSL_FLAG(int32_t, threads, 2, "CPU backend threads");
ABSL_FLAG(int32_t, streams, 1, "sequences decoded together");
ABSL_FLAG(int32_t, prompt_tokens, 32, "prompt length of each stream");
ABSL_FLAG(int32_t, tokens, 64, "decode steps timed (after one warm-up step)");
ABSL_FLAG(int32_t, repetitions, 3, "timed runs; the median is reported");
ABSL_FLAG(std::string, quant_matmul, "int8",
          "GGUF and 4-bit (AWQ, INT4) weights: int8 (8-bit activations, integer dot products) or fp32");

namespace duet::bench {
namespace {

constexpr int32_t kBlockSize = 16;

int Fail(const absl::Status& status) {
  std::cerr << "duet-bench-decode: " << status << "\n";
  return 1;
}

// One run: fresh sequences, prefill, one warm-up step, then `tokens` timed
// decode steps. Returns seconds for the timed steps.
absl::StatusOr<double> Run(worker::StepExecutor& executor, int32_t streams, int32_t prompt_tokens,
                           int32_t tokens, int64_t vocab, uint64_t first_id) {
  const int32_t blocks_per_stream = (prompt_tokens + tokens + 1 + kBlockSize - 1) / kBlockSize;
  std::vector<int64_t> length(streams, prompt_tokens);
  std::vector<int32_t> last(streams);
  worker::v1::StepRequest request;
  request.set_step_id(1);
  for (int32_t s = 0; s < streams; ++s) {
    worker::v1::NewSequence* sequence = request.add_new_sequences();
    sequence->set_seq_id(first_id + s);
    worker::v1::ScheduledSequence* step = request.add_scheduled();
    step->set_seq_id(first_id + s);
    for (int32_t i = 0; i < prompt_tokens; ++i) {
      const int32_t token = static_cast<int32_t>((1000 + 37 * i + 7919 * s) % vocab);
      sequence->add_prompt_token_ids(token);
      step->add_token_ids(token);
    }
    step->set_start_position(0);
    step->set_sample(true);
    for (int32_t b = 0; b < blocks_per_stream; ++b) step->add_new_block_ids(s * blocks_per_stream + b);
  }
  auto execute = [&]() -> absl::Status {
    absl::StatusOr<worker::v1::StepResult> result = executor.Execute(request);
    if (!result.ok()) return result.status();
    if (!result->error().empty()) return absl::InternalError(result->error());
    if (result->sampled_size() != streams) return absl::InternalError("a stream was not sampled");
    for (int32_t s = 0; s < streams; ++s) last[s] = result->sampled(s).token_id();
    request.Clear();
    for (int32_t s = 0; s < streams; ++s) {
      worker::v1::ScheduledSequence* step = request.add_scheduled();
      step->set_seq_id(first_id + s);
      step->add_token_ids(last[s]);
      step->set_start_position(static_cast<uint32_t>(length[s]++));
      step->set_sample(true);
    }
    return absl::OkStatus();
  };
  if (absl::Status status = execute(); !status.ok()) return status;  // prefill
  if (absl::Status status = execute(); !status.ok()) return status;  // warm-up decode
  const auto start = std::chrono::steady_clock::now();
  for (int32_t i = 0; i < tokens; ++i) {
    if (absl::Status status = execute(); !status.ok()) return status;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  worker::v1::StepRequest finish;
  for (int32_t s = 0; s < streams; ++s) finish.add_finished_seq_ids(first_id + s);
  absl::StatusOr<worker::v1::StepResult> finished = executor.Execute(finish);
  if (!finished.ok()) return finished.status();
  return seconds;
}

int Main() {
  const std::string path = absl::GetFlag(FLAGS_model);
  const int32_t threads = absl::GetFlag(FLAGS_threads);
  const int32_t streams = absl::GetFlag(FLAGS_streams);
  const int32_t prompt_tokens = absl::GetFlag(FLAGS_prompt_tokens);
  const int32_t tokens = absl::GetFlag(FLAGS_tokens);
  const int32_t repetitions = absl::GetFlag(FLAGS_repetitions);
  if (path.empty()) return Fail(absl::InvalidArgumentError("--model is required"));
  if (threads < 1 || streams < 1 || prompt_tokens < 1 || tokens < 1 || repetitions < 1) {
    return Fail(absl::InvalidArgumentError(
        "--threads, --streams, --prompt_tokens, --tokens and --repetitions must be positive"));
  }
  absl::StatusOr<ModelConfig> config = LoadModelConfig(path);
  if (!config.ok()) return Fail(config.status());
  absl::StatusOr<std::unique_ptr<worker::WeightSource>> weights = worker::OpenCheckpointWeights(path);
  if (!weights.ok()) return Fail(weights.status());
  absl::StatusOr<std::unique_ptr<worker::DecoderModel>> model =
      worker::LoadModel(*config, *std::move(weights));
  if (!model.ok()) return Fail(model.status());

  kernels::QuantizedMatmul quantized;
  if (!kernels::ParseQuantizedMatmul(absl::GetFlag(FLAGS_quant_matmul), &quantized)) {
    return Fail(absl::InvalidArgumentError(
        StrCat("--quant_matmul must be int8 or fp32, not '", absl::GetFlag(FLAGS_quant_matmul), "'")));
  }
  std::unique_ptr<kernels::Backend> backend = kernels::MakeCpuBackend(threads, quantized);
  std::unique_ptr<worker::Communicator> comm = worker::MakeLocalCommunicator();
  const int32_t blocks_per_stream = (prompt_tokens + tokens + 1 + kBlockSize - 1) / kBlockSize;
  worker::KvCache cache(config->num_hidden_layers,
                        (*model)->KvLayout(streams * blocks_per_stream, kBlockSize));
  const int64_t max_model_len = prompt_tokens + tokens + 2;
  worker::StepExecutor executor(**model, *backend, *comm, cache, max_model_len);

  std::vector<double> seconds;
  for (int32_t r = 0; r < repetitions; ++r) {
    absl::StatusOr<double> run = Run(executor, streams, prompt_tokens, tokens, config->vocab_size,
                                     1 + static_cast<uint64_t>(r) * streams);
    if (!run.ok()) return Fail(run.status());
    seconds.push_back(*run);
  }
  std::vector<double> sorted = seconds;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  nlohmann::json out = {
      {"engine", "duet"},
      {"backend", std::string(backend->name())},
      {"quant_matmul", std::string(kernels::QuantizedMatmulName(quantized))},
      {"model", path},
      {"threads", threads},
      {"streams", streams},
      {"prompt_tokens", prompt_tokens},
      {"decode_steps", tokens},
      {"tokens_per_s", static_cast<double>(tokens) * streams / median},
      {"ms_per_step", 1e3 * median / tokens},
      {"runs_s", seconds},
  };
  std::cout << out.dump() << "\n";
  return 0;
}

}  // namespace
}  // namespace duet::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("decode tokens per second of a model file on the CPU backend");
  absl::ParseCommandLine(argc, argv);
  return duet::bench::Main();
}
