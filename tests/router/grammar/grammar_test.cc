// The grammar engine on small vocabularies: which strings the JSON Schema,
// regex and choice grammars accept, and how the matcher treats tokens that
// split characters, stop tokens and the end of the grammar.
#include <filesystem>
#include <memory>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "common/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "router/grammar/compiled_grammar.h"
#include "router/grammar/grammar.h"
#include "router/grammar/grammar_matcher.h"
#include "router/grammar/json_schema_grammar.h"
#include "router/grammar/regex_grammar.h"
#include "router/grammar/tool_call_grammar.h"
#include "router/tokenizer/tokenizer.h"
#include "tests/router/api/api_test_util.h"
#include "tests/test_paths.h"

namespace duet::grammar {
namespace {

using Json = nlohmann::ordered_json;
using ::testing::HasSubstr;

// A vocabulary of every single byte (ids 0..255), so any string can be fed
// byte by byte, plus a few multi-byte tokens.
std::shared_ptr<const TokenVocabulary> ByteVocabulary(std::vector<std::string> extra = {}) {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(std::string(1, static_cast<char>(b)));
  for (std::string& token : extra) tokens.push_back(std::move(token));
  return TokenVocabulary::FromTokens(std::move(tokens));
}

// Whether the grammar accepts `text` as a complete output.
bool Accepts(const Grammar& grammar, std::string_view text) {
  CompiledGrammar compiled(grammar, ByteVocabulary());
  std::optional<MatchState> state = compiled.Advance(compiled.InitialState(), text);
  return state.has_value() && state->can_end;
}

// Whether `text` is a prefix of something the grammar accepts.
bool AcceptsPrefix(const Grammar& grammar, std::string_view text) {
  CompiledGrammar compiled(grammar, ByteVocabulary());
  return compiled.Advance(compiled.InitialState(), text).has_value();
}

Grammar Schema(std::string_view text) {
  absl::StatusOr<Grammar> grammar = JsonSchemaGrammar(Json::parse(text));
  EXPECT_TRUE(grammar.ok()) << grammar.status();
  return grammar.ok() ? *std::move(grammar) : Grammar();
}

TEST(CharClassTest, SetOperations) {
  const CharClass letters = CharClass::Of({{'a', 'z'}, {'A', 'Z'}});
  EXPECT_TRUE(letters.Contains('q'));
  EXPECT_FALSE(letters.Contains('0'));
  EXPECT_TRUE(letters.Complement().Contains('0'));
  EXPECT_FALSE(letters.Complement().Contains('a'));
  EXPECT_EQ(letters.Minus(CharClass::Of({{'a', 'y'}})), CharClass::Of({{'A', 'Z'}, {'z', 'z'}}));
  // Surrogates are never members.
  EXPECT_FALSE(CharClass::Any().Contains(0xD800));
  EXPECT_TRUE(CharClass::Any().Contains(0x10FFFF));
  EXPECT_EQ(CharClass::Of({{1, 3}, {4, 6}}), CharClass::Of({{1, 6}}));
}

TEST(GrammarTest, FinalizeRejectsLeftRecursionAndEmptyLoops) {
  Grammar left;
  const int32_t rule = left.AddRule("a");
  left.AddAlternative(0, {Grammar::RuleElement(rule)});
  left.AddAlternative(rule, {Grammar::RuleElement(rule), left.ClassElement(CharClass::Single('x'))});
  left.AddAlternative(rule, left.Literal("x"));
  EXPECT_THAT(std::string(left.Finalize().message()), HasSubstr("without consuming input"));

  Grammar empty_loop;
  const int32_t optional = empty_loop.Optional(empty_loop.Literal("x"), "x?");
  empty_loop.AddAlternative(0, {Grammar::RuleElement(empty_loop.Star({Grammar::RuleElement(optional)}, "loop"))});
  EXPECT_FALSE(empty_loop.Finalize().ok());

  Grammar right;
  right.AddAlternative(0, {Grammar::RuleElement(right.Star(right.Literal("ab"), "ab*"))});
  EXPECT_TRUE(right.Finalize().ok());
  EXPECT_TRUE(Accepts(right, ""));
  EXPECT_TRUE(Accepts(right, "ababab"));
  EXPECT_FALSE(Accepts(right, "aba"));
  EXPECT_TRUE(AcceptsPrefix(right, "aba"));
}

TEST(JsonSchemaGrammarTest, ObjectsFollowPropertiesAndRequired) {
  const Grammar grammar = Schema(R"({"type": "object", "properties": {
      "name": {"type": "string"}, "age": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}}},
      "required": ["name"]})");
  EXPECT_TRUE(Accepts(grammar, R"({"name": "Ada"})"));
  EXPECT_TRUE(Accepts(grammar, R"({"name": "Ada", "age": 36})"));
  EXPECT_TRUE(Accepts(grammar, R"({"name": "Ada", "tags": ["a", "b\"c"]})"));
  EXPECT_TRUE(Accepts(grammar, R"({"name": "Ada", "age": -3, "tags": []})"));
  EXPECT_FALSE(Accepts(grammar, R"({})"));                        // name is required
  EXPECT_FALSE(Accepts(grammar, R"({"age": 36, "name": "Ada"})"));  // schema order
  EXPECT_FALSE(Accepts(grammar, R"({"name": "Ada", "extra": 1})"));  // no additional properties
  EXPECT_FALSE(Accepts(grammar, R"({"name": 3})"));
  EXPECT_FALSE(Accepts(grammar, R"({"name": "Ada", "age": 3.5})"));
  EXPECT_FALSE(Accepts(grammar, R"({"name":"Ada"})"));  // the layout has ": "
  EXPECT_FALSE(Accepts(grammar, R"({"name": "Ada"} )"));
  EXPECT_FALSE(Accepts(grammar, "{\"name\": \"a\nb\"}"));  // raw control character
  EXPECT_TRUE(Accepts(grammar, R"({"name": "a\nb\u00e9"})"));
}

