#include "common/model_config.h"

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/test_files.h"

namespace duet {
namespace {

using ::duet::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::json;

// The config.json / generation_config.json files as published on the
// Hugging Face hub for the target models.
const char* kLlama33Config = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": [128001, 128008, 128009],
  "head_dim": 128,
  "hidden_act": "silu",
  "hidden_size": 8192,
  "initializer_range": 0.02,
  "intermediate_size": 28672,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 64,
  "num_hidden_layers": 80,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {
    "factor": 8.0,
    "high_freq_factor": 4.0,
    "low_freq_factor": 1.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3"
  },
  "rope_theta": 500000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.47.0.dev0",
  "use_cache": true,
  "vocab_size": 128256
})";

const char* kLlama33Generation = R"({
  "bos_token_id": 128000,
  "do_sample": true,
  "eos_token_id": [128001, 128008, 128009],
  "temperature": 0.6,
  "top_p": 0.9,
  "transformers_version": "4.47.0.dev0"
})";

const char* kR1DistillQwen32BConfig = R"({
  "architectures": ["Qwen2ForCausalLM"],
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "eos_token_id": 151643,
  "hidden_act": "silu",
  "hidden_size": 5120,
  "initializer_range": 0.02,
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
  "transformers_version": "4.43.1",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 152064
})";

const char* kR1DistillQwen32BGeneration = R"({
  "_from_model_config": true,
  "bos_token_id": 151646,
  "eos_token_id": 151643,
  "do_sample": true,
  "temperature": 0.6,
  "top_p": 0.95,
  "transformers_version": "4.39.3"
})";

const char* kQwen3_8BConfig = R"({
  "architectures": ["Qwen3ForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "eos_token_id": 151645,
  "head_dim": 128,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 12288,
  "max_position_embeddings": 40960,
  "max_window_layers": 36,
  "model_type": "qwen3",
  "num_attention_heads": 32,
  "num_hidden_layers": 36,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-06,
  "rope_scaling": null,
  "rope_theta": 1000000,
  "sliding_window": null,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.51.0",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 151936
})";

const char* kQwen3Generation = R"({
  "bos_token_id": 151643,
  "do_sample": true,
  "eos_token_id": [151645, 151643],
  "pad_token_id": 151643,
  "temperature": 0.6,
  "top_k": 20,
  "top_p": 0.95,
  "transformers_version": "4.51.0"
})";

const char* kQwen3_30B_A3BConfig = R"({
  "architectures": ["Qwen3MoeForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "decoder_sparse_step": 1,
  "eos_token_id": 151645,
  "head_dim": 128,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
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
  "output_router_logits": false,
  "rms_norm_eps": 1e-06,
  "rope_scaling": null,
  "rope_theta": 1000000.0,
  "router_aux_loss_coef": 0.001,
  "sliding_window": null,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.51.0",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 151936
})";

// A small config with only the required fields of `architecture`.
Json MinimalConfig(const std::string& architecture = "LlamaForCausalLM") {
  return {{"architectures", {architecture}}, {"vocab_size", 1000},     {"hidden_size", 64},
          {"intermediate_size", 128},        {"num_hidden_layers", 4}, {"num_attention_heads", 8},
          {"max_position_embeddings", 256},  {"rms_norm_eps", 1e-6}};
}

Json MinimalMoeConfig() {
  Json config = MinimalConfig("Qwen3MoeForCausalLM");
  config["num_experts"] = 8;
  config["num_experts_per_tok"] = 2;
  config["moe_intermediate_size"] = 32;
  return config;
}

constexpr std::string_view kConfigName = "models/x/config.json";

absl::StatusOr<ModelConfig> Parse(const Json& config) {
  return ParseModelConfig(config.dump(), kConfigName);
}

void ExpectError(const absl::StatusOr<ModelConfig>& result, absl::StatusCode code,
                 std::vector<std::string> parts) {
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), code) << result.status();
  for (const std::string& part : parts) {
    EXPECT_THAT(std::string(result.status().message()), HasSubstr(part)) << result.status();
  }
}

