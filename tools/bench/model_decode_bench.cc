// Decode throughput of a whole model on the CPU backend: dummy bf16 weights at
// Qwen3-0.6B's shapes, one sequence, one token per step after a 64-token
// prompt. Decode reads every weight matrix once per token (the embedding
// table only once more, as the tied lm_head), so weight bytes per second
// against the machine's streaming read bandwidth is the roofline fraction.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "common/model_config.h"
#include "kernels/ops.h"
#include "tools/bench/kernels_bench_memory.h"
#include "worker/generator.h"
#include "worker/models/registry.h"

namespace duet::bench {
namespace {


constexpr int kPromptTokens = 64;

// Qwen/Qwen3-0.6B's config.json, as published.
constexpr char kQwen3_0_6B[] = R"({
  "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3",
  "vocab_size": 151936, "hidden_size": 1024, "intermediate_size": 3072,
  "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8,
  "head_dim": 128, "max_position_embeddings": 40960, "rms_norm_eps": 1e-06,
  "rope_theta": 1000000, "rope_scaling": null, "tie_word_embeddings": true,
  "attention_bias": false, "torch_dtype": "bfloat16",
  "bos_token_id": 151643, "eos_token_id": 151645
})";

// Bytes of weights one decode step reads: every matrix of every layer plus
// the lm_head (bf16); the embedding lookup reads one row.
int64_t DecodeWeightBytes(const ModelConfig& c) {
  const int64_t attention = 2 * c.q_size() * c.hidden_size + 2 * c.kv_size() * c.hidden_size;
  const int64_t mlp = 3 * c.hidden_size * c.intermediate_size;
  return 2 * (c.num_hidden_layers * (attention + mlp) + c.vocab_size * c.hidden_size);
}

void BM_Qwen3_0_6B_Decode(benchmark::State& state) {
  absl::StatusOr<ModelConfig> config = ParseModelConfig(kQwen3_0_6B, "Qwen3-0.6B config.json");
  if (!config.ok()) return state.SkipWithError(std::string(config.status().message()).c_str());
  absl::StatusOr<std::unique_ptr<worker::DecoderModel>> model =
      worker::LoadModel(*config, worker::MakeDummyWeights(/*seed=*/1));
  if (!model.ok()) return state.SkipWithError(std::string(model.status().message()).c_str());
  const int num_threads = static_cast<int>(state.range(0));
  std::unique_ptr<kernels::Backend> backend = kernels::MakeCpuBackend(num_threads);
  worker::GeneratorOptions options;
  options.num_blocks = 64;  // 1,024 tokens
  absl::StatusOr<std::unique_ptr<worker::Generator>> generator =
      worker::Generator::Create(**model, *backend, options);
  if (!generator.ok()) return state.SkipWithError(std::string(generator.status().message()).c_str());
  std::vector<int32_t> prompt(kPromptTokens);
  for (int i = 0; i < kPromptTokens; ++i) prompt[i] = 1000 + 37 * i;
  if (!(*generator)->Append(prompt, false).ok()) return state.SkipWithError("prefill failed");

  int32_t token = 42;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    absl::StatusOr<std::vector<float>> logits = (*generator)->Append({token}, false);
    if (!logits.ok()) return state.SkipWithError(std::string(logits.status().message()).c_str());
    benchmark::DoNotOptimize(logits->data());
    token = (token * 31 + 7) % 100000;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double weight_gbps = static_cast<double>(DecodeWeightBytes(*config)) * state.iterations() / seconds / 1e9;
  const double read_gbps = MeasureReadBandwidthGBps(num_threads);
  state.SetItemsProcessed(state.iterations());  // tokens
  state.counters["weight_GB/s"] = weight_gbps;
  state.counters["read_bw_GB/s"] = read_gbps;
  state.counters["pct_of_read_bw"] = 100.0 * weight_gbps / read_gbps;
}
BENCHMARK(BM_Qwen3_0_6B_Decode)->ArgName("threads")->Arg(2)->Arg(1)->Iterations(24)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace duet::bench

BENCHMARK_MAIN();
