#include "tools/doctor/fit.h"

#include <string>

#include "absl/status/status.h"
#include "glog/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/test_files.h"
#include "tools/doctor/fit_input.h"
#include "tools/doctor/fit_report.h"
#include "tools/doctor/model_bytes.h"

namespace duet::doctor {
namespace {

using ::duet::testing::TempDir;
using ::testing::HasSubstr;
using Json = nlohmann::json;

// config.json of the three target models as published on the Hugging Face
// hub (the fields duet reads).
constexpr char kLlama33_70BConfig[] = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "bos_token_id": 128000,
  "eos_token_id": [128001, 128008, 128009],
  "head_dim": 128,
  "hidden_act": "silu",
  "hidden_size": 8192,
  "intermediate_size": 28672,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 64,
  "num_hidden_layers": 80,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "vocab_size": 128256
})";

constexpr char kR1DistillQwen32BConfig[] = R"({
  "architectures": ["Qwen2ForCausalLM"],
  "bos_token_id": 151643,
  "eos_token_id": 151643,
  "hidden_act": "silu",
  "hidden_size": 5120,
  "intermediate_size": 27648,
  "max_position_embeddings": 131072,
  "max_window_layers": 64,
  "model_type": "qwen2",
  "num_attention_heads": 40,
  "num_hidden_layers": 64,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05,
  "rope_theta": 1000000.0,
  "sliding_window": 131072,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "use_sliding_window": false,
  "vocab_size": 152064
})";

constexpr char kQwen3_30B_A3BConfig[] = R"({
  "architectures": ["Qwen3MoeForCausalLM"],
  "attention_bias": false,
  "bos_token_id": 151643,
  "decoder_sparse_step": 1,
  "eos_token_id": 151645,
  "head_dim": 128,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "intermediate_size": 6144,
  "max_position_embeddings": 40960,
  "max_window_layers": 48,
  "mlp_only_layers": [],
  "model_type": "qwen3_moe",
  "moe_intermediate_size": 768,
  "norm_topk_prob": true,
  "num_attention_heads": 32,
  "num_experts": 128,
  "num_experts_per_tok": 8,
  "num_hidden_layers": 48,
  "num_key_value_heads": 4,
  "rms_norm_eps": 1e-06,
  "rope_scaling": null,
  "rope_theta": 1000000.0,
  "sliding_window": null,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "use_sliding_window": false,
  "vocab_size": 151936
})";

// The quantization_config objects of the published AWQ and FP8 checkpoints.
constexpr char kAwqQuantizationConfig[] =
    R"({"bits": 4, "group_size": 128, "modules_to_not_convert": null,
        "quant_method": "awq", "version": "gemm", "zero_point": true})";
constexpr char kFp8QuantizationConfig[] =
    R"({"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
        "weight_block_size": [128, 128]})";

ModelConfig Parse(const std::string& text) {
  absl::StatusOr<ModelConfig> config = ParseModelConfig(text, "config.json");
  CHECK(config.ok()) << config.status();
  return *config;
}

ModelConfig WithQuantization(const char* config_json, const char* quantization_json) {
  Json config = Json::parse(config_json);
  config["quantization_config"] = Json::parse(quantization_json);
  return Parse(config.dump());
}

ModelConfig Llama70B() { return Parse(kLlama33_70BConfig); }
ModelConfig Llama70BAwq() { return WithQuantization(kLlama33_70BConfig, kAwqQuantizationConfig); }
ModelConfig Qwen32B() { return Parse(kR1DistillQwen32BConfig); }
ModelConfig Qwen3Moe() { return Parse(kQwen3_30B_A3BConfig); }
ModelConfig Qwen3MoeFp8() { return WithQuantization(kQwen3_30B_A3BConfig, kFp8QuantizationConfig); }

Quantization Resolve(const ModelConfig& config, QuantizationChoice choice) {
  absl::StatusOr<Quantization> quantization = ResolveQuantization(config, choice);
  CHECK(quantization.ok()) << quantization.status();
  return *quantization;
}