TEST(ModelConfigTest, Llama33_70BInstruct) {
  const absl::StatusOr<ModelConfig> config =
      ParseModelConfig(kLlama33Config, "config.json", kLlama33Generation);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->family, ModelFamily::kLlama);
  EXPECT_EQ(config->architecture, "LlamaForCausalLM");
  EXPECT_EQ(config->model_type, "llama");
  EXPECT_EQ(config->vocab_size, 128256);
  EXPECT_EQ(config->hidden_size, 8192);
  EXPECT_EQ(config->intermediate_size, 28672);
  EXPECT_EQ(config->num_hidden_layers, 80);
  EXPECT_EQ(config->num_attention_heads, 64);
  EXPECT_EQ(config->num_key_value_heads, 8);
  EXPECT_EQ(config->head_dim, 128);
  EXPECT_EQ(config->q_size(), 8192);
  EXPECT_EQ(config->kv_size(), 1024);
  EXPECT_EQ(config->max_position_embeddings, 131072);
  EXPECT_DOUBLE_EQ(config->rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(config->rope_theta, 500000.0);
  ASSERT_TRUE(config->rope_scaling.has_value());
  EXPECT_DOUBLE_EQ(config->rope_scaling->factor, 8.0);
  EXPECT_DOUBLE_EQ(config->rope_scaling->low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(config->rope_scaling->high_freq_factor, 4.0);
  EXPECT_EQ(config->rope_scaling->original_max_position_embeddings, 8192);
  EXPECT_FALSE(config->qkv_bias);
  EXPECT_FALSE(config->o_proj_bias);
  EXPECT_FALSE(config->mlp_bias);
  EXPECT_FALSE(config->qk_norm);
  EXPECT_FALSE(config->tie_word_embeddings);
  EXPECT_EQ(config->torch_dtype, "bfloat16");
  EXPECT_EQ(config->weights_dtype, DType::kBF16);
  EXPECT_FALSE(config->quantization.has_value());
  EXPECT_EQ(config->bos_token_id, 128000);
  EXPECT_THAT(config->eos_token_ids, ElementsAre(128001, 128008, 128009));
  EXPECT_EQ(config->generation.do_sample, true);
  EXPECT_EQ(config->generation.temperature, 0.6);
  EXPECT_EQ(config->generation.top_p, 0.9);
  EXPECT_FALSE(config->generation.top_k.has_value());
  EXPECT_FALSE(config->generation.repetition_penalty.has_value());
  for (int64_t layer = 0; layer < 80; ++layer) EXPECT_FALSE(config->IsMoeLayer(layer));
}

TEST(ModelConfigTest, Llama33AwqQuantization) {
  Json json = Json::parse(kLlama33Config);
  json["quantization_config"] = {{"bits", 4},
                                 {"group_size", 128},
                                 {"modules_to_not_convert", nullptr},
                                 {"quant_method", "awq"},
                                 {"version", "gemm"},
                                 {"zero_point", true}};
  json["torch_dtype"] = "float16";
  const absl::StatusOr<ModelConfig> config = Parse(json);
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(config->quantization.has_value());
  const QuantizationConfig& quant = *config->quantization;
  EXPECT_EQ(quant.quant_method, "awq");
  EXPECT_EQ(quant.bits, 4);
  EXPECT_EQ(quant.group_size, 128);
  EXPECT_EQ(quant.zero_point, true);
  EXPECT_EQ(quant.version, "gemm");
  EXPECT_FALSE(quant.fmt.has_value());
  EXPECT_EQ(Json::parse(quant.raw_json), json["quantization_config"]);
  EXPECT_EQ(config->weights_dtype, DType::kF16);
}

TEST(ModelConfigTest, Fp8BlockQuantization) {
  Json json = MinimalConfig("Qwen3ForCausalLM");
  json["quantization_config"] = {{"activation_scheme", "dynamic"},
                                 {"fmt", "e4m3"},
                                 {"quant_method", "fp8"},
                                 {"weight_block_size", {128, 128}}};
  const absl::StatusOr<ModelConfig> config = Parse(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->quantization->quant_method, "fp8");
  EXPECT_EQ(config->quantization->fmt, "e4m3");
  EXPECT_EQ(config->quantization->activation_scheme, "dynamic");
  EXPECT_THAT(config->quantization->weight_block_size, ElementsAre(128, 128));
  EXPECT_FALSE(config->quantization->bits.has_value());

  json["quantization_config"]["weight_block_size"] = {128};
  ExpectError(Parse(json), absl::StatusCode::kInvalidArgument,
              {"quantization_config.weight_block_size"});
  json["quantization_config"].erase("weight_block_size");
  json["quantization_config"].erase("quant_method");
  ExpectError(Parse(json), absl::StatusCode::kInvalidArgument,
              {"quantization_config.quant_method", "missing"});
}

TEST(ModelConfigTest, DeepSeekR1DistillQwen32B) {
  const absl::StatusOr<ModelConfig> config =
      ParseModelConfig(kR1DistillQwen32BConfig, "config.json", kR1DistillQwen32BGeneration);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->family, ModelFamily::kQwen2);
  EXPECT_EQ(config->vocab_size, 152064);
  EXPECT_EQ(config->num_attention_heads, 40);
  EXPECT_EQ(config->num_key_value_heads, 8);
  EXPECT_EQ(config->head_dim, 128);  // 5120 / 40, no explicit head_dim
  EXPECT_EQ(config->num_hidden_layers, 64);
  EXPECT_DOUBLE_EQ(config->rope_theta, 1e6);
  EXPECT_FALSE(config->rope_scaling.has_value());
  // Qwen2: q/k/v carry biases though config.json never says so; o_proj not.
  EXPECT_TRUE(config->qkv_bias);
  EXPECT_FALSE(config->o_proj_bias);
  EXPECT_FALSE(config->qk_norm);
  EXPECT_EQ(config->sliding_window, 131072);
  EXPECT_EQ(config->max_window_layers, 64);
  // generation_config.json's bos wins over config.json's stale one.
  EXPECT_EQ(config->bos_token_id, 151646);
  EXPECT_THAT(config->eos_token_ids, ElementsAre(151643));
  EXPECT_EQ(config->generation.temperature, 0.6);
  EXPECT_EQ(config->generation.top_p, 0.95);

  const absl::StatusOr<ModelConfig> without_generation =
      ParseModelConfig(kR1DistillQwen32BConfig, "config.json");
  ASSERT_TRUE(without_generation.ok());
  EXPECT_EQ(without_generation->bos_token_id, 151643);
  EXPECT_FALSE(without_generation->generation.temperature.has_value());
}

