// The tokenizer duet builds from a GGUF file's metadata (gguf_vocab.h),
// checked on the default model, SmolLM2-135M-Instruct, against llama.cpp's
// own tokenization of the corpus (testdata/expected_smollm2_gguf.json,
// written by tests/golden/make_gguf_fixtures.py).
#include "router/tokenizer/gguf_vocab.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/test_paths.h"

namespace duet::tokenizer {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string DefaultModelPath() {
  return duet::testing::BuildDir() + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

json ReadJson(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream text;
  text << in.rdbuf();
  return json::parse(text.str());
}

class GgufTokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = DefaultModelPath();
    ASSERT_TRUE(std::filesystem::exists(path))
        << path << " is missing: scripts/setup.sh installs it and the build links it";
    absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open(path);
    ASSERT_TRUE(file.ok()) << file.status();
    file_ = *std::move(file);
    absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = TokenizerFromGguf(*file_);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = *std::move(tokenizer);
  }

  std::unique_ptr<GgufFile> file_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_F(GgufTokenizerTest, CorpusIdsEqualLlamaCpps) {
  const std::string testdata = duet::testing::SourceDir() + "/tests/router/tokenizer/testdata/";
  const json corpus = ReadJson(testdata + "corpus.json");
  const json expected = ReadJson(testdata + "expected_smollm2_gguf.json");
  const std::vector<std::string> texts = corpus["texts"].get<std::vector<std::string>>();
  ASSERT_EQ(expected["cases"].size(), texts.size());
  int compared = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const json& expected_case = expected["cases"][i];
    if (!expected_case.contains("ids")) continue;  // llama.cpp refused the text
    absl::StatusOr<std::vector<int32_t>> ids = tokenizer_->Encode(texts[i], false);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(*ids, expected_case["ids"].get<std::vector<int32_t>>())
        << "text #" << i << ": " << json(texts[i]).dump();
    ++compared;
  }
  EXPECT_GT(compared, static_cast<int>(texts.size()) / 2);
}

TEST_F(GgufTokenizerTest, SpecialTokensAndRoundTrip) {
  EXPECT_EQ(tokenizer_->vocab_size(), 49152);
  EXPECT_EQ(tokenizer_->TokenToId("<|im_start|>"), 1);
  EXPECT_EQ(tokenizer_->TokenToId("<|im_end|>"), 2);
  // add_bos_token is false for SmolLM2: nothing is prepended.
  absl::StatusOr<std::vector<int32_t>> ids =
      tokenizer_->Encode("<|im_start|>user\nHi 2024!<|im_end|>", true);
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_GE(ids->size(), 3u);
  EXPECT_EQ(ids->front(), 1);
  EXPECT_EQ(ids->back(), 2);
  EXPECT_EQ(*tokenizer_->Decode(*ids, false), "<|im_start|>user\nHi 2024!<|im_end|>");
  EXPECT_EQ(*tokenizer_->Decode(*ids, true), "user\nHi 2024!");
}

TEST(GgufVocabTest, UnknownPreTokenizerNamesTheSupportedOnes) {
  absl::StatusOr<std::vector<std::string>> patterns = GgufPreTokenizerPatterns("no-such-pre");
  EXPECT_EQ(patterns.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(patterns.status().message(), HasSubstr("no-such-pre"));
  EXPECT_THAT(patterns.status().message(), HasSubstr("smollm"));
  patterns = GgufPreTokenizerPatterns("smollm");
  ASSERT_TRUE(patterns.ok()) << patterns.status();
  EXPECT_EQ(patterns->size(), 2u);
}

}  // namespace
}  // namespace duet::tokenizer