TEST(JsonSchemaGrammarTest, OptionalOnlyObjectsAndAdditionalProperties) {
  const Grammar optional = Schema(R"({"type": "object", "properties": {"a": {"type": "boolean"}, "b": {"type": "null"}}})");
  EXPECT_TRUE(Accepts(optional, "{}"));
  EXPECT_TRUE(Accepts(optional, R"({"b": null})"));
  EXPECT_TRUE(Accepts(optional, R"({"a": true, "b": null})"));
  EXPECT_FALSE(Accepts(optional, R"({, "b": null})"));
  const Grammar open = Schema(R"({"type": "object", "properties": {"a": {"type": "integer"}},
                                  "additionalProperties": {"type": "string"}})");
  EXPECT_TRUE(Accepts(open, R"({"a": 1, "x": "y", "z": "w"})"));
  EXPECT_TRUE(Accepts(open, R"({"x": "y"})"));
  EXPECT_FALSE(Accepts(open, R"({"a": 1, "x": 2})"));
  const Grammar any = Schema(R"({"type": "object", "additionalProperties": true})");
  EXPECT_TRUE(Accepts(any, R"({"k": [1, {"n": null}], "v": -0.5e+3})"));
}

TEST(JsonSchemaGrammarTest, ScalarsEnumsConstAndCombinators) {
  EXPECT_TRUE(Accepts(Schema(R"({"enum": ["red", 3, null, {"a": [1]}]})"), R"({"a": [1]})"));
  EXPECT_TRUE(Accepts(Schema(R"({"enum": ["red", 3]})"), R"("red")"));
  EXPECT_FALSE(Accepts(Schema(R"({"enum": ["red", 3]})"), R"("blue")"));
  EXPECT_TRUE(Accepts(Schema(R"({"const": "x\"y"})"), R"("x\"y")"));
  const Grammar either = Schema(R"({"anyOf": [{"type": "string", "maxLength": 2}, {"type": "integer"}]})");
  EXPECT_TRUE(Accepts(either, R"("ab")"));
  EXPECT_FALSE(Accepts(either, R"("abc")"));
  EXPECT_TRUE(Accepts(either, "12"));
  const Grammar types = Schema(R"({"type": ["number", "null"]})");
  EXPECT_TRUE(Accepts(types, "-1.25E-7"));
  EXPECT_TRUE(Accepts(types, "null"));
  EXPECT_FALSE(Accepts(types, "01"));
  EXPECT_FALSE(Accepts(types, "1."));
}

TEST(JsonSchemaGrammarTest, StringLengthsPatternsAndFormats) {
  const Grammar bounded = Schema(R"({"type": "string", "minLength": 2, "maxLength": 3})");
  EXPECT_FALSE(Accepts(bounded, R"("a")"));
  EXPECT_TRUE(Accepts(bounded, R"("ab")"));
  EXPECT_TRUE(Accepts(bounded, R"("a\"é")"));  // an escape and a 2-byte character count once each
  EXPECT_FALSE(Accepts(bounded, R"("abcd")"));
  EXPECT_FALSE(Accepts(bounded, "\"a\tb\""));  // a raw control character is not JSON (xgrammar allows it here)
  const Grammar pattern = Schema(R"({"type": "string", "pattern": "^[A-Z]{2}-\\d+$"})");
  EXPECT_TRUE(Accepts(pattern, R"("AB-123")"));
  EXPECT_FALSE(Accepts(pattern, R"("AB-")"));
  EXPECT_FALSE(Accepts(pattern, R"("ab-1")"));
  const Grammar quote = Schema(R"({"type": "string", "pattern": "a\"b"})");
  EXPECT_TRUE(Accepts(quote, R"("a\"b")"));
  const Grammar date = Schema(R"({"type": "string", "format": "date"})");
  EXPECT_TRUE(Accepts(date, R"("2026-12-07")"));
  EXPECT_FALSE(Accepts(date, R"("2026-13-07")"));
  const Grammar uuid = Schema(R"({"type": "string", "format": "uuid"})");
  EXPECT_TRUE(Accepts(uuid, R"("123e4567-e89b-12d3-a456-426614174000")"));
}

TEST(JsonSchemaGrammarTest, IntegerBoundsAreExact) {
  struct Case {
    const char* schema;
    int64_t first;
    int64_t last;
  };
  const Case cases[] = {
      {R"({"type": "integer", "minimum": 0, "maximum": 100})", 0, 100},
      {R"({"type": "integer", "minimum": -37, "maximum": 1205})", -37, 1205},
      {R"({"type": "integer", "exclusiveMinimum": -10, "exclusiveMaximum": -2})", -9, -3},
      {R"({"type": "integer", "minimum": 7, "maximum": 7})", 7, 7},
      {R"({"type": "integer", "minimum": 1.5, "maximum": 19.9})", 2, 19},
  };
  for (const Case& c : cases) {
    const Grammar grammar = Schema(c.schema);
    CompiledGrammar compiled(grammar, ByteVocabulary());
    for (int64_t value = -2000; value <= 2000; ++value) {
      const std::string text = std::to_string(value);
      std::optional<MatchState> state = compiled.Advance(compiled.InitialState(), text);
      const bool accepted = state.has_value() && state->can_end;
      EXPECT_EQ(accepted, value >= c.first && value <= c.last) << c.schema << " " << value;
    }
    EXPECT_FALSE(Accepts(grammar, "007"));
  }
  const Grammar above = Schema(R"({"type": "integer", "minimum": 95})");
  EXPECT_FALSE(Accepts(above, "94"));
  EXPECT_TRUE(Accepts(above, "95"));
  EXPECT_TRUE(Accepts(above, "100"));
  EXPECT_TRUE(Accepts(above, "123456789012"));
  EXPECT_FALSE(Accepts(above, "-100"));
  const Grammar below = Schema(R"({"type": "integer", "maximum": -5})");
  EXPECT_TRUE(Accepts(below, "-5"));
  EXPECT_TRUE(Accepts(below, "-123456789"));
  EXPECT_FALSE(Accepts(below, "-4"));
  EXPECT_FALSE(Accepts(below, "0"));
}

TEST(JsonSchemaGrammarTest, ArraysCountItemsAndRefsRecurse) {
  const Grammar grammar = Schema(R"({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3})");
  EXPECT_FALSE(Accepts(grammar, "[]"));
  EXPECT_TRUE(Accepts(grammar, "[1]"));
  EXPECT_TRUE(Accepts(grammar, "[1, 2, 3]"));
  EXPECT_FALSE(Accepts(grammar, "[1, 2, 3, 4]"));
  EXPECT_FALSE(Accepts(grammar, "[1,2]"));
  const Grammar tree = Schema(R"({"$ref": "#/$defs/node", "$defs": {"node": {"type": "object",
      "properties": {"v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
      "required": ["v"]}}})");
  EXPECT_TRUE(Accepts(tree, R"({"v": 1, "kids": [{"v": 2}, {"v": 3, "kids": [{"v": 4, "kids": []}]}]})"));
  EXPECT_FALSE(Accepts(tree, R"({"v": 1, "kids": [{"kids": []}]})"));
}

