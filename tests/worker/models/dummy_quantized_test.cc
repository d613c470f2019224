// Dummy weights in the quantized formats: every scheme gives a valid matrix
// of its group-quantized type whose blocks are the corresponding parts of the
// whole tensor, with about the requested deviation; splits off the format's
// words, groups or blocks are refused naming the tensor; a quantized config
// loads with dummy weights, runs, and reads fewer bytes than bf16 would.
#include "worker/models/dummy_quantized.h"

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/model_config.h"
#include "common/str_cat.h"
#include "common/weight_quantization.h"
#include "kernels/group_quant.h"
#include "kernels/ops.h"
#include "tests/test_paths.h"
#include "tools/doctor/model_bytes.h"
#include "worker/generator.h"
#include "worker/models/registry.h"
#include "worker/models/weight_source.h"

namespace duet::worker {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string FixtureDir(const std::string& name) {
  return (fs::path(duet::testing::SourceDir()) / "tests/golden/fixtures" / name).string();
}

struct Scheme {
  std::string label;
  WeightQuantization scheme;
  kernels::WeightType type;
};

WeightQuantization Quant(WeightFormat format, int64_t group_size, bool zero_points,
                         Fp8Scales fp8_scales = Fp8Scales::kBlock, int64_t block_rows = 0,
                         int64_t block_cols = 0) {
  WeightQuantization scheme;
  scheme.format = format;
  scheme.group_size = group_size;
  scheme.zero_points = zero_points;
  scheme.fp8_scales = fp8_scales;
  scheme.block_rows = block_rows;
  scheme.block_cols = block_cols;
  return scheme;
}

std::vector<Scheme> Schemes() {
  using kernels::WeightType;
  return {
      {"awq_g32", Quant(WeightFormat::kAwq, 32, true), WeightType::kAwqInt4},
      {"int4_g32", Quant(WeightFormat::kInt4, 32, false), WeightType::kInt4},
      {"int4_g32_zeros", Quant(WeightFormat::kInt4, 32, true), WeightType::kInt4},
      {"int4_channel", Quant(WeightFormat::kInt4, 0, false), WeightType::kInt4},
      {"fp8_tensor", Quant(WeightFormat::kFp8, 0, false, Fp8Scales::kTensor), WeightType::kF8E4M3},
      {"fp8_channel", Quant(WeightFormat::kFp8, 0, false, Fp8Scales::kChannel), WeightType::kF8E4M3},
      {"fp8_block", Quant(WeightFormat::kFp8, 0, false, Fp8Scales::kBlock, 16, 32), WeightType::kF8E4M3},
  };
}

constexpr char kName[] = "model.layers.1.mlp.down_proj.weight";
constexpr int64_t kRows = 96, kCols = 192;

class DummyQuantizedTest : public ::testing::TestWithParam<Scheme> {};

// (A per-tensor FP8 scale is the whole tensor's, kept by every block.)
TEST_P(DummyQuantizedTest, BlocksAreTheWholeTensorsParts) {
  const Scheme& s = GetParam();
  std::unique_ptr<WeightSource> source = MakeDummyWeights(11, 0.02f, s.scheme);
  absl::StatusOr<kernels::Weight> whole = source->GetMatrix(kName, kRows, kCols);
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(whole->type, s.type);
  EXPECT_EQ(kernels::GroupQuantProblem(*whole), "");
  std::vector<float> dense(kRows * kCols);
  kernels::DequantizeGroupRows(*whole, 0, kRows, dense.data());

  double sum = 0, squares = 0;
  for (float v : dense) {
    ASSERT_TRUE(std::isfinite(v));
    sum += v;
    squares += static_cast<double>(v) * v;
  }
  const double mean = sum / dense.size();
  const double deviation = std::sqrt(squares / dense.size() - mean * mean);
  EXPECT_NEAR(deviation, 0.02, 0.006) << s.label;
  // 4-bit codes q − 8 run over −8..7: their mean is half a step below zero.
  EXPECT_NEAR(mean, 0.0, 0.003) << s.label;

  for (const auto& [rows, cols] : {std::pair<IndexRange, IndexRange>{{48, 48}, {0, kCols}},
                                   {{0, kRows}, {96, 96}}, {{32, 64}, {64, 128}}}) {
    absl::StatusOr<kernels::Weight> block = source->GetMatrixBlock(kName, kRows, kCols, rows, cols);
    ASSERT_TRUE(block.ok()) << block.status();
    ASSERT_EQ(block->type, s.type);
    ASSERT_EQ(block->rows, rows.count);
    ASSERT_EQ(block->cols, cols.count);
    ASSERT_EQ(kernels::GroupQuantProblem(*block), "");
    std::vector<float> part(rows.count * cols.count);
    kernels::DequantizeGroupRows(*block, 0, rows.count, part.data());
    for (int64_t r = 0; r < rows.count; ++r) {
      for (int64_t c = 0; c < cols.count; ++c) {
        const float want = dense[(rows.begin + r) * kCols + cols.begin + c];
        ASSERT_EQ(part[r * cols.count + c], want) << s.label << " " << r << "," << c;
      }
    }
  }
}

TEST_P(DummyQuantizedTest, SplitsOffTheFormatsUnitsNameTheTensor) {
  const Scheme& s = GetParam();
  std::unique_ptr<WeightSource> source = MakeDummyWeights(11, 0.02f, s.scheme);
  const bool fp8_unblocked = s.scheme.format == WeightFormat::kFp8 && s.scheme.fp8_scales != Fp8Scales::kBlock;
  // FP8 without blocks has no packing: any split is fine.
  const absl::StatusOr<kernels::Weight> odd = source->GetMatrixBlock(kName, kRows, kCols, {0, kRows}, {4, 40});
  if (fp8_unblocked) {
    EXPECT_TRUE(odd.ok()) << odd.status();
  } else {
    ASSERT_FALSE(odd.ok()) << s.label;
    EXPECT_EQ(odd.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(odd.status().message()), HasSubstr(kName));
  }
  // Rows split inside AWQ's 8-output words, INT4's zero-point words or an FP8 block.
  const absl::StatusOr<kernels::Weight> rows = source->GetMatrixBlock(kName, kRows, kCols, {4, 40}, {0, kCols});
  const bool rows_packed = s.scheme.format == WeightFormat::kAwq || s.scheme.zero_points ||
                           (s.scheme.format == WeightFormat::kFp8 && !fp8_unblocked);
  EXPECT_EQ(rows.ok(), !rows_packed) << s.label << " " << rows.status();
  if (!rows.ok()) {
    EXPECT_THAT(std::string(rows.status().message()), HasSubstr(kName));
  }
  // A shape off the packing at all.
  if (s.scheme.format != WeightFormat::kFp8) {
    const absl::StatusOr<kernels::Weight> shape = source->GetMatrix(kName, kRows, 100);
    ASSERT_FALSE(shape.ok()) << s.label;
    EXPECT_THAT(std::string(shape.status().message()), HasSubstr(kName));
  }
}

// Embeddings, the head and MoE routers stay bf16, as quantized checkpoints keep them.
TEST_P(DummyQuantizedTest, OnlyDecoderLinearsAreQuantized) {
  std::unique_ptr<WeightSource> source = MakeDummyWeights(11, 0.02f, GetParam().scheme);
  for (const char* name : {"model.embed_tokens.weight", "lm_head.weight", "model.layers.0.mlp.gate.weight"}) {
    absl::StatusOr<kernels::Weight> w = source->GetMatrix(name, 64, 64);
    ASSERT_TRUE(w.ok()) << w.status();
    EXPECT_EQ(w->type, kernels::WeightType::kBF16) << name;
  }
  EXPECT_TRUE(DummyQuantizesMatrix("model.layers.3.mlp.experts.7.up_proj.weight"));
  EXPECT_TRUE(DummyQuantizesMatrix("model.layers.0.self_attn.o_proj.weight"));
  EXPECT_FALSE(DummyQuantizesMatrix("model.layers.0.mlp.gate.weight"));
}

INSTANTIATE_TEST_SUITE_P(AllFormats, DummyQuantizedTest, ::testing::ValuesIn(Schemes()),
                         [](const ::testing::TestParamInfo<Scheme>& info) { return info.param.label; });

// The quantized fixtures' configs load with dummy weights in their own format
// (at one and two ranks), run to finite logits, and hold fewer bytes than the
// same model with bf16 dummy weights.
TEST(DummyQuantizedModelTest, QuantizedConfigsLoadAndRun) {
  for (const std::string fixture : {"llama_awq", "qwen3_int4", "qwen2_int4_channel", "qwen3_moe_awq",
                                    "qwen3_moe_fp8", "llama_fp8_channel"}) {
    absl::StatusOr<ModelConfig> config = LoadModelConfig(FixtureDir(fixture));
    ASSERT_TRUE(config.ok()) << config.status();
    absl::StatusOr<WeightQuantization> scheme = ParseWeightQuantization(*config);
    ASSERT_TRUE(scheme.ok()) << scheme.status();
    for (const ModelShard shard : {ModelShard{}, ModelShard{.rank = 1, .world_size = 2}}) {
      absl::StatusOr<std::unique_ptr<WeightSource>> weights = MakeDummyWeightsFor(*config, 4);
      ASSERT_TRUE(weights.ok()) << weights.status();
      absl::StatusOr<std::unique_ptr<DecoderModel>> model = LoadModel(*config, *std::move(weights), shard);
      if (!model.ok() && shard.world_size == 2) {
        // A tiny fixture's shard may cut through an FP8 block; the error says so.
        EXPECT_THAT(std::string(model.status().message()), HasSubstr("tensor model.layers.")) << fixture;
        continue;
      }
      ASSERT_TRUE(model.ok()) << fixture << ": " << model.status();
      absl::StatusOr<std::unique_ptr<DecoderModel>> plain =
          LoadModel(*config, MakeDummyWeights(4), shard);
      ASSERT_TRUE(plain.ok()) << plain.status();
      EXPECT_LT((*model)->weight_bytes(), (*plain)->weight_bytes()) << fixture;
      if (shard.world_size == 2) continue;  // a rank alone cannot run without its peer
      std::unique_ptr<kernels::Backend> backend = kernels::MakeCpuBackend(1);
      absl::StatusOr<std::unique_ptr<Generator>> generator = Generator::Create(**model, *backend, {});
      ASSERT_TRUE(generator.ok()) << generator.status();
      absl::StatusOr<std::vector<float>> logits = (*generator)->Append({1, 2, 3}, false);
      ASSERT_TRUE(logits.ok()) << logits.status();
      ASSERT_EQ(logits->size(), static_cast<size_t>(config->vocab_size));
      for (float value : *logits) ASSERT_TRUE(std::isfinite(value)) << fixture;
    }
  }
}

// duet-fit's weight bytes per GPU are what the loader holds on rank 0, for
// every quantized format and split; the loader reads norms and biases as fp32
// vectors where duet-fit counts them at 16 bits. A split duet-fit calls
// impossible is one the loader refuses, and the other way round.
TEST(DummyQuantizedModelTest, FitCountsTheBytesTheLoaderHolds) {
  for (const std::string fixture : {"llama_awq", "qwen3_int4", "qwen2_int4_channel", "qwen3_moe_awq",
                                    "qwen3_moe_fp8", "llama_fp8_channel", "qwen3"}) {
    absl::StatusOr<ModelConfig> config = LoadModelConfig(FixtureDir(fixture));
    ASSERT_TRUE(config.ok()) << config.status();
    absl::StatusOr<doctor::Quantization> quantization =
        doctor::ResolveQuantization(*config, doctor::QuantizationChoice::kAuto);
    ASSERT_TRUE(quantization.ok()) << quantization.status();
    for (const doctor::ShardPlan plan : {doctor::ShardPlan{.ranks = 1}, doctor::ShardPlan{.ranks = 2},
                                         doctor::ShardPlan{.ranks = 2, .expert_parallel = true}}) {
      if (plan.expert_parallel && config->num_experts == 0) continue;
      const ModelShard shard{.rank = 0, .world_size = plan.ranks, .expert_parallel = plan.expert_parallel};
      absl::StatusOr<std::unique_ptr<WeightSource>> weights = MakeDummyWeightsFor(*config, 4);
      ASSERT_TRUE(weights.ok()) << weights.status();
      absl::StatusOr<std::unique_ptr<DecoderModel>> model = LoadModel(*config, *std::move(weights), shard);
      const std::string problem = doctor::ShardProblem(*config, *quantization, plan);
      const std::string where = StrCat(fixture, " ranks ", plan.ranks, plan.expert_parallel ? " ep" : " tp");
      ASSERT_EQ(model.ok(), problem.empty()) << where << ": " << problem << " / " << model.status();
      if (!model.ok()) continue;
      const int64_t layers = config->num_hidden_layers;
      const int64_t ranks = plan.ranks;
      int64_t vectors = (2 * layers + 1) * config->hidden_size;
      if (config->qk_norm) vectors += layers * 2 * config->head_dim;
      if (config->qkv_bias) {
        vectors += layers * (config->q_size() / ranks + 2 * doctor::KvHeadsPerRank(*config, plan.ranks) * config->head_dim);
      }
      if (config->o_proj_bias) vectors += layers * config->hidden_size;
      EXPECT_EQ(static_cast<int64_t>((*model)->weight_bytes()),
                doctor::WeightBytesPerGpu(*config, *quantization, plan) + 2 * vectors)
          << where;
    }
  }
}

TEST(DummyQuantizedModelTest, UnsupportedSchemeIsTheConfigError) {
  absl::StatusOr<ModelConfig> config = LoadModelConfig(FixtureDir("llama_awq"));
  ASSERT_TRUE(config.ok()) << config.status();
  QuantizationConfig gptq;
  gptq.raw_json = R"({"quant_method":"gptq","bits":4})";
  gptq.quant_method = "gptq";
  gptq.bits = 4;
  config->quantization = gptq;
  absl::StatusOr<std::unique_ptr<WeightSource>> weights = MakeDummyWeightsFor(*config, 4);
  ASSERT_FALSE(weights.ok());
  EXPECT_THAT(std::string(weights.status().message()), HasSubstr("gptq"));
}

}  // namespace
}  // namespace duet::worker
