// config.json's quantization_config turned into the scheme the loader reads:
// each supported format from the fields real checkpoints carry, and an error
// naming the method and field for everything else.
#include "common/weight_quantization.h"

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace duet {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<WeightQuantization> Parse(const nlohmann::json& quantization) {
  nlohmann::json config = {{"architectures", {"LlamaForCausalLM"}}, {"vocab_size", 128},
                           {"hidden_size", 64}, {"intermediate_size", 128}, {"num_hidden_layers", 1},
                           {"num_attention_heads", 4}, {"max_position_embeddings", 64},
                           {"rms_norm_eps", 1e-5}};
  if (!quantization.is_null()) config["quantization_config"] = quantization;
  absl::StatusOr<ModelConfig> parsed = ParseModelConfig(config.dump(), "config.json");
  if (!parsed.ok()) return parsed.status();
  return ParseWeightQuantization(*parsed);
}

nlohmann::json CompressedTensors(const std::string& format, nlohmann::json weights) {
  return {{"quant_method", "compressed-tensors"}, {"format", format},
          {"config_groups", {{"group_0", {{"targets", {"Linear"}}, {"weights", weights}}}}},
          {"ignore", {"lm_head"}}, {"kv_cache_scheme", nullptr}};
}

TEST(WeightQuantizationTest, SupportedFormats) {
  absl::StatusOr<WeightQuantization> plain = Parse(nullptr);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->format, WeightFormat::kPlain);

  absl::StatusOr<WeightQuantization> awq = Parse(
      {{"quant_method", "awq"}, {"bits", 4}, {"group_size", 128}, {"zero_point", true}, {"version", "GEMM"}});
  ASSERT_TRUE(awq.ok()) << awq.status();
  EXPECT_EQ(awq->format, WeightFormat::kAwq);
  EXPECT_EQ(awq->group_size, 128);

  absl::StatusOr<WeightQuantization> fp8 =
      Parse({{"quant_method", "fp8"}, {"fmt", "e4m3"}, {"activation_scheme", "dynamic"}, {"weight_block_size", {128, 64}}});
  ASSERT_TRUE(fp8.ok()) << fp8.status();
  EXPECT_EQ(fp8->format, WeightFormat::kFp8);
  EXPECT_EQ(fp8->fp8_scales, Fp8Scales::kBlock);
  EXPECT_EQ(fp8->block_rows, 128);
  EXPECT_EQ(fp8->block_cols, 64);
  EXPECT_EQ(fp8->fp8_scale_name, "weight_scale_inv");

  absl::StatusOr<WeightQuantization> int4 = Parse(CompressedTensors(
      "pack-quantized", {{"num_bits", 4}, {"type", "int"}, {"symmetric", false}, {"strategy", "group"}, {"group_size", 32}}));
  ASSERT_TRUE(int4.ok()) << int4.status();
  EXPECT_EQ(int4->format, WeightFormat::kInt4);
  EXPECT_TRUE(int4->zero_points);
  EXPECT_EQ(int4->group_size, 32);

  absl::StatusOr<WeightQuantization> channel = Parse(CompressedTensors(
      "float-quantized", {{"num_bits", 8}, {"type", "float"}, {"symmetric", true}, {"strategy", "channel"}}));
  ASSERT_TRUE(channel.ok()) << channel.status();
  EXPECT_EQ(channel->format, WeightFormat::kFp8);
  EXPECT_EQ(channel->fp8_scales, Fp8Scales::kChannel);
  EXPECT_EQ(channel->fp8_scale_name, "weight_scale");
}

void ExpectUnsupported(const nlohmann::json& quantization, const std::string& field) {
  absl::StatusOr<WeightQuantization> scheme = Parse(quantization);
  ASSERT_FALSE(scheme.ok()) << quantization.dump();
  EXPECT_EQ(scheme.status().code(), absl::StatusCode::kUnimplemented) << scheme.status();
  EXPECT_THAT(scheme.status().message(), HasSubstr(field)) << scheme.status();
}

TEST(WeightQuantizationTest, UnsupportedSchemesNameTheField) {
  ExpectUnsupported({{"quant_method", "gptq"}, {"bits", 4}}, "\"gptq\"");
  ExpectUnsupported({{"quant_method", "awq"}, {"bits", 8}}, "bits");
  ExpectUnsupported({{"quant_method", "awq"}, {"version", "gemv"}}, "version");
  ExpectUnsupported({{"quant_method", "awq"}, {"zero_point", false}}, "zero_point");
  ExpectUnsupported({{"quant_method", "fp8"}, {"fmt", "e5m2"}}, "fmt");
  ExpectUnsupported(CompressedTensors("int-quantized", {{"num_bits", 8}, {"type", "int"}, {"strategy", "channel"}}),
                    "format");
  ExpectUnsupported(CompressedTensors("pack-quantized", {{"num_bits", 8}, {"type", "int"}, {"strategy", "group"}}),
                    "num_bits");
  ExpectUnsupported(CompressedTensors("pack-quantized",
                                      {{"num_bits", 4}, {"type", "int"}, {"strategy", "tensor"}}),
                    "strategy");
  nlohmann::json kv = CompressedTensors(
      "float-quantized", {{"num_bits", 8}, {"type", "float"}, {"strategy", "tensor"}});
  kv["kv_cache_scheme"] = {{"num_bits", 8}};
  ExpectUnsupported(kv, "kv_cache_scheme");
}

}  // namespace
}  // namespace duet