TEST(JsonSchemaGrammarTest, UnsupportedKeywordsAreNamed) {
  for (const char* keyword : {"uniqueItems", "patternProperties", "minProperties", "if", "not", "prefixItems"}) {
    Json schema = Json::parse(R"({"type": "object"})");
    schema[keyword] = true;
    absl::StatusOr<Grammar> grammar = JsonSchemaGrammar(schema);
    ASSERT_FALSE(grammar.ok()) << keyword;
    EXPECT_THAT(std::string(grammar.status().message()), HasSubstr(StrCat("'", keyword, "'")));
  }
  absl::StatusOr<Grammar> bounded = JsonSchemaGrammar(Json::parse(R"({"type": "number", "minimum": 0})"));
  ASSERT_FALSE(bounded.ok());
  EXPECT_THAT(std::string(bounded.status().message()), HasSubstr("'minimum'"));
  absl::StatusOr<Grammar> format = JsonSchemaGrammar(Json::parse(R"({"type": "string", "format": "hostname"})"));
  ASSERT_FALSE(format.ok());
  EXPECT_THAT(std::string(format.status().message()), HasSubstr("'format'"));
  EXPECT_FALSE(JsonSchemaGrammar(Json::parse(R"({"$ref": "#/$defs/missing"})")).ok());
  EXPECT_FALSE(JsonSchemaGrammar(Json::parse(R"({"type": "object", "required": ["x"]})")).ok());
}

TEST(JsonObjectGrammarTest, AnyObject) {
  const Grammar grammar = JsonObjectGrammar();
  EXPECT_TRUE(Accepts(grammar, "{}"));
  EXPECT_TRUE(Accepts(grammar, R"({"a": [true, false, null, "x", {"b": {}}], "c": 1e5})"));
  EXPECT_FALSE(Accepts(grammar, "[]"));
  EXPECT_FALSE(Accepts(grammar, R"("text")"));
}

TEST(RegexGrammarTest, WholeMatchSemantics) {
  auto regex = [](std::string_view pattern) {
    absl::StatusOr<Grammar> grammar = RegexGrammar(pattern);
    EXPECT_TRUE(grammar.ok()) << pattern << ": " << grammar.status();
    return grammar.ok() ? *std::move(grammar) : Grammar();
  };
  EXPECT_TRUE(Accepts(regex("(cat|dog)s?"), "dogs"));
  EXPECT_FALSE(Accepts(regex("(cat|dog)s?"), "cow"));
  EXPECT_TRUE(Accepts(regex("[^a-c]{2,3}"), "xyz"));
  EXPECT_FALSE(Accepts(regex("[^a-c]{2,3}"), "xa"));
  EXPECT_TRUE(Accepts(regex("\\d{3}-\\w+"), "123-ab_9"));
  EXPECT_TRUE(Accepts(regex("a.c"), "a€c"));
  EXPECT_FALSE(Accepts(regex("a.c"), "a\nc"));
  EXPECT_TRUE(Accepts(regex("x{2}y{1,}z{0,1}"), "xxyyy"));
  EXPECT_TRUE(Accepts(regex("[-+]?[0-9]*\\.[0-9]+"), "-.5"));
  EXPECT_TRUE(Accepts(regex("(?:ab)+?"), "abab"));
  EXPECT_TRUE(Accepts(regex("a{b"), "a{b"));  // not a quantifier: a literal brace
  for (const char* unsupported : {"(a)\\1", "a(?=b)", "\\bword", "(?i)abc", "a^b", "a**", "[[:alpha:]]", "(a*)*"}) {
    EXPECT_FALSE(RegexGrammar(unsupported).ok()) << unsupported;
  }
}

TEST(ChoiceGrammarTest, ExactlyOneChoice) {
  absl::StatusOr<Grammar> grammar = ChoiceGrammar({"yes", "no", "maybe so"});
  ASSERT_TRUE(grammar.ok());
  EXPECT_TRUE(Accepts(*grammar, "maybe so"));
  EXPECT_FALSE(Accepts(*grammar, "maybe"));
  EXPECT_FALSE(ChoiceGrammar({}).ok());
}

TEST(ToolCallGrammarTest, OnlyCallsOfOfferedFunctionsWithValidArguments) {
  const std::vector<ToolFunction> functions = {
      {"get_weather", Json::parse(R"({"type": "object", "properties": {"location": {"type": "string"},
          "unit": {"enum": ["celsius", "fahrenheit"]}}, "required": ["location"]})")},
      {"now", nullptr}};
  absl::StatusOr<Grammar> hermes = ToolCallGrammar("hermes", functions, /*parallel=*/true);
  ASSERT_TRUE(hermes.ok()) << hermes.status();
  const std::string weather = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\"}}\n</tool_call>";
  const std::string now = "<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>";
  EXPECT_TRUE(Accepts(*hermes, weather));
  EXPECT_TRUE(Accepts(*hermes, weather + "\n" + now));
  EXPECT_FALSE(Accepts(*hermes, "Sure. " + weather));
  EXPECT_FALSE(Accepts(*hermes, "<tool_call>\n{\"name\": \"other\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(Accepts(*hermes, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(Accepts(*hermes, "<tool_call>\n{\"name\": \"now\", \"arguments\": {\"x\": 1}}\n</tool_call>"));
  absl::StatusOr<Grammar> single = ToolCallGrammar("hermes", functions, /*parallel=*/false);
  ASSERT_TRUE(single.ok());
  EXPECT_FALSE(Accepts(*single, weather + "\n" + now));
  absl::StatusOr<Grammar> llama = ToolCallGrammar("llama3_json", functions, /*parallel=*/true);
  ASSERT_TRUE(llama.ok());
  EXPECT_TRUE(Accepts(*llama, R"({"name": "now", "parameters": {}}; {"name": "get_weather", "parameters": {"location": "x", "unit": "celsius"}})"));
  absl::StatusOr<Grammar> deepseek = ToolCallGrammar("deepseek_v3", functions, /*parallel=*/false);
  ASSERT_TRUE(deepseek.ok());
  EXPECT_TRUE(Accepts(*deepseek, "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>now\n```json\n{}\n```"
                                 "<｜tool▁call▁end｜><｜tool▁calls▁end｜>"));
  absl::StatusOr<Grammar> bad = ToolCallGrammar("hermes", {{"f", Json::parse(R"({"type": "object", "not": {}})")}}, true);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("tool 'f'"));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("'not'"));
}

TEST(GrammarMatcherTest, SplitCharactersStopTokensAndCompletion) {
  // ids 256.. : "é" split over two tokens, and a token that ends the value.
  auto vocabulary = ByteVocabulary({"\xC3", "\xA9", "ab\"", "\"}", "\xE0\x80"});
  const int32_t kLead = 256, kTrail = 257, kCloseString = 258, kCloseAll = 259, kOverlong = 260;
  const int32_t kEos = 300;
  const Grammar grammar = Schema(R"({"type": "object", "properties": {"s": {"type": "string"}}, "required": ["s"]})");
  auto compiled = std::make_shared<CompiledGrammar>(grammar, vocabulary);
  GrammarMatcher matcher(compiled, {kEos});
  for (char c : std::string("{\"s\": \"")) ASSERT_TRUE(matcher.AcceptToken(static_cast<uint8_t>(c)));
  std::vector<int32_t> allowed = matcher.AllowedTokenIds();
  EXPECT_THAT(allowed, ::testing::Contains(kLead));
  EXPECT_THAT(allowed, ::testing::Contains(kCloseAll));
  EXPECT_THAT(allowed, ::testing::Not(::testing::Contains(kTrail)));      // a continuation byte cannot start
  EXPECT_THAT(allowed, ::testing::Not(::testing::Contains(kOverlong)));   // no completion is valid UTF-8
  EXPECT_THAT(allowed, ::testing::Not(::testing::Contains(kEos)));
  EXPECT_THAT(allowed, ::testing::Not(::testing::Contains('\n')));
  ASSERT_TRUE(matcher.AcceptToken(kLead));
  allowed = matcher.AllowedTokenIds();
  EXPECT_THAT(allowed, ::testing::Contains(kTrail));
  EXPECT_THAT(allowed, ::testing::Not(::testing::Contains('a')));  // the character must be finished first
  ASSERT_TRUE(matcher.AcceptToken(kTrail));
  ASSERT_TRUE(matcher.AcceptToken(kCloseAll));
  EXPECT_TRUE(matcher.can_end());
  EXPECT_TRUE(matcher.completed());
  EXPECT_THAT(matcher.AllowedTokenIds(), ::testing::ElementsAre(kEos));
  EXPECT_FALSE(matcher.AcceptToken('x'));
  EXPECT_TRUE(matcher.AcceptToken(kEos));
  EXPECT_TRUE(matcher.terminated());
  EXPECT_TRUE(matcher.AllowedTokenIds().empty());
}

TEST(GrammarMatcherTest, BitmaskLayoutAndPadding) {
  auto vocabulary = ByteVocabulary();
  absl::StatusOr<Grammar> grammar = ChoiceGrammar({"A", "B"});
  ASSERT_TRUE(grammar.ok());
  GrammarMatcher matcher(std::make_shared<CompiledGrammar>(*grammar, vocabulary), {270});
  const std::string mask = matcher.NextTokenBitmask(300);  // the model's rows are wider than the vocabulary
  ASSERT_EQ(mask.size(), 38u);
  for (int32_t id = 0; id < 300; ++id) {
    const bool bit = (static_cast<uint8_t>(mask[id / 8]) >> (id % 8)) & 1;
    EXPECT_EQ(bit, id == 'A' || id == 'B') << id;
  }
  ASSERT_TRUE(matcher.AcceptToken('B'));
  const std::string end = matcher.NextTokenBitmask(300);
  EXPECT_EQ(static_cast<uint8_t>(end[270 / 8]), 1u << (270 % 8));
}

// Random walks under the masks: whatever is sampled, the result parses as
// JSON and the mask computed with every cache equals the plain scan.
TEST(GrammarMatcherTest, RandomWalksStayInsideTheGrammarAndMasksMatchTheScan) {
  std::vector<std::string> extra = {"{\"", "\": ", "\", \"", "\"}", "true", "null", ", ", "é", "😀", "\\u00", "12",
                                    "\"name", "age", "}]", "]}", "[{"};
  auto vocabulary = ByteVocabulary(extra);
  const int32_t kEos = vocabulary->size();
  const Grammar grammar = Schema(R"({"type": "object", "properties": {
      "name": {"type": "string", "maxLength": 6}, "age": {"type": "integer", "minimum": 0, "maximum": 150},
      "list": {"type": "array", "items": {"type": "object", "properties": {"ok": {"type": "boolean"}}}, "maxItems": 3},
      "any": {}}, "required": ["name", "age"]})");
  auto compiled = std::make_shared<CompiledGrammar>(grammar, vocabulary);
  std::mt19937 random(7);
  for (int walk = 0; walk < 40; ++walk) {
    GrammarMatcher matcher(compiled, {kEos});
    std::string text;
    for (int step = 0; step < 400 && !matcher.terminated(); ++step) {
      const std::vector<int32_t> allowed = matcher.AllowedTokenIds();
      ASSERT_FALSE(allowed.empty()) << text;
      if (walk < 4 && step < 30) {
        // The cached mask against the token-by-token scan.
        MatchState state = compiled->InitialState();
        state = *compiled->Advance(state, text);
        const TokenBitmask scan = compiled->NextTokenMaskByScan(state);
        std::vector<int32_t> scanned;
        for (int32_t id = 0; id < vocabulary->size(); ++id) {
          if (MaskHas(scan, id)) scanned.push_back(id);
        }
        if (state.can_end) scanned.push_back(kEos);
        ASSERT_EQ(allowed, scanned) << text;
      }
      // Prefer ending once the grammar allows it, so walks stay short.
      int32_t token = allowed[random() % allowed.size()];
      if (matcher.can_end() && random() % 2 == 0) token = kEos;
      ASSERT_TRUE(matcher.AcceptToken(token));
      if (token != kEos) text += vocabulary->bytes(token);
    }
    if (!matcher.terminated()) continue;  // a walk that ran long: nothing to parse
    const Json value = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded()) {
      // nlohmann refuses numbers beyond a double's range (valid JSON all the
      // same); anything else is a grammar bug.
      EXPECT_TRUE(std::regex_search(text, std::regex("[0-9][eE][-+]?[0-9]{3}|[0-9]{300}"))) << text;
      continue;
    }
    EXPECT_TRUE(value.contains("name") && value["name"].is_string()) << text;
    EXPECT_TRUE(value["age"].is_number_integer() && value["age"].get<int64_t>() >= 0 &&
                value["age"].get<int64_t>() <= 150)
        << text;
  }
}

}  // namespace
}  // namespace duet::grammar