TEST(ModelConfigTest, Qwen2IgnoresAttentionBiasField) {
  Json json = Json::parse(kR1DistillQwen32BConfig);
  json["attention_bias"] = false;
  const absl::StatusOr<ModelConfig> config = Parse(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->qkv_bias);
  EXPECT_FALSE(config->o_proj_bias);
}

TEST(ModelConfigTest, Qwen3_8B) {
  const absl::StatusOr<ModelConfig> config =
      ParseModelConfig(kQwen3_8BConfig, "config.json", kQwen3Generation);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->family, ModelFamily::kQwen3);
  EXPECT_EQ(config->head_dim, 128);
  EXPECT_EQ(config->num_key_value_heads, 8);
  EXPECT_EQ(config->intermediate_size, 12288);
  EXPECT_DOUBLE_EQ(config->rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(config->rope_theta, 1e6);  // an integer in the file
  EXPECT_FALSE(config->rope_scaling.has_value());
  EXPECT_FALSE(config->sliding_window.has_value());
  EXPECT_TRUE(config->qk_norm);
  EXPECT_FALSE(config->qkv_bias);
  // generation_config.json's eos list replaces config.json's single id.
  EXPECT_THAT(config->eos_token_ids, ElementsAre(151645, 151643));
  EXPECT_EQ(config->pad_token_id, 151643);
  EXPECT_EQ(config->generation.top_k, 20);
  EXPECT_EQ(config->generation.top_p, 0.95);

  const absl::StatusOr<ModelConfig> without_generation =
      ParseModelConfig(kQwen3_8BConfig, "config.json");
  ASSERT_TRUE(without_generation.ok());
  EXPECT_THAT(without_generation->eos_token_ids, ElementsAre(151645));
}

TEST(ModelConfigTest, Qwen3_30B_A3B) {
  const absl::StatusOr<ModelConfig> config =
      ParseModelConfig(kQwen3_30B_A3BConfig, "config.json", kQwen3Generation);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->family, ModelFamily::kQwen3Moe);
  EXPECT_EQ(config->hidden_size, 2048);
  // The explicit head_dim, not hidden_size / num_attention_heads = 64.
  EXPECT_EQ(config->head_dim, 128);
  EXPECT_EQ(config->q_size(), 4096);
  EXPECT_EQ(config->num_key_value_heads, 4);
  EXPECT_EQ(config->num_experts, 128);
  EXPECT_EQ(config->num_experts_per_tok, 8);
  EXPECT_EQ(config->moe_intermediate_size, 768);
  EXPECT_TRUE(config->norm_topk_prob);
  EXPECT_EQ(config->decoder_sparse_step, 1);
  EXPECT_TRUE(config->mlp_only_layers.empty());
  EXPECT_TRUE(config->qk_norm);
  for (int64_t layer = 0; layer < 48; ++layer) EXPECT_TRUE(config->IsMoeLayer(layer)) << layer;
}

