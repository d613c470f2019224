// Loading what the router needs from a model directory and a tokenizer
// directory, and finding the chat template in tokenizer_config.json.
#include "router/api/model_assets.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/router/api/api_test_util.h"

namespace duet::api {
namespace {

using ::testing::HasSubstr;
using ::testing::Optional;

TEST(ChatTemplateSourceTest, AString) {
  EXPECT_THAT(ChatTemplateSource(R"({"chat_template": "{{ x }}"})", "c.json").value(),
              Optional(std::string("{{ x }}")));
}

TEST(ChatTemplateSourceTest, TheDefaultOfANamedList) {
  const char* config = R"({"chat_template": [{"name": "tool_use", "template": "T"},
                                             {"name": "default", "template": "D"}]})";
  EXPECT_THAT(ChatTemplateSource(config, "c.json").value(), Optional(std::string("D")));
}

TEST(ChatTemplateSourceTest, AbsentOrNullIsNone) {
  EXPECT_EQ(ChatTemplateSource(R"({})", "c.json").value(), std::nullopt);
  EXPECT_EQ(ChatTemplateSource(R"({"chat_template": null})", "c.json").value(), std::nullopt);
}

TEST(ChatTemplateSourceTest, OtherShapesAreErrorsNamingTheFile) {
  for (const char* config : {R"({"chat_template": 3})", R"({"chat_template": [{"name": "x", "template": "T"}]})",
                             R"({"chat_template": [{"name": "default"}]})", R"([1])", R"(not json)"}) {
    absl::StatusOr<std::optional<std::string>> source = ChatTemplateSource(config, "c.json");
    EXPECT_EQ(source.status().code(), absl::StatusCode::kInvalidArgument) << config;
    EXPECT_THAT(source.status().message(), HasSubstr("c.json")) << config;
  }
}

class ModelAssetsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::HasTokenizer("qwen3")) GTEST_SKIP() << "Qwen3 tokenizer not found under " << testing::AssetsDir();
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("model_assets_test_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    std::filesystem::create_symlink(std::filesystem::absolute(testing::TokenizerDir("qwen3")) / "tokenizer.json",
                                    dir_ / "tokenizer.json");
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  void Write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name) << text; }

  std::filesystem::path dir_;
};

TEST_F(ModelAssetsTest, LoadsTheFixtureWithTheRealTokenizer) {
  absl::StatusOr<ModelAssets> assets =
      LoadModelAssets(testing::FixtureModelDir("qwen3"), testing::TokenizerDir("qwen3"));
  ASSERT_TRUE(assets.ok()) << assets.status();
  EXPECT_EQ(assets->config.architecture, "Qwen3ForCausalLM");
  EXPECT_EQ(assets->config.vocab_size, 1024);
  EXPECT_THAT(assets->config.eos_token_ids, ::testing::ElementsAre(2));
  EXPECT_EQ(assets->tokenizer->vocab_size(), 151669);
  EXPECT_TRUE(assets->chat_template.has_value());
  EXPECT_EQ(assets->eos_token, "<|im_end|>");
}

TEST_F(ModelAssetsTest, AModelDirWithoutATokenizerSaysWhatToDo) {
  absl::StatusOr<ModelAssets> assets = LoadModelAssets(testing::FixtureModelDir("qwen3"), "");
  EXPECT_EQ(assets.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(assets.status().message(), HasSubstr("--tokenizer"));
}

TEST_F(ModelAssetsTest, AMissingModelIsNotFound) {
  EXPECT_EQ(LoadModelAssets((dir_ / "nowhere").string(), dir_.string()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ModelAssetsTest, WithoutTokenizerConfigThereIsNoTemplate) {
  absl::StatusOr<ModelAssets> assets = LoadModelAssets(testing::FixtureModelDir("qwen3"), dir_.string());
  ASSERT_TRUE(assets.ok()) << assets.status();
  EXPECT_FALSE(assets->chat_template.has_value());
  EXPECT_EQ(assets->bos_token, "");
}

TEST_F(ModelAssetsTest, SpecialTokensMayBeAddedTokenObjects) {
  Write("tokenizer_config.json",
        R"({"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>",
            "chat_template": "{{ bos_token }}"})");
  absl::StatusOr<ModelAssets> assets = LoadModelAssets(testing::FixtureModelDir("qwen3"), dir_.string());
  ASSERT_TRUE(assets.ok()) << assets.status();
  EXPECT_EQ(assets->bos_token, "<s>");
  EXPECT_EQ(assets->eos_token, "</s>");
  EXPECT_EQ(assets->chat_template->Render(nlohmann::ordered_json{{"bos_token", "<s>"}}).value(), "<s>");
}

TEST_F(ModelAssetsTest, ChatTemplateJinjaWinsOverTheConfig) {
  Write("tokenizer_config.json", R"({"chat_template": "from config"})");
  Write("chat_template.jinja", "from file");
  absl::StatusOr<ModelAssets> assets = LoadModelAssets(testing::FixtureModelDir("qwen3"), dir_.string());
  ASSERT_TRUE(assets.ok()) << assets.status();
  EXPECT_EQ(assets->chat_template->Render(nlohmann::ordered_json::object()).value(), "from file");
}

TEST_F(ModelAssetsTest, ATemplateSyntaxErrorNamesTheDirectory) {
  Write("tokenizer_config.json", R"({"chat_template": "{% if %}"})");
  absl::StatusOr<ModelAssets> assets = LoadModelAssets(testing::FixtureModelDir("qwen3"), dir_.string());
  EXPECT_EQ(assets.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(assets.status().message(), HasSubstr(dir_.string()));
}

TEST_F(ModelAssetsTest, ABadSpecialTokenIsAnError) {
  Write("tokenizer_config.json", R"({"eos_token": 7})");
  absl::StatusOr<ModelAssets> assets = LoadModelAssets(testing::FixtureModelDir("qwen3"), dir_.string());
  EXPECT_EQ(assets.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(assets.status().message(), HasSubstr("eos_token"));
}

}  // namespace
}  // namespace duet::api
