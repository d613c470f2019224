// Decode throughput of a whole model on the CPU backend: dummy weights at
// published model shapes (Qwen3-0.6B in bf16; Llama-3.2-1B in bf16, AWQ-INT4
// and FP8 as their checkpoints store them), one sequence, one token per step
// after a 64-token prompt. Decode reads every weight matrix once per token
// (the embedding table only once more, as the tied lm_head), so weight bytes
// per second against the machine's streaming read bandwidth is the roofline
// fraction.
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
#include "worker/models/weight_source.h"

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

// meta-llama/Llama-3.2-1B-Instruct's config.json, as published, with a
// quantization_config spliced in before the closing brace (or none).
std::string Llama3_2_1B(const std::string& quantization_config) {
  std::string config = R"({
  "architectures": ["LlamaForCausalLM"], "model_type": "llama",
  "vocab_size": 128256, "hidden_size": 2048, "intermediate_size": 8192,
  "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
  "head_dim": 64, "max_position_embeddings": 131072, "rms_norm_eps": 1e-05,
  "rope_theta": 500000.0, "tie_word_embeddings": true, "attention_bias": false,
  "mlp_bias": false, "hidden_act": "silu", "torch_dtype": "bfloat16",
  "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009])";
  if (!quantization_config.empty()) config += ", \"quantization_config\": " + quantization_config;
  return config + "}";
}

// AutoAWQ's gemm checkpoints (group 128, zero points) and the 128×128-block
// FP8 of quant_method fp8.
constexpr char kAwq[] = R"({"quant_method": "awq", "bits": 4, "group_size": 128,
                            "version": "gemm", "zero_point": true})";
constexpr char kFp8[] = R"({"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                            "weight_block_size": [128, 128]})";

// Decodes `state.iterations()` tokens of one sequence of the model `config_json`
// describes, with dummy weights in its declared format, on range(0) threads.
// Bytes per step are the weights the model holds (the tied embedding table is
// read whole by the lm_head).
void DecodeBench(benchmark::State& state, const std::string& config_json) {
  absl::StatusOr<ModelConfig> config = ParseModelConfig(config_json, "config.json");
  if (!config.ok()) return state.SkipWithError(std::string(config.status().message()).c_str());
  absl::StatusOr<std::unique_ptr<worker::WeightSource>> weights = worker::MakeDummyWeightsFor(*config, /*seed=*/1);
  if (!weights.ok()) return state.SkipWithError(std::string(weights.status().message()).c_str());
  absl::StatusOr<std::unique_ptr<worker::DecoderModel>> model = worker::LoadModel(*config, *std::move(weights));
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
  const double step_bytes = static_cast<double>((*model)->weight_bytes());
  const double weight_gbps = step_bytes * state.iterations() / seconds / 1e9;
  const double read_gbps = MeasureReadBandwidthGBps(num_threads);
  state.SetItemsProcessed(state.iterations());  // tokens
  state.counters["weight_GB/s"] = weight_gbps;
  state.counters["read_bw_GB/s"] = read_gbps;
  state.counters["pct_of_read_bw"] = 100.0 * weight_gbps / read_gbps;
}

void BM_Qwen3_0_6B_Decode(benchmark::State& state) { DecodeBench(state, kQwen3_0_6B); }
BENCHMARK(BM_Qwen3_0_6B_Decode)->ArgName("threads")->Arg(2)->Arg(1)->Iterations(24)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_Llama3_2_1B_Decode_bf16(benchmark::State& state) { DecodeBench(state, Llama3_2_1B("")); }
void BM_Llama3_2_1B_Decode_awq(benchmark::State& state) { DecodeBench(state, Llama3_2_1B(kAwq)); }
void BM_Llama3_2_1B_Decode_fp8(benchmark::State& state) { DecodeBench(state, Llama3_2_1B(kFp8)); }
BENCHMARK(BM_Llama3_2_1B_Decode_bf16)->ArgName("threads")->Arg(2)->Iterations(16)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Llama3_2_1B_Decode_awq)->ArgName("threads")->Arg(2)->Iterations(16)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Llama3_2_1B_Decode_fp8)->ArgName("threads")->Arg(2)->Iterations(16)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace duet::bench

BENCHMARK_MAIN();