TEST(ModelConfigTest, MoeLayerRule) {
  Json json = MinimalMoeConfig();
  json["num_hidden_layers"] = 8;
  json["decoder_sparse_step"] = 2;
  json["mlp_only_layers"] = {0, 5};
  const absl::StatusOr<ModelConfig> config = Parse(json);
  ASSERT_TRUE(config.ok()) << config.status();
  // (layer + 1) % 2 == 0 picks 1, 3, 5, 7; layer 5 is forced dense.
  std::vector<int64_t> moe_layers;
  for (int64_t layer = 0; layer < 8; ++layer) {
    if (config->IsMoeLayer(layer)) moe_layers.push_back(layer);
  }
  EXPECT_THAT(moe_layers, ElementsAre(1, 3, 7));
  EXPECT_FALSE(config->norm_topk_prob);  // HF default
}

TEST(ModelConfigTest, HfDefaults) {
  const absl::StatusOr<ModelConfig> config = Parse(MinimalConfig());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->num_key_value_heads, 8);  // = num_attention_heads
  EXPECT_EQ(config->head_dim, 8);             // 64 / 8
  EXPECT_DOUBLE_EQ(config->rope_theta, 10000.0);
  EXPECT_FALSE(config->rope_scaling.has_value());
  EXPECT_FALSE(config->tie_word_embeddings);
  EXPECT_FALSE(config->qkv_bias);
  EXPECT_FALSE(config->mlp_bias);
  EXPECT_FALSE(config->torch_dtype.has_value());
  EXPECT_FALSE(config->bos_token_id.has_value());
  EXPECT_TRUE(config->eos_token_ids.empty());
  EXPECT_EQ(config->num_experts, 0);

  Json biased = MinimalConfig();
  biased["attention_bias"] = true;
  biased["mlp_bias"] = true;
  biased["tie_word_embeddings"] = true;
  biased["dtype"] = "float32";  // newer transformers spell torch_dtype so
  const absl::StatusOr<ModelConfig> with_bias = Parse(biased);
  ASSERT_TRUE(with_bias.ok()) << with_bias.status();
  EXPECT_TRUE(with_bias->qkv_bias);
  EXPECT_TRUE(with_bias->o_proj_bias);
  EXPECT_TRUE(with_bias->mlp_bias);
  EXPECT_TRUE(with_bias->tie_word_embeddings);
  EXPECT_EQ(with_bias->weights_dtype, DType::kF32);

  Json rope_default = MinimalConfig();
  rope_default["rope_scaling"] = {{"rope_type", "default"}};
  ASSERT_TRUE(Parse(rope_default).ok());
  EXPECT_FALSE(Parse(rope_default)->rope_scaling.has_value());
  // The legacy "type" key.
  rope_default["rope_scaling"] = Json::parse(kLlama33Config)["rope_scaling"];
  rope_default["rope_scaling"].erase("rope_type");
  rope_default["rope_scaling"]["type"] = "llama3";
  ASSERT_TRUE(Parse(rope_default).ok());
  EXPECT_TRUE(Parse(rope_default)->rope_scaling.has_value());
}

TEST(ModelConfigTest, UnknownArchitecture) {
  ExpectError(
      Parse(MinimalConfig("MistralForCausalLM")), absl::StatusCode::kUnimplemented,
      {std::string(kConfigName), "architectures", "MistralForCausalLM", "Qwen3MoeForCausalLM"});
  Json json = MinimalConfig();
  json.erase("architectures");
  ExpectError(Parse(json), absl::StatusCode::kInvalidArgument,
              {std::string(kConfigName), "\"architectures\"", "missing"});
  json["architectures"] = Json::array();
  ExpectError(Parse(json), absl::StatusCode::kInvalidArgument, {"\"architectures\""});
}