namespace duet::grammar {
namespace {

using ::duet::api::testing::AssetsDir;

// Along a valid document tokenized by the real tokenizers, the cached masks
// equal the token-by-token scan, and every token of the document is allowed.
class RealVocabularyTest : public ::testing::TestWithParam<std::string> {};

TEST_P(RealVocabularyTest, MasksAlongADocumentEqualTheScan) {
  const std::string path = AssetsDir().string() + "/tokenizers/" + GetParam() + "/tokenizer.json";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no " << path;
  absl::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> tokenizer = tokenizer::Tokenizer::FromFile(path);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  auto vocabulary = TokenVocabulary::FromTokenizer(**tokenizer);
  const Grammar grammar = Schema(R"({"type": "object", "properties": {
      "city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 14},
      "unit": {"enum": ["celsius", "fahrenheit"]},
      "stops": {"type": "array", "items": {"type": "object", "properties": {
          "name": {"type": "string", "maxLength": 20}, "note": {"type": ["string", "null"]}}, "required": ["name"]}}},
      "required": ["city", "days"]})");
  auto compiled = std::make_shared<CompiledGrammar>(grammar, vocabulary);
  const std::string document =
      R"({"city": "Zürich \"old town\"", "days": 12, "unit": "celsius", "stops": [{"name": "Café 😀", "note": null}, {"name": "x"}]})";
  absl::StatusOr<std::vector<int32_t>> ids = (*tokenizer)->Encode(document, /*add_special_tokens=*/false);
  ASSERT_TRUE(ids.ok());
  const int32_t eos = vocabulary->size() + 1;
  GrammarMatcher matcher(compiled, {eos});
  MatchState state = compiled->InitialState();
  for (size_t i = 0; i <= ids->size(); ++i) {
    const std::vector<int32_t> allowed = matcher.AllowedTokenIds();
    // The scan costs a walk of the whole vocabulary: check every third step.
    if (i % 3 == 0 || i == ids->size()) {
      const TokenBitmask scan = compiled->NextTokenMaskByScan(state);
      std::vector<int32_t> scanned;
      for (int32_t id = 0; id < vocabulary->size(); ++id) {
        if (MaskHas(scan, id)) scanned.push_back(id);
      }
      if (state.can_end) scanned.push_back(eos);
      ASSERT_EQ(allowed, scanned) << "after " << i << " tokens";
    }
    if (i == ids->size()) {
      EXPECT_THAT(allowed, ::testing::ElementsAre(eos));
      break;
    }
    ASSERT_THAT(allowed, ::testing::Contains((*ids)[i])) << "token " << i;
    ASSERT_TRUE(matcher.AcceptToken((*ids)[i]));
    state = *compiled->Advance(state, vocabulary->bytes((*ids)[i]));
  }
  EXPECT_TRUE(matcher.AcceptToken(eos));
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, RealVocabularyTest, ::testing::Values("qwen3", "llama3"));

}  // namespace
}  // namespace duet::grammar
