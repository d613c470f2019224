// Bad model directories fail at load with a message naming the tensor or file
// at fault; dummy weights load at any configured shape.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <span>
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

// Every intermediate tensor is reported by name and layer with its shape, so
// a forward pass can be dumped and compared layer by layer.
TEST(ModelLoadTest, ObserverSeesEveryNamedIntermediate) {
  absl::StatusOr<ModelConfig> config = LoadModelConfig(FixtureDir("qwen3_moe_topk_norm").string());
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<std::unique_ptr<DecoderModel>> model = LoadModel(*config, MakeDummyWeights(5));
  ASSERT_TRUE(model.ok()) << model.status();
  std::unique_ptr<kernels::Backend> backend = kernels::MakeReferenceBackend();
  KvCache cache(config->num_hidden_layers, (*model)->KvLayout(4, 16));

  ForwardBatch batch;
  batch.token_ids = {3, 1, 4};
  batch.positions = {0, 1, 2};
  batch.slots = {32, 33, 34};  // block 2
  batch.query_start = {0, 3};
  batch.context_len = {3};
  batch.block_tables = {2};
  batch.max_blocks_per_seq = 1;
  batch.logit_rows = {2};

  std::map<std::string, std::vector<int64_t>> shapes;
  std::vector<float> observed_logits;
  const TensorObserver observer = [&](std::string_view name, const float* data,
                                      std::span<const int64_t> shape) {
    shapes[std::string(name)] = std::vector<int64_t>(shape.begin(), shape.end());
    if (name == "logits") observed_logits.assign(data, data + shape[0] * shape[1]);
  };
  std::vector<float> logits(config->vocab_size);
  ASSERT_TRUE((*model)->Forward(*backend, batch, cache, logits.data(), &observer).ok());

  const int64_t hidden = config->hidden_size;
  EXPECT_EQ(shapes["embeddings"], (std::vector<int64_t>{3, hidden}));
  for (int64_t layer = 0; layer < config->num_hidden_layers; ++layer) {
    const std::string prefix = "layers." + std::to_string(layer) + ".";
    EXPECT_EQ(shapes[prefix + "q"], (std::vector<int64_t>{3, config->q_size()})) << prefix;
    EXPECT_EQ(shapes[prefix + "k"], (std::vector<int64_t>{3, config->kv_size()})) << prefix;
    EXPECT_EQ(shapes[prefix + "attention"], (std::vector<int64_t>{3, config->q_size()})) << prefix;
    EXPECT_EQ(shapes[prefix + "attn_out"], (std::vector<int64_t>{3, hidden})) << prefix;
    EXPECT_EQ(shapes[prefix + "mlp_out"], (std::vector<int64_t>{3, hidden})) << prefix;
    EXPECT_EQ(shapes[prefix + "out"], (std::vector<int64_t>{3, hidden})) << prefix;
    // Only the sparse layers route.
    EXPECT_EQ(shapes.count(prefix + "router_logits"), config->IsMoeLayer(layer) ? 1u : 0u) << prefix;
  }
  EXPECT_EQ(observed_logits, logits);
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