TEST(ModelConfigTest, MissingRequiredField) {
  for (const char* field : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                            "num_attention_heads", "max_position_embeddings", "rms_norm_eps"}) {
    Json json = MinimalConfig();
    json.erase(field);
    ExpectError(Parse(json), absl::StatusCode::kInvalidArgument,
                {std::string(kConfigName), "\"" + std::string(field) + "\"", "missing"});
    json[field] = nullptr;  // null reads as missing
    ExpectError(Parse(json), absl::StatusCode::kInvalidArgument, {std::string(field), "missing"});
  }
  for (const char* field : {"num_experts", "num_experts_per_tok", "moe_intermediate_size"}) {
    Json json = MinimalMoeConfig();
    json.erase(field);
    ExpectError(Parse(json), absl::StatusCode::kInvalidArgument,
                {"\"" + std::string(field) + "\"", "missing"});
  }
}

TEST(ModelConfigTest, WrongJsonType) {
  Json json = MinimalConfig();
  json["hidden_size"] = "64";
  ExpectError(Parse(json), absl::StatusCode::kInvalidArgument,
              {std::string(kConfigName), "\"hidden_size\"", "expected an integer, got string"});
  json = MinimalConfig();
  json["num_hidden_layers"] = 4.5;
  ExpectError(Parse(json), absl::StatusCode::kInvalidArgument,
              {"\"num_hidden_layers\"", "expected an integer, got number"});
  json = MinimalConfig();
  json["rms_norm_eps"] = "1e-6";
  ExpectError(Parse(json), absl::StatusCode::kInvalidArgument, {"\"rms_norm_eps\"", "number"});
  json = MinimalConfig();
  json["tie_word_embeddings"] = 1;
  ExpectError(Parse(json), absl::StatusCode::kInvalidArgument,
              {"\"tie_word_embeddings\"", "expected a boolean"});
  json = MinimalConfig();
  json["eos_token_id"] = {1, "2"};
  ExpectError(Parse(json), absl::StatusCode::kInvalidArgument, {"\"eos_token_id\""});
  json = MinimalConfig();
  json["rope_scaling"] = 8.0;
  ExpectError(Parse(json), absl::StatusCode::kInvalidArgument, {"\"rope_scaling\""});
  json = MinimalConfig();
  json["hidden_size"] = -64;
  ExpectError(Parse(json), absl::StatusCode::kInvalidArgument, {"\"hidden_size\"", "positive"});

  ExpectError(ParseModelConfig("{\"architectures\": [", kConfigName),
              absl::StatusCode::kInvalidArgument, {std::string(kConfigName), "not valid JSON"});
  ExpectError(ParseModelConfig(R"({"hidden_size": 1e99999})", kConfigName),
              absl::StatusCode::kInvalidArgument, {std::string(kConfigName), "not valid JSON"});
  ExpectError(ParseModelConfig("[]", kConfigName), absl::StatusCode::kInvalidArgument,
              {std::string(kConfigName), "object"});
}

TEST(ModelConfigTest, InconsistentSizes) {
  Json json = MinimalConfig();
  json["hidden_size"] = 60;  // not divisible by 8 heads
  ExpectError(
      Parse(json), absl::StatusCode::kInvalidArgument,
      {std::string(kConfigName), "\"hidden_size\"", "not divisible by num_attention_heads"});
  json["head_dim"] = 16;  // an explicit head_dim makes it fine
  EXPECT_TRUE(Parse(json).ok());

  json = MinimalConfig();
  json["num_key_value_heads"] = 3;
  ExpectError(Parse(json), absl::StatusCode::kInvalidArgument,
              {"\"num_key_value_heads\"", "does not divide num_attention_heads 8"});

  json = MinimalMoeConfig();
  json["num_experts_per_tok"] = 9;
  ExpectError(Parse(json), absl::StatusCode::kInvalidArgument,
              {std::string(kConfigName), "\"num_experts_per_tok\"", "exceeds num_experts 8"});

  json = MinimalMoeConfig();
  json["mlp_only_layers"] = {4};
  ExpectError(Parse(json), absl::StatusCode::kInvalidArgument, {"\"mlp_only_layers\""});

  json = MinimalConfig();
  json["rope_scaling"] = Json::parse(kLlama33Config)["rope_scaling"];
  json["rope_scaling"]["high_freq_factor"] = 1.0;
  ExpectError(Parse(json), absl::StatusCode::kInvalidArgument,
              {"\"rope_scaling.high_freq_factor\"", "must exceed low_freq_factor"});
  json["rope_scaling"].erase("factor");
  ExpectError(Parse(json), absl::StatusCode::kInvalidArgument,
              {"\"rope_scaling.factor\"", "missing"});
}

