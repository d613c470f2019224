// Bad model directories fail at load with a message naming the tensor or file
// at fault; dummy weights load at any configured shape.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/model_config.h"
#include "kernels/ops.h"
#include "tests/test_paths.h"
#include "worker/generator.h"
#include "worker/models/registry.h"

namespace duet::worker {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

fs::path FixtureDir(const std::string& name) {
  return fs::path(duet::testing::SourceDir()) / "tests/golden/fixtures" / name;
}

// A writable copy of a fixture whose config.json `edit` may change.
class ModelDirCopy {
 public:
  ModelDirCopy(const std::string& fixture, const std::function<void(nlohmann::json&)>& edit) {
    dir_ = fs::path(::testing::TempDir()) /
           (std::string("model_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::copy(FixtureDir(fixture), dir_);
    nlohmann::json config = nlohmann::json::parse(std::ifstream(dir_ / "config.json"));
    edit(config);
    std::ofstream(dir_ / "config.json") << config.dump(2);
  }
  ~ModelDirCopy() { fs::remove_all(dir_); }
  std::string path() const { return dir_.string(); }

 private:
  fs::path dir_;
};

absl::Status LoadFrom(const std::string& dir) {
  absl::StatusOr<ModelConfig> config = LoadModelConfig(dir);
  if (!config.ok()) return config.status();
  absl::StatusOr<std::unique_ptr<WeightSource>> weights = OpenCheckpointWeights(dir);
  if (!weights.ok()) return weights.status();
  return LoadModel(*config, *std::move(weights)).status();
}

TEST(ModelLoadTest, FixtureLoads) {
  EXPECT_TRUE(LoadFrom(FixtureDir("llama").string()).ok());
}

TEST(ModelLoadTest, WrongShapeNamesTheTensor) {
  ModelDirCopy copy("llama", [](nlohmann::json& c) { c["intermediate_size"] = 96; });
  const absl::Status status = LoadFrom(copy.path());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("model.layers.0.mlp.gate_proj.weight"));
}

TEST(ModelLoadTest, MissingLayerNamesTheTensor) {
  ModelDirCopy copy("qwen2", [](nlohmann::json& c) { c["num_hidden_layers"] = c["num_hidden_layers"].get<int>() + 1; });
  const absl::Status status = LoadFrom(copy.path());
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()), HasSubstr("model.layers."));
}

TEST(ModelLoadTest, UntiedHeadWithoutLmHeadIsAnError) {
  ModelDirCopy copy("qwen3", [](nlohmann::json& c) { c["tie_word_embeddings"] = false; });
  const absl::Status status = LoadFrom(copy.path());
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()), HasSubstr("lm_head.weight"));
}

TEST(ModelLoadTest, MoreExpertsThanStoredNamesTheExpert) {
  ModelDirCopy copy("qwen3_moe_topk_norm", [](nlohmann::json& c) { c["num_experts"] = 9; });
  const absl::Status status = LoadFrom(copy.path());
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("mlp.gate.weight"));
}

TEST(ModelLoadTest, MissingShardIsNamed) {
  ModelDirCopy copy("llama", [](nlohmann::json&) {});
  const fs::path dir = copy.path();
  fs::rename(dir / "model.safetensors", dir / "model-00001-of-00002.safetensors");
  std::ofstream(dir / "model.safetensors.index.json")
      << R"({"weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors",
                            "lm_head.weight": "model-00002-of-00002.safetensors"}})";
  const absl::Status status = LoadFrom(dir.string());
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("model-00002-of-00002.safetensors"));
}

TEST(ModelLoadTest, DummyWeightsRunAtTheConfiguredShapes) {
  absl::StatusOr<ModelConfig> config = LoadModelConfig(FixtureDir("qwen3_moe_no_norm").string());
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<std::unique_ptr<DecoderModel>> model = LoadModel(*config, MakeDummyWeights(3));
  ASSERT_TRUE(model.ok()) << model.status();
  std::unique_ptr<kernels::Backend> backend = kernels::MakeCpuBackend(1);
  absl::StatusOr<std::unique_ptr<Generator>> generator = Generator::Create(**model, *backend, {});
  ASSERT_TRUE(generator.ok()) << generator.status();
  absl::StatusOr<std::vector<float>> logits = (*generator)->Append({1, 2, 3}, false);
  ASSERT_TRUE(logits.ok()) << logits.status();
  ASSERT_EQ(logits->size(), static_cast<size_t>(config->vocab_size));
  for (float value : *logits) ASSERT_TRUE(std::isfinite(value));
}

TEST(ModelLoadTest, TokenOutsideVocabularyIsRejected) {
  absl::StatusOr<ModelConfig> config = LoadModelConfig(FixtureDir("llama").string());
  ASSERT_TRUE(config.ok());
  absl::StatusOr<std::unique_ptr<DecoderModel>> model = LoadModel(*config, MakeDummyWeights(1));
  ASSERT_TRUE(model.ok());
  std::unique_ptr<kernels::Backend> backend = kernels::MakeReferenceBackend();
  absl::StatusOr<std::unique_ptr<Generator>> generator = Generator::Create(**model, *backend, {});
  ASSERT_TRUE(generator.ok());
  const absl::StatusOr<std::vector<float>> logits =
      (*generator)->Append({static_cast<int32_t>(config->vocab_size)}, false);
  EXPECT_EQ(logits.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(logits.status().message()), HasSubstr("outside the vocabulary"));
}

}  // namespace
}  // namespace duet::worker
