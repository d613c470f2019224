// Compares duet's tokenizer with the ids and text Hugging Face `tokenizers`
// produced for the corpus (testdata/, written by make_expected.py), for the
// Llama 3, Llama 3.1 and Qwen3 vocabularies and a Qwen3 variant whose added
// tokens use lstrip/rstrip/single_word/normalized. Skipped when the
// tokenizer.json assets are absent.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "router/tokenizer/incremental_detokenizer.h"
#include "router/tokenizer/tokenizer.h"
#include "tests/router/tokenizer/tokenizer_test_util.h"

namespace duet::tokenizer {
namespace {

using nlohmann::json;
using testing::ReadFileOrDie;
using testing::SharedTokenizer;
using testing::TokenizerJsonPath;

const std::filesystem::path kTestData = DUET_TOKENIZER_TESTDATA;

// Twin of corpus.big_text.
std::string BigText(const std::vector<std::string>& texts) {
  static const char* const kSeparators[] = {"", " ", "\n", "\n\n", "\t", "  "};
  constexpr uint64_t kMultiplier = 6364136223846793005ull;
  constexpr uint64_t kIncrement = 1442695040888963407ull;
  uint64_t state = 42;
  std::string out;
  while (out.size() < (size_t{1} << 20)) {
    state = state * kMultiplier + kIncrement;
    out += texts[(state >> 33) % texts.size()];
    state = state * kMultiplier + kIncrement;
    out += kSeparators[(state >> 33) % 6];
  }
  return out;
}

// Twin of corpus.ids_hash.
uint64_t IdsHash(const std::vector<int32_t>& ids) {
  uint64_t hash = 0xCBF29CE484222325ull;
  for (const int32_t id : ids) {
    const auto bits = static_cast<uint32_t>(id);
    for (int shift = 0; shift < 32; shift += 8) {
      hash ^= (bits >> shift) & 0xFF;
      hash *= 0x100000001B3ull;
    }
  }
  return hash;
}

struct Fixture {
  std::vector<std::string> texts;
  json expected;
  const Tokenizer* tokenizer = nullptr;
};

// Loads the fixture for `name`; tokenizer stays null when the asset is absent.
const Fixture& LoadFixture(const std::string& name) {
  static auto* fixtures = new std::map<std::string, Fixture>();
  static auto* owned = new std::vector<std::unique_ptr<Tokenizer>>();
  if (auto it = fixtures->find(name); it != fixtures->end()) return it->second;
  Fixture fixture;
  fixture.expected = json::parse(ReadFileOrDie(kTestData / ("expected_" + name + ".json")));
  fixture.texts =
      json::parse(ReadFileOrDie(kTestData / "corpus.json"))["texts"].get<std::vector<std::string>>();
  if (fixture.expected.contains("texts")) {
    for (const json& text : fixture.expected["texts"]) fixture.texts.push_back(text);
  }
  const std::string vocabulary = fixture.expected["vocabulary"];
  if (!fixture.expected.contains("added_tokens")) {
    fixture.tokenizer = SharedTokenizer(vocabulary);
  } else if (std::filesystem::exists(TokenizerJsonPath(vocabulary))) {
    json spec = json::parse(ReadFileOrDie(TokenizerJsonPath(vocabulary)));
    spec["added_tokens"] = fixture.expected["added_tokens"];
    absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromJson(spec.dump());
    CHECK(tokenizer.ok()) << tokenizer.status();
    owned->push_back(*std::move(tokenizer));
    fixture.tokenizer = owned->back().get();
  }
  return fixtures->emplace(name, std::move(fixture)).first->second;
}

class TokenizerFixtureTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    fixture_ = &LoadFixture(GetParam());
    if (fixture_->tokenizer == nullptr) {
      GTEST_SKIP() << "tokenizer asset absent under " << testing::AssetsDir();
    }
  }
  const Fixture* fixture_ = nullptr;
};

