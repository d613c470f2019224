// IncrementalDetokenizer: text is released as soon as it is final, never half
// a UTF-8 character, and the releases concatenate to Tokenizer::Decode.
#include "router/tokenizer/incremental_detokenizer.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "router/tokenizer/byte_level.h"
#include "common/utf8.h"
#include "tests/router/tokenizer/tokenizer_test_util.h"

namespace duet::tokenizer {
namespace {

using testing::SharedTokenizer;

// Streams `ids` and checks each release is valid UTF-8; returns the releases.
std::vector<std::string> Stream(const Tokenizer& tokenizer, const std::vector<int32_t>& ids,
                                bool skip_special_tokens) {
  IncrementalDetokenizer detokenizer(&tokenizer, skip_special_tokens);
  std::vector<std::string> releases;
  for (const int32_t id : ids) {
    absl::StatusOr<std::string> piece = detokenizer.Add(id);
    EXPECT_TRUE(piece.ok()) << piece.status();
    EXPECT_EQ(FindInvalidUtf8(*piece), piece->size()) << "released a partial character";
    releases.push_back(*piece);
  }
  releases.push_back(detokenizer.Flush());
  return releases;
}

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& part : parts) out += part;
  return out;
}

class IncrementalDetokenizerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    tokenizer_ = SharedTokenizer(GetParam());
    if (tokenizer_ == nullptr) GTEST_SKIP() << "tokenizer asset absent";
  }
  const Tokenizer* tokenizer_ = nullptr;
};

TEST_P(IncrementalDetokenizerTest, EmojiSplitAcrossTokensIsReleasedWhole) {
  // A skin-toned ZWJ sequence is several byte-level tokens, some of them
  // partial characters.
  const std::string text = "ok 🤷🏽‍♀️ 👨‍👩‍👧‍👦!";
  const std::vector<int32_t> ids = *tokenizer_->Encode(text, false);
  bool some_token_is_partial = false;
  for (const int32_t id : ids) {
    const std::string_view bytes = *tokenizer_->TokenBytes(id);
    some_token_is_partial |= FindInvalidUtf8(bytes) != bytes.size();
  }
  EXPECT_TRUE(some_token_is_partial) << "the test needs a token that splits a character";
  const std::vector<std::string> releases = Stream(*tokenizer_, ids, false);
  EXPECT_EQ(Join(releases), text);
  EXPECT_EQ(releases.back(), "");  // nothing was left pending
}

TEST_P(IncrementalDetokenizerTest, CjkStreamsCharacterByCharacter) {
  const std::string text = "龘靐齉爩 𠀀𪚥 你好，世界";
  const std::vector<int32_t> ids = *tokenizer_->Encode(text, false);
  EXPECT_EQ(Join(Stream(*tokenizer_, ids, false)), text);
}

TEST_P(IncrementalDetokenizerTest, SpecialTokensAreKeptOrSkipped) {
  const std::string special = GetParam() == "qwen3" ? "<|im_end|>" : "<|eot_id|>";
  const std::vector<int32_t> ids = *tokenizer_->Encode("Hi 你" + special + "好", true);
  EXPECT_EQ(Join(Stream(*tokenizer_, ids, false)), *tokenizer_->Decode(ids, false));
  EXPECT_EQ(Join(Stream(*tokenizer_, ids, true)), "Hi 你好");
}

TEST_P(IncrementalDetokenizerTest, IncompleteBytesBecomeOneReplacementAtFlush) {
  // The first two bytes of "你" then the end of the sequence.
  std::vector<int32_t> byte_ids;
  for (const char byte : std::string("\xE4\xBD")) {
    byte_ids.push_back(*tokenizer_->TokenToId(BytesToByteLevel(std::string(1, byte))));
  }
  IncrementalDetokenizer detokenizer(tokenizer_, false);
  EXPECT_EQ(*detokenizer.Add(byte_ids[0]), "");
  EXPECT_EQ(*detokenizer.Add(byte_ids[1]), "");
  EXPECT_EQ(detokenizer.num_pending_bytes(), 2u);
  EXPECT_EQ(detokenizer.Flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(*tokenizer_->Decode(byte_ids, false), "\xEF\xBF\xBD");
}

TEST_P(IncrementalDetokenizerTest, RandomIdsConcatenateToDecode) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> any_id(0, tokenizer_->vocab_size() - 1);
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<int32_t> ids;
    for (int i = 0; i < 12; ++i) {
      const int32_t id = any_id(rng);
      if (tokenizer_->TokenBytes(id).ok()) ids.push_back(id);
    }
    for (const bool skip : {false, true}) {
      EXPECT_EQ(Join(Stream(*tokenizer_, ids, skip)), *tokenizer_->Decode(ids, skip));
    }
  }
}

TEST_P(IncrementalDetokenizerTest, UnknownIdIsAnError) {
  IncrementalDetokenizer detokenizer(tokenizer_, false);
  EXPECT_EQ(detokenizer.Add(tokenizer_->vocab_size()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(detokenizer.Add(-1).status().code(), absl::StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, IncrementalDetokenizerTest,
                         ::testing::Values("llama3_1", "qwen3"));

}  // namespace
}  // namespace duet::tokenizer
