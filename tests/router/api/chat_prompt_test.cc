// Chat prompts with the real Qwen3 template and tokenizer; the expected text
// and ids come from jinja2 + the `tokenizers` library (transformers'
// apply_chat_template).
#include "router/api/chat_prompt.h"

#include <vector>

#include "glog/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "router/api/model_assets.h"
#include "tests/router/api/api_test_util.h"

namespace duet::api {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using json = nlohmann::ordered_json;

const ModelAssets* Qwen3Assets() {
  static const ModelAssets* assets = [] () -> const ModelAssets* {
    if (!testing::HasTokenizer("qwen3")) return nullptr;
    absl::StatusOr<ModelAssets> loaded =
        LoadModelAssets(testing::FixtureModelDir("qwen3"), testing::TokenizerDir("qwen3"));
    CHECK(loaded.ok()) << loaded.status();
    return new ModelAssets(*std::move(loaded));
  }();
  return assets;
}

ChatPromptRequest Conversation() {
  ChatPromptRequest request;
  request.messages = json::parse(R"([{"role": "system", "content": "Be brief."},
                                     {"role": "user", "content": "What is 2+2?"}])");
  return request;
}

constexpr char kConversation[] =
    "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n";
const std::vector<int32_t> kConversationIds = {151644, 8948, 198, 3430, 9814, 13,  151645, 198, 151644, 872,
                                               198,    3838, 374, 220,  17,   10, 17,     30,  151645, 198};

class ChatPromptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    assets_ = Qwen3Assets();
    if (assets_ == nullptr) GTEST_SKIP() << "Qwen3 tokenizer not found under " << testing::AssetsDir();
  }
  const ModelAssets* assets_ = nullptr;
};

TEST_F(ChatPromptTest, RendersAndTokenizesWithTheGenerationPrompt) {
  absl::StatusOr<ChatPrompt> prompt = BuildChatPrompt(*assets_, Conversation());
  ASSERT_TRUE(prompt.ok()) << prompt.status();
  EXPECT_EQ(prompt->text, std::string(kConversation) + "<|im_start|>assistant\n");
  std::vector<int32_t> expected = kConversationIds;
  expected.insert(expected.end(), {151644, 77091, 198});
  EXPECT_THAT(prompt->token_ids, ElementsAreArray(expected));
}

TEST_F(ChatPromptTest, WithoutTheGenerationPrompt) {
  ChatPromptRequest request = Conversation();
  request.add_generation_prompt = false;
  absl::StatusOr<ChatPrompt> prompt = BuildChatPrompt(*assets_, request);
  ASSERT_TRUE(prompt.ok()) << prompt.status();
  EXPECT_EQ(prompt->text, kConversation);
  EXPECT_THAT(prompt->token_ids, ElementsAreArray(kConversationIds));
}

TEST_F(ChatPromptTest, TemplateKwargsReachTheTemplate) {
  ChatPromptRequest request = Conversation();
  request.template_kwargs = {{"enable_thinking", false}};
  absl::StatusOr<ChatPrompt> prompt = BuildChatPrompt(*assets_, request);
  ASSERT_TRUE(prompt.ok()) << prompt.status();
  EXPECT_EQ(prompt->text, std::string(kConversation) + "<|im_start|>assistant\n<think>\n\n</think>\n\n");
  std::vector<int32_t> expected = kConversationIds;
  expected.insert(expected.end(), {151644, 77091, 198, 151667, 271, 151668, 271});
  EXPECT_THAT(prompt->token_ids, ElementsAreArray(expected));
}

TEST_F(ChatPromptTest, TheTemplateSeesTheEosToken) {
  EXPECT_EQ(assets_->eos_token, "<|im_end|>");
  EXPECT_EQ(assets_->bos_token, "");
}

TEST_F(ChatPromptTest, MalformedMessagesNameTheField) {
  ChatPromptRequest request;
  request.messages = json::parse(R"([{"role": "user", "content": "hi"}, {"content": "no role"}])");
  absl::StatusOr<ChatPrompt> prompt = BuildChatPrompt(*assets_, request);
  EXPECT_EQ(prompt.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(prompt.status().message(), HasSubstr("messages[1].role"));
}

TEST_F(ChatPromptTest, KwargsMayNotReplaceTheMessages) {
  ChatPromptRequest request = Conversation();
  request.template_kwargs = {{"messages", json::array()}};
  EXPECT_EQ(BuildChatPrompt(*assets_, request).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ChatPromptWithoutTemplateTest, IsAFailedPrecondition) {
  if (!testing::HasTokenizer("qwen3")) GTEST_SKIP() << "Qwen3 tokenizer not found";
  ModelAssets assets;
  absl::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> tokenizer =
      tokenizer::Tokenizer::FromFile(testing::TokenizerDir("qwen3") + "/tokenizer.json");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  assets.tokenizer = *std::move(tokenizer);
  absl::StatusOr<ChatPrompt> prompt = BuildChatPrompt(assets, Conversation());
  EXPECT_EQ(prompt.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(prompt.status().message(), HasSubstr("no chat template"));
}

}  // namespace
}  // namespace duet::api
