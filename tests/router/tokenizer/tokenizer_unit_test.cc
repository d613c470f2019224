// Unit tests of the tokenizer's parts on small, hand-made inputs (no assets
// needed): UTF-8 repair, the ByteLevel alphabet, regex translation, the BPE
// merge loop on a synthetic vocabulary, and the errors for inputs and files
// the tokenizer does not accept.
#include <cstdint>
#include <string>
#include <vector>

#include "glog/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "router/tokenizer/byte_level.h"
#include "router/tokenizer/regex_translate.h"
#include "router/tokenizer/split_pre_tokenizer.h"
#include "router/tokenizer/tokenizer.h"
#include "common/utf8.h"

namespace duet::tokenizer {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kLlamaPattern[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

TEST(Utf8Test, LossyMatchesFromUtf8LossyRules) {
  EXPECT_EQ(Utf8Lossy("plain"), "plain");
  EXPECT_EQ(Utf8Lossy("\xE4\xBD\xA0"), "你");
  // An incomplete sequence is one U+FFFD, whatever its length.
  EXPECT_EQ(Utf8Lossy("\xE4\xBD"), "\xEF\xBF\xBD");
  EXPECT_EQ(Utf8Lossy("\xE4\xBD" "a"), "\xEF\xBF\xBD" "a");
  // Bytes that can never start a sequence are one U+FFFD each.
  EXPECT_EQ(Utf8Lossy("\x80\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(Utf8Lossy("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  // Surrogates (ED A0..BF) and overlongs (E0 80..9F, F0 80..8F) are invalid at
  // the second byte.
  EXPECT_EQ(Utf8Lossy("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(Utf8Lossy("\xF4\x90\x80\x80"),
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(Utf8Lossy("\xF0\x9F\x98"), "\xEF\xBF\xBD");
}

TEST(Utf8Test, StreamingHoldsBackOnlyIncompleteTails) {
  std::string out;
  EXPECT_EQ(AppendUtf8LossyPrefix("ab\xF0\x9F", false, &out), 2u);
  EXPECT_EQ(out, "ab");
  out.clear();
  EXPECT_EQ(AppendUtf8LossyPrefix("\xF0\x9F\x98\x80!", false, &out), 5u);
  EXPECT_EQ(out, "😀!");
  out.clear();
  EXPECT_EQ(AppendUtf8LossyPrefix("\xF0\x9F", true, &out), 2u);
  EXPECT_EQ(out, "\xEF\xBF\xBD");
}

TEST(Utf8Test, FindInvalidUtf8ReportsTheOffset) {
  EXPECT_EQ(FindInvalidUtf8("hello world, 你好"), std::string("hello world, 你好").size());
  EXPECT_EQ(FindInvalidUtf8("0123456789\xFF"), 10u);
  EXPECT_EQ(FindInvalidUtf8("abc\xE4\xBD"), 3u);
  EXPECT_EQ(FindInvalidUtf8("\xED\xA0\x80"), 0u);  // a surrogate
}

TEST(ByteLevelTest, AlphabetRoundTrips) {
  EXPECT_EQ(BytesToByteLevel(" "), "Ġ");
  EXPECT_EQ(BytesToByteLevel("\n"), "Ċ");
  EXPECT_EQ(BytesToByteLevel("a!"), "a!");
  std::string all_bytes;
  for (int byte = 0; byte < 256; ++byte) all_bytes.push_back(static_cast<char>(byte));
  EXPECT_EQ(ByteLevelToBytes(BytesToByteLevel(all_bytes)), all_bytes);
  EXPECT_EQ(ByteLevelToBytes("a b"), std::nullopt);  // ' ' itself is not in the alphabet
  EXPECT_EQ(ByteLevelDecodeToken("<｜end▁of▁sentence｜>"), "<｜end▁of▁sentence｜>");
  EXPECT_EQ(ByteLevelDecodeToken("ĠĠ"), "  ");
}

TEST(RegexTranslateTest, RewritesWhiteSpace) {
  absl::StatusOr<std::string> translated = TranslateOnigurumaPattern("(?i:'s|'t)|\\s+(?!\\S)");
  ASSERT_TRUE(translated.ok()) << translated.status();
  EXPECT_THAT(*translated, HasSubstr("(?i:'s|'t)|[\\t-\\r"));
  EXPECT_THAT(*translated, HasSubstr("(?![^\\t-\\r"));
  EXPECT_EQ(TranslateOnigurumaPattern("[^\\S]").status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(TranslateOnigurumaPattern("\\w+").status().code(), absl::StatusCode::kUnimplemented);
}

std::vector<std::string> SplitAll(const SplitPreTokenizer& splitter, std::string_view text) {
  std::vector<std::string> pieces;
  EXPECT_TRUE(splitter.Split(text, [&](std::string_view piece) {
    pieces.emplace_back(piece);
  }).ok());
  return pieces;
}

TEST(SplitPreTokenizerTest, SplitsLikeTheReference) {
  absl::StatusOr<std::unique_ptr<SplitPreTokenizer>> splitter =
      SplitPreTokenizer::FromPattern(kLlamaPattern);
  ASSERT_TRUE(splitter.ok()) << splitter.status();
  EXPECT_THAT(SplitAll(**splitter, "It's 12345 ok  \n\n x"),
              ElementsAre("It", "'s", " ", "123", "45", " ok", "  \n\n", " x"));
  // Oniguruma's \s excludes U+180E; both engines fold 'ſ' to 's'.
  EXPECT_THAT(SplitAll(**splitter, "a\u180e b"), ElementsAre("a", "\u180e", " b"));
  EXPECT_THAT(SplitAll(**splitter, "it'\u017fx"), ElementsAre("it", "'\u017f", "x"));
  EXPECT_THAT(SplitAll(**splitter, "IT'Sx"), ElementsAre("IT", "'S", "x"));
  // A very long run of one class needs the large JIT stack.
  const std::string spaces(4 << 20, ' ');
  EXPECT_THAT(SplitAll(**splitter, spaces + "x"),
              ElementsAre(std::string((4 << 20) - 1, ' '), " x"));
}

// SmolLM2's pre-tokenizer: digits split off one by one, then GPT-2's regex.
TEST(SplitPreTokenizerTest, ChainedStagesSplitThePiecesOfTheOneBefore) {
  absl::StatusOr<std::unique_ptr<SplitPreTokenizer>> splitter = SplitPreTokenizer::FromJson(
      json{{"type", "Sequence"},
           {"pretokenizers",
            json::array({{{"type", "Digits"}, {"individual_digits", true}},
                         {{"type", "ByteLevel"},
                          {"add_prefix_space", false},
                          {"trim_offsets", true},
                          {"use_regex", true}}})}},
      "test");
  ASSERT_TRUE(splitter.ok()) << splitter.status();
  EXPECT_THAT(SplitAll(**splitter, "It's 2024, ok  x"),
              ElementsAre("It", "'s", " ", "2", "0", "2", "4", ",", " ok", " ", " x"));

  // Digits without individual_digits keeps runs together.
  splitter = SplitPreTokenizer::FromJson(
      json{{"type", "Sequence"},
           {"pretokenizers",
            json::array({{{"type", "Digits"}, {"individual_digits", false}},
                         {{"type", "ByteLevel"}, {"add_prefix_space", false}}})}},
      "test");
  ASSERT_TRUE(splitter.ok()) << splitter.status();
  EXPECT_THAT(SplitAll(**splitter, "a12b 345"), ElementsAre("a", "12", "b", " ", "345"));

  // A lone ByteLevel with use_regex is GPT-2's regex alone.
  splitter = SplitPreTokenizer::FromJson(
      json{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}, "test");
  ASSERT_TRUE(splitter.ok()) << splitter.status();
  EXPECT_THAT(SplitAll(**splitter, "a12b 345"), ElementsAre("a", "12", "b", " 345"));

  // Two regex stages: the second sees only the first one's pieces.
  splitter = SplitPreTokenizer::FromPatterns({"\\p{N}", "[a-z]+"});
  ASSERT_TRUE(splitter.ok()) << splitter.status();
  EXPECT_THAT(SplitAll(**splitter, "ab1cd"), ElementsAre("ab", "1", "cd"));
}

// A tiny byte-level vocabulary: the 256 bytes, then "he", "ll", "hell",
// "hello", and two special tokens.
json TinyTokenizerJson() {
  json vocab = json::object();
  for (int byte = 0; byte < 256; ++byte) {
    vocab[BytesToByteLevel(std::string(1, static_cast<char>(byte)))] = byte;
  }
  vocab["he"] = 256;
  vocab["ll"] = 257;
  vocab["hell"] = 258;
  vocab["hello"] = 259;
  vocab["Ġhello"] = 260;
  return json{
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens",
       json::array({{{"id", 300}, {"content", "<s>"}, {"special", true}},
                    {{"id", 301}, {"content", "<tool>"}, {"special", false}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         json::array({{{"type", "Split"},
                       {"pattern", {{"Regex", kLlamaPattern}}},
                       {"behavior", "Isolated"},
                       {"invert", false}},
                      {{"type", "ByteLevel"},
                       {"add_prefix_space", false},
                       {"trim_offsets", true},
                       {"use_regex", false}}})}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
        {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {300}}, {"tokens", {"<s>"}}}}}}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", json::array({"h e", "l l", json::array({"he", "ll"}), "hell o", "Ġ hello"})}}},
  };
}

std::unique_ptr<Tokenizer> LoadOrDie(const json& spec) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromJson(spec.dump(), "tiny");
  CHECK(tokenizer.ok()) << tokenizer.status();
  return *std::move(tokenizer);
}

TEST(TokenizerTest, MergesByRankAndAddsTheTemplate) {
  const std::unique_ptr<Tokenizer> tokenizer = LoadOrDie(TinyTokenizerJson());
  EXPECT_EQ(tokenizer->vocab_size(), 302);
  EXPECT_THAT(*tokenizer->Encode("hello", false), ElementsAre(259));
  EXPECT_THAT(*tokenizer->Encode("hello hello", false), ElementsAre(259, 260));
  EXPECT_THAT(*tokenizer->Encode("hel", false), ElementsAre(256, 'l'));
  EXPECT_THAT(*tokenizer->Encode("hello", true), ElementsAre(300, 259));
  EXPECT_THAT(*tokenizer->Encode("", true), ElementsAre(300));
  // Special-token text always becomes its id, also without add_special_tokens.
  EXPECT_THAT(*tokenizer->Encode("<s>hello<tool>", false), ElementsAre(300, 259, 301));
  EXPECT_EQ(*tokenizer->Decode({300, 259, 301}, false), "<s>hello<tool>");
  EXPECT_EQ(*tokenizer->Decode({300, 259, 301}, true), "hello<tool>");
  EXPECT_EQ(tokenizer->TokenToId("<tool>"), 301);
  EXPECT_EQ(tokenizer->IdToToken(260), "Ġhello");
  EXPECT_THAT(tokenizer->SpecialTokenIds(), ElementsAre(300));
}

TEST(TokenizerTest, IgnoreMergesTakesWholeWordsFromTheVocabulary) {
  json spec = TinyTokenizerJson();
  spec["model"]["merges"] = json::array({"h e"});
  spec["model"]["ignore_merges"] = true;
  const std::unique_ptr<Tokenizer> tokenizer = LoadOrDie(spec);
  EXPECT_THAT(*tokenizer->Encode("hello", false), ElementsAre(259));
  EXPECT_THAT(*tokenizer->Encode("hellos", false), ElementsAre(256, 'l', 'l', 'o', 's'));
}

TEST(TokenizerTest, InvalidUtf8InputIsAnError) {
  const std::unique_ptr<Tokenizer> tokenizer = LoadOrDie(TinyTokenizerJson());
  absl::StatusOr<std::vector<int32_t>> ids = tokenizer->Encode("ok\xC3(", false);
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ids.status().message(), HasSubstr("byte offset 2"));
  EXPECT_FALSE(tokenizer->Encode("\xED\xA0\x80", false).ok());  // a surrogate
}

TEST(TokenizerTest, DecodeRejectsUnknownIdsAndRepairsBytes) {
  const std::unique_ptr<Tokenizer> tokenizer = LoadOrDie(TinyTokenizerJson());
  EXPECT_EQ(tokenizer->Decode({259, 999}, false).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(tokenizer->Decode({290}, false).status().code(),
            absl::StatusCode::kInvalidArgument);  // a hole between 260 and 300
  EXPECT_EQ(*tokenizer->Decode({0xE4, 0xBD, 0xA0}, false), "你");
  EXPECT_EQ(*tokenizer->Decode({0xE4, 0xBD, 300, 0xA0}, true), "你");
  EXPECT_EQ(*tokenizer->Decode({0xE4, 0xBD, 300, 0xA0}, false), "\xEF\xBF\xBD<s>\xEF\xBF\xBD");
}

absl::StatusCode LoadError(const json& spec) {
  return Tokenizer::FromJson(spec.dump(), "tiny").status().code();
}

TEST(TokenizerTest, RejectsWhatItDoesNotImplement) {
  json spec = TinyTokenizerJson();
  spec["normalizer"] = {{"type", "Lowercase"}};
  EXPECT_EQ(LoadError(spec), absl::StatusCode::kUnimplemented);

  spec = TinyTokenizerJson();
  spec["pre_tokenizer"]["pretokenizers"][0]["invert"] = true;
  EXPECT_EQ(LoadError(spec), absl::StatusCode::kUnimplemented);

  spec = TinyTokenizerJson();
  spec["pre_tokenizer"]["pretokenizers"][1]["add_prefix_space"] = true;
  EXPECT_EQ(LoadError(spec), absl::StatusCode::kUnimplemented);

  spec = TinyTokenizerJson();
  spec["model"]["dropout"] = 0.1;
  EXPECT_EQ(LoadError(spec), absl::StatusCode::kUnimplemented);

  spec = TinyTokenizerJson();
  spec["decoder"] = {{"type", "WordPiece"}};
  EXPECT_EQ(LoadError(spec), absl::StatusCode::kUnimplemented);

  spec = TinyTokenizerJson();
  spec["post_processor"] = {{"type", "BertProcessing"}};
  EXPECT_EQ(LoadError(spec), absl::StatusCode::kUnimplemented);
}

TEST(TokenizerTest, BadFilesNameTheProblem) {
  json spec = TinyTokenizerJson();
  spec["model"]["merges"] = json::array({"h e", "q zz"});
  absl::Status status = Tokenizer::FromJson(spec.dump(), "tiny").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("tiny: model.merges[1]"));

  EXPECT_EQ(Tokenizer::FromJson("{not json", "tiny").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Tokenizer::FromFile("/nonexistent/tokenizer.json").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace duet::tokenizer
