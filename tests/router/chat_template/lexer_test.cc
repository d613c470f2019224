// Lexer: token kinds, string escapes, and the whitespace rules jinja2 applies
// with trim_blocks and lstrip_blocks.
#include "router/chat_template/lexer.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace duet::chat_template {
namespace {

std::vector<Token> Lex(const std::string& source, LexerOptions options = {}) {
  absl::StatusOr<std::vector<Token>> tokens = Tokenize(source, options);
  EXPECT_TRUE(tokens.ok()) << tokens.status();
  return tokens.ok() ? *tokens : std::vector<Token>{};
}

// Concatenated text tokens: what the template outputs around its tags.
std::string Text(const std::string& source, LexerOptions options = {}) {
  std::string text;
  for (const Token& token : Lex(source, options)) {
    if (token.type == TokenType::kText) text += token.text;
  }
  return text;
}

TEST(LexerTest, ExpressionTokens) {
  std::vector<Token> tokens = Lex("{{ a.b[0] // 2 ** -1.5e3 ~ 'x' != none }}");
  std::vector<TokenType> types;
  std::vector<std::string> texts;
  for (const Token& t : tokens) {
    types.push_back(t.type);
    texts.push_back(t.text);
  }
  const std::vector<TokenType> expected = {
      TokenType::kVariableBegin, TokenType::kName,     TokenType::kOperator, TokenType::kName,
      TokenType::kOperator,      TokenType::kInteger,  TokenType::kOperator, TokenType::kOperator,
      TokenType::kInteger,       TokenType::kOperator, TokenType::kOperator, TokenType::kFloat,
      TokenType::kOperator,      TokenType::kString,   TokenType::kOperator, TokenType::kName,
      TokenType::kVariableEnd,   TokenType::kEnd};
  EXPECT_EQ(types, expected);
  EXPECT_EQ(texts[7], "//");
  EXPECT_EQ(texts[9], "**");
  EXPECT_DOUBLE_EQ(tokens[11].float_value, 1500.0);
}

TEST(LexerTest, StringEscapes) {
  std::vector<Token> tokens = Lex(R"({{ 'a\n\t\\\'\"\x41\u00e9\U0001F30D\q' }})");
  ASSERT_GE(tokens.size(), 2u);
  EXPECT_EQ(tokens[1].text, "a\n\t\\'\"A\xC3\xA9\xF0\x9F\x8C\x8D\\q");
}

TEST(LexerTest, AttributeIntegersAreNotFloats) {
  std::vector<Token> tokens = Lex("{{ x.0.1 }}");
  ASSERT_EQ(tokens.size(), 8u);
  EXPECT_EQ(tokens[3].type, TokenType::kInteger);
  EXPECT_EQ(tokens[5].type, TokenType::kInteger);
}

TEST(LexerTest, DictBracesDoNotEndTheTag) {
  std::vector<Token> tokens = Lex("{{ {'a': {'b': 1}} }}x");
  EXPECT_EQ(tokens[tokens.size() - 3].type, TokenType::kVariableEnd);
  EXPECT_EQ(tokens[tokens.size() - 2].text, "x");
}

TEST(LexerTest, TrimBlocksDropsOneNewlineAfterBlockAndComment) {
  EXPECT_EQ(Text("{% if x %}\nA\n{% endif %}\n\nB"), "A\n\nB");
  EXPECT_EQ(Text("{# c #}\nA"), "A");
  EXPECT_EQ(Text("{{ x }}\nA"), "\nA");  // not after variable tags
  EXPECT_EQ(Text("{% if x +%}\nA"), "\nA");  // `+` keeps it
  EXPECT_EQ(Text("{% if x %}\nA", LexerOptions{false, true}), "\nA");
}

TEST(LexerTest, LstripBlocksRemovesIndentBeforeBlockTags) {
  EXPECT_EQ(Text("A\n    {% if x %}B"), "A\nB");
  EXPECT_EQ(Text("    {% if x %}B"), "B");              // at the start of the template
  EXPECT_EQ(Text("A\n    {{ x }}B"), "A\n    B");       // not before variable tags
  EXPECT_EQ(Text("A  {% if x %}B"), "A  B");            // only when alone on the line
  EXPECT_EQ(Text("A\n    {%+ if x %}B"), "A\n    B");   // `+` keeps it
  EXPECT_EQ(Text("A\n  {# c #}B"), "A\nB");
  EXPECT_EQ(Text("{{ x }}  {% if x %}B"), "  B");       // text after a tag on the same line
}

TEST(LexerTest, MinusStripsAllWhitespace) {
  EXPECT_EQ(Text("A \n\t {%- if x -%} \n\n B"), "AB");
  EXPECT_EQ(Text("A \n {{- x -}} \n B"), "AB");
  EXPECT_EQ(Text("A \n {#- c -#} \n B"), "AB");
}

TEST(LexerTest, NewlinesAreNormalizedAndOneTrailingNewlineDropped) {
  EXPECT_EQ(Text("a\r\nb\rc\n"), "a\nb\nc");
  EXPECT_EQ(Text("a\n\n"), "a\n");
}

TEST(LexerTest, RawBlocks) {
  EXPECT_EQ(Text("{% raw %}{{ x }}{% if %}{% endraw %}"), "{{ x }}{% if %}");
  EXPECT_EQ(Text("{%- raw -%}  a  {%- endraw -%}"), "a");
}

TEST(LexerTest, LineNumbers) {
  std::vector<Token> tokens = Lex("a\nb\n{{ x }}");
  EXPECT_EQ(tokens[1].type, TokenType::kVariableBegin);
  EXPECT_EQ(tokens[1].line, 3);
}

TEST(LexerTest, Errors) {
  for (const char* source : {"{{ x", "{% if", "{{ 'abc }}", "{{ x $ y }}", "{{ x ) }}", "{# x", "{% raw %}x",
                             "{{ '\\x4' }}"}) {
    EXPECT_FALSE(Tokenize(source, LexerOptions{}).ok()) << source;
  }
}

}  // namespace
}  // namespace duet::chat_template