// Two 24 GiB GPUs at utilization 0.9, 8K context: the seed's workstation.
FitReport Fit(const ModelConfig& config, const Quantization& quantization, double utilization = 0.9,
              int64_t max_model_len = 8192) {
  FitOptions options;
  options.gpu_memory_utilization = utilization;
  options.max_model_len = max_model_len;
  absl::StatusOr<FitReport> report = ComputeFit(config, quantization, options);
  CHECK(report.ok()) << report.status();
  return *report;
}

// ComputeFit lists the layouts in enum order.
const LayoutFit& FitOf(const FitReport& report, Layout layout) {
  const LayoutFit& fit = report.layouts.at(static_cast<size_t>(layout));
  CHECK(fit.layout == layout);
  return fit;
}

// Budget per GPU: floor(24 GiB × 0.9) = floor(25,769,803,776 × 0.9).
constexpr int64_t kBudget90 = 23'192'823'398;
constexpr int64_t kTwoGpuRuntime = kGiB + kGiB / 2;  // 1,610,612,736

// --- parameter counts ---------------------------------------------------

TEST(CountParametersTest, Llama33_70B) {
  const ParameterCount count = CountParameters(Llama70B());
  // embed = lm_head = 128256 × 8192 = 1,050,673,152.
  EXPECT_EQ(count.embedding, 1'050'673'152);
  EXPECT_EQ(count.lm_head, 1'050'673'152);
  // Per layer q 8192² + k, v 8192 × 1024 + o 8192² = 150,994,944; × 80.
  EXPECT_EQ(count.attention, 80 * int64_t{150'994'944});
  // Per layer gate, up, down 3 × 8192 × 28672 = 704,643,072; × 80.
  EXPECT_EQ(count.mlp, 80 * int64_t{704'643'072});
  EXPECT_EQ(count.norms, 80 * 2 * 8192 + 8192);
  EXPECT_EQ(count.experts, 0);
  EXPECT_EQ(count.router, 0);
  EXPECT_EQ(count.total(), 70'553'706'496);
  EXPECT_NEAR(static_cast<double>(count.total()), 70.6e9, 0.01 * 70.6e9);
}

TEST(CountParametersTest, R1DistillQwen32BCountsQkvBiases) {
  const ParameterCount count = CountParameters(Qwen32B());
  // embed = lm_head = 152064 × 5120 = 778,567,680.
  EXPECT_EQ(count.embedding, 778'567'680);
  // Per layer q, o 5120² + k, v 5120 × 1024 = 62,914,560, biases
  // 5120 + 2 × 1024 = 7,168; × 64.
  EXPECT_EQ(count.attention, 64 * int64_t{62'921'728});
  // Per layer 3 × 5120 × 27648 = 424,673,280; × 64.
  EXPECT_EQ(count.mlp, 64 * int64_t{424'673'280});
  EXPECT_EQ(count.total(), 32'763'876'352);
  EXPECT_NEAR(static_cast<double>(count.total()), 32.8e9, 0.01 * 32.8e9);
}

TEST(CountParametersTest, Qwen3_30B_A3B) {
  const ParameterCount count = CountParameters(Qwen3Moe());
  // embed = lm_head = 151936 × 2048 = 311,164,928.
  EXPECT_EQ(count.embedding, 311'164'928);
  // Per layer q 2048 × 4096 + k, v 2048 × 512 + o 4096 × 2048 = 18,874,368,
  // q_norm + k_norm 2 × 128; × 48.
  EXPECT_EQ(count.attention, 48 * int64_t{18'874'624});
  // 48 layers × 128 experts × 3 × 2048 × 768.
  EXPECT_EQ(count.experts, 48 * int64_t{603'979'776});
  EXPECT_EQ(count.router, 48 * 128 * 2048);
  EXPECT_EQ(count.mlp, 0);
  EXPECT_EQ(count.total(), 30'532'122'624);
  EXPECT_NEAR(static_cast<double>(count.total()), 30.5e9, 0.01 * 30.5e9);
}

TEST(CountParametersTest, TiedEmbeddingsHaveNoLmHead) {
  Json config = Json::parse(kLlama33_70BConfig);
  config["tie_word_embeddings"] = true;
  const ParameterCount count = CountParameters(Parse(config.dump()));
  EXPECT_EQ(count.lm_head, 0);
  EXPECT_EQ(count.total(), 70'553'706'496 - 1'050'673'152);
}

// --- quantization -------------------------------------------------------

TEST(ResolveQuantizationTest, AutoReadsQuantizationConfig) {
  EXPECT_EQ(Resolve(Llama70B(), QuantizationChoice::kAuto).format, WeightFormat::kBf16);
  const Quantization awq = Resolve(Llama70BAwq(), QuantizationChoice::kAuto);
  EXPECT_EQ(awq.format, WeightFormat::kAwqInt4);
  EXPECT_EQ(awq.awq_group_size, 128);
  const Quantization fp8 = Resolve(Qwen3MoeFp8(), QuantizationChoice::kAuto);
  EXPECT_EQ(fp8.format, WeightFormat::kFp8);
  EXPECT_EQ(fp8.fp8_block_rows, 128);
  EXPECT_EQ(fp8.fp8_block_cols, 128);
}

TEST(ResolveQuantizationTest, FlagOverridesConfig) {
  EXPECT_EQ(Resolve(Llama70BAwq(), QuantizationChoice::kNone).format, WeightFormat::kBf16);
  EXPECT_EQ(Resolve(Llama70B(), QuantizationChoice::kAwq).format, WeightFormat::kAwqInt4);
  EXPECT_EQ(Resolve(Qwen3Moe(), QuantizationChoice::kFp8).format, WeightFormat::kFp8);
}

// As the loader reads quant_method fp8 (and transformers): 128×128 blocks
// unless weight_block_size says otherwise.
TEST(ResolveQuantizationTest, Fp8WithoutBlockSizeHasTheDefaultBlocks) {
  const Quantization fp8 =
      Resolve(WithQuantization(kQwen3_30B_A3BConfig, R"({"quant_method": "fp8"})"),
              QuantizationChoice::kAuto);
  EXPECT_EQ(fp8.fp8_block_rows, 128);
  EXPECT_EQ(fp8.fp8_block_cols, 128);
}

// compressed-tensors checkpoints: INT4 groups or channels, FP8 per tensor or channel.
TEST(ResolveQuantizationTest, ReadsCompressedTensorsSchemes) {
  const char* int4 = R"({"quant_method": "compressed-tensors", "format": "pack-quantized",
      "config_groups": {"group_0": {"targets": ["Linear"], "weights": {"num_bits": 4,
      "type": "int", "symmetric": false, "strategy": "group", "group_size": 64}}}})";
  const Quantization asymmetric = Resolve(WithQuantization(kLlama33_70BConfig, int4), QuantizationChoice::kAuto);
  EXPECT_EQ(asymmetric.format, WeightFormat::kInt4);
  EXPECT_EQ(asymmetric.int4_group_size, 64);
  EXPECT_TRUE(asymmetric.int4_zero_points);
  const char* fp8 = R"({"quant_method": "compressed-tensors", "format": "float-quantized",
      "config_groups": {"group_0": {"targets": ["Linear"], "weights": {"num_bits": 8,
      "type": "float", "symmetric": true, "strategy": "tensor"}}}})";
  const Quantization tensor = Resolve(WithQuantization(kLlama33_70BConfig, fp8), QuantizationChoice::kAuto);
  EXPECT_EQ(tensor.format, WeightFormat::kFp8);
  EXPECT_EQ(tensor.fp8_block_rows, 0);
  EXPECT_EQ(tensor.fp8_block_cols, 0);
}

// A symmetric group-128 INT4 70B at TP 2: per layer on rank 0, 0.5 B per
// weight + a 2 B scale per 128 inputs per row; no zero points.
TEST(FitTest, Llama70BInt4TensorParallel2) {
  const ModelConfig config = Llama70B();
  const FitReport report = Fit(config, Resolve(config, QuantizationChoice::kInt4));
  // Per layer: AWQ's 222,298,112 less its zeros (0.5 B per 128 weights:
  // 427,819,008 weights per layer on rank 0 → 1,671,168 B).
  EXPECT_EQ(FitOf(report, Layout::kTensorParallel).weight_bytes,
            19'885'211'648 - 80 * 1'671'168);
}

TEST(ResolveQuantizationTest, RejectsFormatsDuetDoesNotRead) {
  const absl::StatusOr<Quantization> gptq = ResolveQuantization(
      WithQuantization(kLlama33_70BConfig, R"({"quant_method": "gptq", "bits": 4})"),
      QuantizationChoice::kAuto);
  EXPECT_FALSE(gptq.ok());
  EXPECT_THAT(gptq.status().message(), HasSubstr("\"gptq\""));
  const absl::StatusOr<Quantization> awq8 = ResolveQuantization(
      WithQuantization(kLlama33_70BConfig, R"({"quant_method": "awq", "bits": 8})"),
      QuantizationChoice::kAuto);
  EXPECT_FALSE(awq8.ok());
  EXPECT_THAT(awq8.status().message(), HasSubstr("bits"));
  EXPECT_EQ(ParseQuantizationChoice("int8").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseQuantizationChoice("awq"), QuantizationChoice::kAwq);
}

// --- Llama-3.3-70B-Instruct ----------------------------------------------

TEST(FitTest, Llama70BAwqTensorParallel2) {
  const ModelConfig config = Llama70BAwq();
  const FitReport report = Fit(config, Resolve(config, QuantizationChoice::kAuto));
  const LayoutFit& tp = FitOf(report, Layout::kTensorParallel);
  // AWQ linear [rows, cols]: rows·cols/2 + cols/128 · rows · (2 B scale
  // + 0.5 B zero). Rank 0 of TP 2, per layer:
  //   q   [4096, 8192]:   16,777,216 + 64 × 4096 × 2.5  = 17,432,576
  //   k,v [512, 8192]:     2,097,152 + 64 × 512 × 2.5   =  2,179,072 each
  //   o   [8192, 4096]:   16,777,216 + 32 × 8192 × 2.5  = 17,432,576
  //   gate,up [14336, 8192]: 58,720,256 + 64 × 14336 × 2.5 = 61,014,016 each
  //   down [8192, 14336]: 58,720,256 + 112 × 8192 × 2.5 = 61,014,016
  //   norms 2 × 8192 × 2 B = 32,768          layer total 222,298,112
  // × 80 = 17,783,848,960; embedding half 64128 × 8192 × 2 = 1,050,673,152;
  // lm_head half 1,050,673,152; final norm 16,384.
  EXPECT_EQ(tp.weight_bytes, 19'885'211'648);  // 18.52 GiB
  EXPECT_EQ(tp.budget_bytes, kBudget90);
  EXPECT_EQ(tp.runtime_bytes, kTwoGpuRuntime);
  // 2048 tokens × 2 B × (4·8192 + 4096 + 2·512 + 3·14336 = 80,896)
  // = 331,350,016; logits 256 × 128256 × 4 B = 131,334,144.
  EXPECT_EQ(tp.activation_bytes, 462'684'160);
  // KV: 2 × 80 layers × 4 heads × 128 × 2 B = 163,840 B per token.
  EXPECT_EQ(tp.kv_bytes_per_token, 163'840);
  // 23,192,823,398 − 19,885,211,648 − 1,610,612,736 − 462,684,160.
  EXPECT_EQ(tp.kv_room_bytes, 1'234'314'854);  // 1.15 GiB
  // 470 blocks of 16 × 163,840 B: 7,520 tokens, not one 8K sequence: at
  // 0.9 there is no room for an 8K context.
  EXPECT_EQ(tp.kv_capacity_tokens, 7'520);
  EXPECT_EQ(tp.max_concurrent_seqs, 0);
  EXPECT_EQ(tp.verdict, Verdict::kDoesNotFit);

  EXPECT_EQ(FitOf(report, Layout::kExpertParallel).verdict, Verdict::kNotApplicable);
  EXPECT_THAT(FitOf(report, Layout::kExpertParallel).not_applicable_reason,
              HasSubstr("has no experts"));
  // A whole AWQ 70B (≈ 38 GiB) on one 24 GiB GPU.
  const LayoutFit& replicas = FitOf(report, Layout::kReplicas);
  EXPECT_EQ(replicas.num_copies, 2);
  EXPECT_EQ(replicas.verdict, Verdict::kDoesNotFit);
  EXPECT_LT(replicas.kv_room_bytes, 0);
}

TEST(FitTest, Llama70BAwqFitsOneSequenceAtUtilization95) {
  const ModelConfig config = Llama70BAwq();
  const FitReport report = Fit(config, Resolve(config, QuantizationChoice::kAuto), 0.95);
  const LayoutFit& tp = FitOf(report, Layout::kTensorParallel);
  // floor(25,769,803,776 × 0.95) = 24,481,313,587; minus weights, runtime
  // and activations (21,958,508,544) = 2,522,805,043 B (2.35 GiB):
  // 962 blocks = 15,392 tokens, one whole 8K sequence (or several shorter).
  EXPECT_EQ(tp.kv_room_bytes, 2'522'805'043);
  EXPECT_EQ(tp.kv_capacity_tokens, 15'392);
  EXPECT_EQ(tp.max_concurrent_seqs, 1);
  EXPECT_EQ(tp.verdict, Verdict::kBorderline);
}

TEST(FitTest, Llama70BBf16DoesNotFit) {
  const FitReport report = Fit(Llama70B(), Quantization{});
  const LayoutFit& tp = FitOf(report, Layout::kTensorParallel);
  // Per layer the rank's linears 855,638,016 / 2 × 2 B + norms 32,768
  // = 855,670,784; × 80 = 68,453,662,720; + 1,050,673,152 + 1,050,673,152
  // + 16,384.
  EXPECT_EQ(tp.weight_bytes, 70'555'025'408);  // 65.7 GiB per GPU
  EXPECT_EQ(tp.verdict, Verdict::kDoesNotFit);
  EXPECT_EQ(FitOf(report, Layout::kReplicas).verdict, Verdict::kDoesNotFit);
}

// --- DeepSeek-R1-Distill-Qwen-32B ----------------------------------------

TEST(FitTest, R1DistillQwen32BBf16DoesNotFit) {
  const FitReport report = Fit(Qwen32B(), Quantization{});
  const LayoutFit& tp = FitOf(report, Layout::kTensorParallel);
  // Per layer: linears 487,587,840 / 2 × 2 B + q/k/v biases 3,584 × 2 B
  // + norms 20,480 = 487,615,488; × 64 = 31,207,391,232; + embedding half
  // 76032 × 5120 × 2 = 778,567,680 + lm_head half 778,567,680 + final norm
  // 10,240.
  EXPECT_EQ(tp.weight_bytes, 32'764'536'832);  // 30.5 GiB per GPU
  EXPECT_EQ(tp.verdict, Verdict::kDoesNotFit);
}

TEST(FitTest, R1DistillQwen32BAwqFitsTensorParallel2) {
  const FitReport report = Fit(Qwen32B(), Resolve(Qwen32B(), QuantizationChoice::kAwq));
  const LayoutFit& tp = FitOf(report, Layout::kTensorParallel);
  // Rank 0 of TP 2, per layer:
  //   q [2560, 5120] 6,809,600; k, v [512, 5120] 1,361,920 each;
  //   o [5120, 2560] 6,809,600; gate, up [13824, 5120] 36,771,840 each;
  //   down [5120, 13824] 36,771,840; biases 7,168; norms 20,480
  //   = 126,686,208; × 64 = 8,107,917,312.
  // + embedding half 778,567,680 + lm_head half 778,567,680 + final norm
  // 10,240.
  EXPECT_EQ(tp.weight_bytes, 9'665'062'912);  // 9.00 GiB
  // 2048 × 2 × (4·5120 + 2560 + 1024 + 3·13824 = 65,536) = 268,435,456;
  // logits 256 × 152064 × 4 = 155,713,536.
  EXPECT_EQ(tp.activation_bytes, 424'148'992);
  EXPECT_EQ(tp.kv_bytes_per_token, 2 * 64 * 4 * 128 * 2);  // 131,072
  // 23,192,823,398 − 9,665,062,912 − 1,610,612,736 − 424,148,992.
  EXPECT_EQ(tp.kv_room_bytes, 11'492'998'758);  // 10.7 GiB
  EXPECT_EQ(tp.kv_capacity_tokens, 5'480 * 16);
  EXPECT_EQ(tp.max_concurrent_seqs, 10);  // 5,480 blocks / 512 per 8K sequence
  EXPECT_EQ(tp.verdict, Verdict::kFits);
  // One whole AWQ copy per GPU: 18.0 GiB of weights leave 2.03 GiB, one
  // 8K sequence (8 KV heads, 256 KiB per token).
  const LayoutFit& replicas = FitOf(report, Layout::kReplicas);
  EXPECT_EQ(replicas.weight_bytes, 19'328'804'864);
  EXPECT_EQ(replicas.runtime_bytes, kGiB);
  EXPECT_EQ(replicas.max_concurrent_seqs, 1);
  EXPECT_EQ(replicas.verdict, Verdict::kBorderline);
}

// --- Qwen3-30B-A3B --------------------------------------------------------

TEST(FitTest, Qwen3MoeBf16DoesNotFitIn48GiB) {
  const ModelConfig config = Qwen3Moe();
  // Whole model: every parameter 2 B, 61.06 GB.
  EXPECT_EQ(WeightBytesPerGpu(config, Quantization{}, ShardPlan{}), 2 * int64_t{30'532'122'624});
  const FitReport report = Fit(config, Quantization{});
  // EP 2, rank 0: attention (TP) 18,874,368 / 2 × 2 B + 64 experts ×
  // 4,718,592 × 2 B + router 262,144 × 2 B + norms 8,192 + q/k norms 512
  // = 623,387,136 per layer; × 48 + embedding half 75968 × 2048 × 2 =
  // 311,164,928 + lm_head half 311,164,928 + 4,096.
  const LayoutFit& ep = FitOf(report, Layout::kExpertParallel);
  EXPECT_EQ(ep.weight_bytes, 30'544'916'480);  // 28.4 GiB
  EXPECT_EQ(ep.verdict, Verdict::kDoesNotFit);
  EXPECT_EQ(FitOf(report, Layout::kTensorParallel).verdict, Verdict::kDoesNotFit);
  EXPECT_EQ(FitOf(report, Layout::kReplicas).verdict, Verdict::kDoesNotFit);
}

TEST(FitTest, Qwen3MoeFp8FitsExpertParallel2) {
  const ModelConfig config = Qwen3MoeFp8();
  const FitReport report = Fit(config, Resolve(config, QuantizationChoice::kAuto));
  const LayoutFit& ep = FitOf(report, Layout::kExpertParallel);
  // FP8 linear [rows, cols]: rows·cols + ⌈rows/128⌉·⌈cols/128⌉ × 4 B.
  // Rank 0 of EP 2, per layer:
  //   q [2048, 2048] 4,195,328; k, v [256, 2048] 524,416 each;
  //   o [2048, 2048] 4,195,328                        attention 9,439,488
  //   64 experts × (gate, up [768, 2048] + down [2048, 768]: 3 × 1,573,248)
  //                                                  = 302,063,616
  //   router [128, 2048] × 2 B 524,288; norms 8,192; q/k norms 512
  //   = 312,036,096; × 48 = 14,977,732,608.
  // + embedding half 311,164,928 + lm_head half 311,164,928 + final norm
  // 4,096.
  EXPECT_EQ(ep.weight_bytes, 15'600'066'560);  // 14.53 GiB
  // 2048 × 2 × (4·2048 + 2048 + 2·256 + 8·(3·768 + 2·2048) + 2·128 = 62,208)
  // = 254,803,968; logits 256 × 151936 × 4 = 155,582,464.
  EXPECT_EQ(ep.activation_bytes, 410'386'432);
  EXPECT_EQ(ep.kv_bytes_per_token, 2 * 48 * 2 * 128 * 2);  // 49,152
  // 23,192,823,398 − 15,600,066,560 − 1,610,612,736 − 410,386,432.
  EXPECT_EQ(ep.kv_room_bytes, 5'571'757'670);  // 5.19 GiB
  EXPECT_EQ(ep.kv_capacity_tokens, 7'084 * 16);
  EXPECT_EQ(ep.max_concurrent_seqs, 13);
  EXPECT_EQ(ep.verdict, Verdict::kFits);
  // TP 2 splits each expert's 768 rows instead: same bytes, as the blocks
  // divide evenly.
  const LayoutFit& tp = FitOf(report, Layout::kTensorParallel);
  EXPECT_EQ(tp.weight_bytes, ep.weight_bytes);
  EXPECT_EQ(tp.verdict, Verdict::kFits);
  // One whole FP8 copy (≈ 29 GiB) per 24 GiB GPU.
  EXPECT_EQ(FitOf(report, Layout::kReplicas).verdict, Verdict::kDoesNotFit);
}

// --- layouts that cannot be split -----------------------------------------

TEST(ShardProblemTest, NamesWhatDoesNotDivide) {
  EXPECT_THAT(ShardProblem(Llama70B(), Quantization{}, {.ranks = 3}),
              HasSubstr("num_attention_heads (64) is not divisible by 3"));
  EXPECT_THAT(ShardProblem(Llama70B(), Quantization{}, {.ranks = 2, .expert_parallel = true}),
              HasSubstr("has no experts"));
  // TP 4 leaves 192 of each expert's 768 rows per rank: AWQ groups of 128
  // along down_proj's input would straddle ranks.
  Quantization awq;
  awq.format = WeightFormat::kAwqInt4;
  EXPECT_THAT(ShardProblem(Qwen3Moe(), awq, {.ranks = 4}),
              HasSubstr("experts.down_proj: 192 input columns per rank cut AWQ groups of 128"));
  EXPECT_EQ(ShardProblem(Qwen3Moe(), awq, {.ranks = 4, .expert_parallel = true}), "");
  // 8 ranks over 4 KV heads: each rank keeps a replica of one KV head.
  EXPECT_EQ(ShardProblem(Qwen3Moe(), Quantization{}, {.ranks = 8, .expert_parallel = true}), "");
  EXPECT_EQ(KvHeadsPerRank(Qwen3Moe(), 8), 1);
  EXPECT_EQ(KvBytesPerTokenPerGpu(Qwen3Moe(), 8), 2 * 48 * 1 * 128 * 2);
}

TEST(FitTest, IndivisibleLayoutIsNotApplicable) {
  FitOptions options;
  options.num_gpus = 3;
  const absl::StatusOr<FitReport> report = ComputeFit(Llama70B(), Quantization{}, options);
  ASSERT_TRUE(report.ok()) << report.status();
  const LayoutFit& tp = FitOf(*report, Layout::kTensorParallel);
  EXPECT_EQ(tp.verdict, Verdict::kNotApplicable);
  EXPECT_THAT(tp.not_applicable_reason, HasSubstr("not divisible by 3"));
  EXPECT_EQ(FitOf(*report, Layout::kReplicas).num_copies, 3);
}

TEST(FitTest, RejectsOptionsOutOfRange) {
  const ModelConfig config = Qwen3Moe();
  FitOptions options;
  options.gpu_memory_utilization = 0.0;
  EXPECT_EQ(ComputeFit(config, Quantization{}, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options = FitOptions{};
  options.max_model_len = 40961;  // above max_position_embeddings
  const absl::Status too_long = ComputeFit(config, Quantization{}, options).status();
  EXPECT_EQ(too_long.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(too_long.message(), HasSubstr("max_position_embeddings = 40960"));
  options = FitOptions{};
  options.num_gpus = 0;
  EXPECT_EQ(ComputeFit(config, Quantization{}, options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// --- output ---------------------------------------------------------------

TEST(FitReportTest, JsonCarriesEveryLayout) {
  const ModelConfig config = Qwen3MoeFp8();
  const FitReport report = Fit(config, Resolve(config, QuantizationChoice::kAuto));
  const Json json = Json::parse(FitReportJson(report, "models/Qwen3-30B-A3B-FP8").dump());
  EXPECT_EQ(json["model"], "models/Qwen3-30B-A3B-FP8");
  EXPECT_EQ(json["architecture"], "Qwen3MoeForCausalLM");
  EXPECT_EQ(json["parameters"]["total"], 30'532'122'624);
  EXPECT_EQ(json["quantization"]["format"], "fp8");
  EXPECT_EQ(json["quantization"]["fp8_block"], Json::array({128, 128}));
  EXPECT_EQ(json["gpus"]["count"], 2);
  EXPECT_EQ(json["gpus"]["memory_bytes"], 24 * kGiB);
  EXPECT_EQ(json["max_model_len"], 8192);
  ASSERT_EQ(json["layouts"].size(), 3u);
  const Json& ep = json["layouts"][1];
  EXPECT_EQ(ep["layout"], "ep");
  EXPECT_EQ(ep["verdict"], "fits");
  EXPECT_EQ(ep["weight_bytes"], 15'600'066'560);
  EXPECT_EQ(ep["kv_room_bytes"], 5'571'757'670);
  EXPECT_EQ(ep["kv_capacity_tokens"], 7'084 * 16);
  EXPECT_EQ(ep["max_concurrent_seqs"], 13);
  EXPECT_EQ(json["layouts"][2]["verdict"], "does not fit");
  EXPECT_LT(json["layouts"][2]["kv_room_bytes"].get<int64_t>(), 0);
}

TEST(FitReportTest, JsonGivesTheReasonForANotApplicableLayout) {
  const Json json =
      FitReportJson(Fit(Llama70BAwq(), Resolve(Llama70BAwq(), QuantizationChoice::kAuto)), "llama");
  const Json& ep = json["layouts"][1];
  EXPECT_EQ(ep["verdict"], "not applicable");
  EXPECT_THAT(ep["reason"].get<std::string>(), HasSubstr("LlamaForCausalLM has no experts"));
  EXPECT_FALSE(ep.contains("weight_bytes"));
  EXPECT_EQ(json["quantization"]["awq_group_size"], 128);
}

TEST(FitReportTest, TableMarksEachVerdict) {
  const ModelConfig config = Qwen3MoeFp8();
  const std::string table =
      FitReportTable(Fit(config, Resolve(config, QuantizationChoice::kAuto)), "qwen3-moe");
  EXPECT_THAT(table, HasSubstr("qwen3-moe (Qwen3MoeForCausalLM): 30.53 B parameters, "
                               "fp8 (128×128 blocks)"));
  EXPECT_THAT(table, HasSubstr("21.60 GiB budget per GPU"));
  EXPECT_THAT(table, HasSubstr("14.53 GiB"));
  EXPECT_THAT(table, HasSubstr("✓ fits"));
  EXPECT_THAT(table, HasSubstr("✗ does not fit"));
  const std::string dense = FitReportTable(Fit(Qwen32B(), Quantization{}), "r1-32b");
  EXPECT_THAT(dense, HasSubstr("- not applicable: Qwen2ForCausalLM has no experts"));
}

// --- input ----------------------------------------------------------------

TEST(LoadFitModelConfigTest, ReadsADirectoryOrAFile) {
  TempDir dir;
  const std::string path = dir.WriteFile("config.json", kQwen3_30B_A3BConfig);
  const absl::StatusOr<ModelConfig> from_dir = LoadFitModelConfig(dir.path().string(), "");
  ASSERT_TRUE(from_dir.ok()) << from_dir.status();
  EXPECT_EQ(from_dir->num_experts, 128);
  const absl::StatusOr<ModelConfig> from_file = LoadFitModelConfig("", path);
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  EXPECT_EQ(from_file->hidden_size, 2048);
}

TEST(LoadFitModelConfigTest, MissingConfigSaysWhich) {
  TempDir dir;
  const absl::Status no_config = LoadFitModelConfig(dir.path().string(), "").status();
  EXPECT_EQ(no_config.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(no_config.message(), HasSubstr("config.json"));
  const std::string missing = (dir.path() / "nope.json").string();
  const absl::Status no_file = LoadFitModelConfig("", missing).status();
  EXPECT_EQ(no_file.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(no_file.message(), HasSubstr(missing));
  EXPECT_EQ(LoadFitModelConfig("", dir.path().string()).status().code(),
            absl::StatusCode::kNotFound);  // a directory is not a config file
  EXPECT_EQ(LoadFitModelConfig("", "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadFitModelConfig("a", "b").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(LoadFitModelConfigTest, BrokenConfigNamesTheField) {
  TempDir dir;
  Json config = Json::parse(kLlama33_70BConfig);
  config.erase("hidden_size");
  const std::string path = dir.WriteFile("config.json", config.dump());
  const absl::Status status = LoadFitModelConfig("", path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("hidden_size"));
}

}  // namespace
}  // namespace duet::doctor