TEST(ModelConfigTest, UnsupportedFeatures) {
  Json json = MinimalConfig("Qwen3ForCausalLM");
  json["rope_scaling"] = {
      {"rope_type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 32768}};
  ExpectError(Parse(json), absl::StatusCode::kUnimplemented,
              {std::string(kConfigName), "unsupported rope_scaling type \"yarn\""});
  json["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  ExpectError(Parse(json), absl::StatusCode::kUnimplemented,
              {"unsupported rope_scaling type \"linear\""});
  json["rope_scaling"] = {{"factor", 2.0}};
  ExpectError(Parse(json), absl::StatusCode::kInvalidArgument, {"\"rope_scaling.rope_type\""});

  json = MinimalConfig("Qwen2ForCausalLM");
  json["use_sliding_window"] = true;
  json["sliding_window"] = 4096;
  ExpectError(Parse(json), absl::StatusCode::kUnimplemented,
              {std::string(kConfigName), "\"use_sliding_window\"", "unsupported"});
}

TEST(ModelConfigTest, GenerationConfigErrorsNameThatFile) {
  const std::string config = MinimalConfig().dump();
  ExpectError(ParseModelConfig(config, kConfigName, "{\"temperature\": \"hot\"}", "gen.json"),
              absl::StatusCode::kInvalidArgument, {"gen.json", "\"temperature\""});
  ExpectError(ParseModelConfig(config, kConfigName, "{\"top_p\": 1.5}", "gen.json"),
              absl::StatusCode::kInvalidArgument, {"gen.json", "\"top_p\""});
  ExpectError(ParseModelConfig(config, kConfigName, "{\"eos_token_id\": -1}", "gen.json"),
              absl::StatusCode::kInvalidArgument, {"gen.json", "\"eos_token_id\""});
  ExpectError(ParseModelConfig(config, kConfigName, "not json", "gen.json"),
              absl::StatusCode::kInvalidArgument, {"gen.json", "not valid JSON"});
  const absl::StatusOr<ModelConfig> penalty =
      ParseModelConfig(config, kConfigName, "{\"repetition_penalty\": 1.05}", "gen.json");
  ASSERT_TRUE(penalty.ok()) << penalty.status();
  EXPECT_EQ(penalty->generation.repetition_penalty, 1.05);
}

// A path that is neither a directory nor a GGUF file is named as such, not
// as a missing <path>/config.json.
TEST(ModelConfigTest, PathThatIsNoModelIsNamed) {
  TempDir dir;
  const std::string absent = (dir.path() / "absent.gguf").string();
  ExpectError(LoadModelConfig(absent), absl::StatusCode::kNotFound,
              {absent, "no such file or directory"});
  const std::string text = dir.WriteFile("notes.gguf", "hello");
  ExpectError(LoadModelConfig(text), absl::StatusCode::kInvalidArgument, {text, "not a GGUF file"});
  EXPECT_TRUE(CheckModelPath(dir.path().string()).ok());
  EXPECT_EQ(CheckModelPath(absent).code(), absl::StatusCode::kNotFound);
}

TEST(ModelConfigTest, LoadsFromDirectory) {
  TempDir dir;
  ExpectError(LoadModelConfig(dir.path().string()), absl::StatusCode::kNotFound,
              {(dir.path() / "config.json").string()});

  dir.WriteFile("config.json", kQwen3_8BConfig);
  absl::StatusOr<ModelConfig> config = LoadModelConfig(dir.path().string());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->eos_token_ids, ElementsAre(151645));

  dir.WriteFile("generation_config.json", kQwen3Generation);
  config = LoadModelConfig(dir.path().string());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->eos_token_ids, ElementsAre(151645, 151643));

  const std::string broken = dir.WriteFile("generation_config.json", "{\"top_k\": -3}");
  ExpectError(LoadModelConfig(dir.path().string()), absl::StatusCode::kInvalidArgument,
              {broken, "\"top_k\""});
  dir.WriteFile("generation_config.json", "{}");
  const std::string bad_config = dir.WriteFile("config.json", "{\"architectures\": [\"X\"]}");
  ExpectError(LoadModelConfig(dir.path().string()), absl::StatusCode::kUnimplemented, {bad_config});
}

}  // namespace
}  // namespace duet