TEST_P(TokenizerFixtureTest, EncodeMatchesReference) {
  const json& cases = fixture_->expected["cases"];
  ASSERT_EQ(cases.size(), fixture_->texts.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string& text = fixture_->texts[i];
    const auto expected = cases[i]["ids"].get<std::vector<int32_t>>();
    const auto expected_special = cases[i].contains("ids_special")
                                      ? cases[i]["ids_special"].get<std::vector<int32_t>>()
                                      : expected;
    absl::StatusOr<std::vector<int32_t>> ids = fixture_->tokenizer->Encode(text, false);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(*ids, expected) << "text #" << i << ": " << json(text).dump();
    absl::StatusOr<std::vector<int32_t>> ids_special = fixture_->tokenizer->Encode(text, true);
    ASSERT_TRUE(ids_special.ok()) << ids_special.status();
    EXPECT_EQ(*ids_special, expected_special) << "text #" << i << ": " << json(text).dump();
  }
}

TEST_P(TokenizerFixtureTest, DecodeMatchesReference) {
  const json& cases = fixture_->expected["cases"];
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto ids = cases[i].contains("ids_special")
                         ? cases[i]["ids_special"].get<std::vector<int32_t>>()
                         : cases[i]["ids"].get<std::vector<int32_t>>();
    absl::StatusOr<std::string> text = fixture_->tokenizer->Decode(ids, false);
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_EQ(*text, cases[i]["decoded"].get<std::string>()) << "text #" << i;
    absl::StatusOr<std::string> skipped = fixture_->tokenizer->Decode(ids, true);
    ASSERT_TRUE(skipped.ok()) << skipped.status();
    EXPECT_EQ(*skipped, cases[i]["decoded_skip"].get<std::string>()) << "text #" << i;
  }
}

TEST_P(TokenizerFixtureTest, DecodeOfArbitraryIdsMatchesReference) {
  for (const json& decode_case : fixture_->expected["decode_cases"]) {
    const auto ids = decode_case["ids"].get<std::vector<int32_t>>();
    absl::StatusOr<std::string> text = fixture_->tokenizer->Decode(ids, false);
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_EQ(*text, decode_case["text"].get<std::string>()) << json(ids).dump();
    absl::StatusOr<std::string> skipped = fixture_->tokenizer->Decode(ids, true);
    ASSERT_TRUE(skipped.ok()) << skipped.status();
    EXPECT_EQ(*skipped, decode_case["text_skip"].get<std::string>()) << json(ids).dump();
  }
}

TEST_P(TokenizerFixtureTest, IncrementalDetokenizerMatchesDecode) {
  for (const json& decode_case : fixture_->expected["decode_cases"]) {
    for (const bool skip : {false, true}) {
      IncrementalDetokenizer detokenizer(fixture_->tokenizer, skip);
      std::string streamed;
      for (const int32_t id : decode_case["ids"].get<std::vector<int32_t>>()) {
        absl::StatusOr<std::string> piece = detokenizer.Add(id);
        ASSERT_TRUE(piece.ok()) << piece.status();
        streamed += *piece;
      }
      streamed += detokenizer.Flush();
      EXPECT_EQ(streamed, decode_case[skip ? "text_skip" : "text"].get<std::string>());
    }
  }
}

TEST_P(TokenizerFixtureTest, OneMebibyteInputMatchesReference) {
  const json& big = fixture_->expected["big_text"];
  const std::string text = BigText(fixture_->texts);
  ASSERT_EQ(text.size(), big["num_bytes"].get<size_t>());
  absl::StatusOr<std::vector<int32_t>> ids = fixture_->tokenizer->Encode(text, false);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(ids->size(), big["num_ids"].get<size_t>());
  EXPECT_EQ(std::to_string(IdsHash(*ids)), big["ids_fnv1a64"].get<std::string>());
}

TEST_P(TokenizerFixtureTest, ConcurrentEncodeMatchesReference) {
  // Const methods are documented thread-safe; the shared BPE cache is the
  // part under test.
  const json& cases = fixture_->expected["cases"];
  std::vector<std::thread> threads;
  std::atomic<int> num_mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = t; i < cases.size() * 3; i += 4) {
        const size_t index = i % cases.size();
        absl::StatusOr<std::vector<int32_t>> ids =
            fixture_->tokenizer->Encode(fixture_->texts[index], false);
        if (!ids.ok() || *ids != cases[index]["ids"].get<std::vector<int32_t>>()) ++num_mismatches;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(num_mismatches.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, TokenizerFixtureTest,
                         ::testing::Values("llama3", "llama3_1", "qwen3", "qwen3_flags"));

}  // namespace
}  // namespace duet::tokenizer
