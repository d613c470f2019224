#include "router/chat_template/lexer.h"

#include <cerrno>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/str_cat.h"
#include "router/chat_template/unicode_text.h"

namespace duet::chat_template {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || IsDigit(c); }
bool IsAsciiSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// jinja2 joins the source's lines with "\n" and drops one trailing newline.
std::string NormalizeNewlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Length of the Python whitespace code point at text[i], or 0.
size_t WhitespaceAt(std::string_view text, size_t i) {
  std::vector<size_t> offsets = CodePointOffsets(text.substr(i, 4));
  if (offsets.size() < 2) return 0;
  std::vector<char32_t> points = DecodeUtf8(text.substr(i, offsets[1]));
  return (!points.empty() && IsPyWhitespace(points[0])) ? offsets[1] : 0;
}

std::string RStripWhitespace(std::string_view text) {
  return PyStrip(text, nullptr, StripSide::kRight);
}

bool AllWhitespace(std::string_view text) {
  if (text.empty()) return false;
  for (char32_t c : DecodeUtf8(text)) {
    if (!IsPyWhitespace(c)) return false;
  }
  return true;
}

class Lexer {
 public:
  Lexer(std::string source, const LexerOptions& options)
      : source_(std::move(source)), options_(options) {}

  absl::StatusOr<std::vector<Token>> Run() {
    while (pos_ < source_.size()) {
      size_t tag = FindTagStart(pos_);
      if (tag == std::string::npos) {
        EmitText(source_.substr(pos_));
        pos_ = source_.size();
        break;
      }
      const char kind = source_[tag + 1];
      const char sign = (tag + 2 < source_.size() && (source_[tag + 2] == '-' || source_[tag + 2] == '+'))
                            ? source_[tag + 2]
                            : '\0';
      std::string text = source_.substr(pos_, tag - pos_);
      text = ApplyLeadingControl(std::move(text), kind != '{', sign);
      EmitText(text);
      AdvanceTo(tag);
      absl::Status status;
      if (kind == '#') {
        status = LexComment();
      } else if (kind == '%' && IsRawBegin(tag)) {
        status = LexRaw();
      } else {
        status = LexTag(kind == '{');
      }
      if (!status.ok()) return status;
    }
    tokens_.push_back(Token{TokenType::kEnd, "", 0, 0.0, line_});
    return std::move(tokens_);
  }

 private:
  size_t FindTagStart(size_t from) const {
    for (size_t i = from; i + 1 < source_.size(); ++i) {
      if (source_[i] == '{' && (source_[i + 1] == '{' || source_[i + 1] == '%' || source_[i + 1] == '#')) {
        return i;
      }
    }
    return std::string::npos;
  }

  // `-` strips all whitespace before the tag; lstrip_blocks strips the
  // spaces before a block/comment tag that only has whitespace before it on
  // its line.
  std::string ApplyLeadingControl(std::string text, bool is_block_or_comment, char sign) const {
    if (sign == '-') return RStripWhitespace(text);
    if (sign == '+' || !options_.lstrip_blocks || !is_block_or_comment) return text;
    size_t line_start = text.rfind('\n');
    line_start = (line_start == std::string::npos) ? 0 : line_start + 1;
    if ((line_start > 0 || line_starting_) && AllWhitespace(std::string_view(text).substr(line_start))) {
      text.resize(line_start);
    }
    return text;
  }

  void EmitText(const std::string& text) {
    if (text.empty()) return;
    tokens_.push_back(Token{TokenType::kText, text, 0, 0.0, line_});
  }

  void AdvanceTo(size_t new_pos) {
    for (size_t i = pos_; i < new_pos; ++i) {
      if (source_[i] == '\n') ++line_;
    }
    if (new_pos > pos_) line_starting_ = source_[new_pos - 1] == '\n';
    pos_ = new_pos;
  }

  // After a closing tag: `-` eats all following whitespace; otherwise with
  // trim_blocks (block/comment tags, no `+`) one newline goes.
  void ApplyTrailingControl(char sign, bool trims_newline) {
    size_t end = pos_;
    if (sign == '-') {
      while (end < source_.size()) {
        size_t width = WhitespaceAt(source_, end);
        if (width == 0) break;
        end += width;
      }
    } else if (sign != '+' && trims_newline && options_.trim_blocks && end < source_.size() &&
               source_[end] == '\n') {
      ++end;
    }
    AdvanceTo(end);
  }

  absl::Status LexComment() {
    size_t content_start = pos_ + 2;
    if (content_start < source_.size() && (source_[content_start] == '-' || source_[content_start] == '+')) {
      ++content_start;
    }
    size_t end = source_.find("#}", content_start);
    if (end == std::string::npos) return Error("missing end of comment tag '#}'");
    char sign = '\0';
    if (end > content_start && (source_[end - 1] == '-' || source_[end - 1] == '+')) sign = source_[end - 1];
    AdvanceTo(end + 2);
    ApplyTrailingControl(sign, /*trims_newline=*/true);
    return absl::OkStatus();
  }

  // Matches `{%[-+]?\s*<word>\s*[-+]?%}` at `at`; on success sets the end
  // offset and the closing sign.
  bool MatchSimpleTag(size_t at, std::string_view word, size_t* end, char* close_sign) const {
    size_t i = at + 2;
    if (i < source_.size() && (source_[i] == '-' || source_[i] == '+')) ++i;
    while (i < source_.size() && IsAsciiSpace(source_[i])) ++i;
    if (source_.compare(i, word.size(), word) != 0) return false;
    i += word.size();
    while (i < source_.size() && IsAsciiSpace(source_[i])) ++i;
    *close_sign = '\0';
    if (i < source_.size() && (source_[i] == '-' || source_[i] == '+')) *close_sign = source_[i++];
    if (source_.compare(i, 2, "%}") != 0) return false;
    *end = i + 2;
    return true;
  }

  bool IsRawBegin(size_t at) const {
    size_t end;
    char sign;
    return MatchSimpleTag(at, "raw", &end, &sign);
  }

  absl::Status LexRaw() {
    size_t end;
    char sign;
    MatchSimpleTag(pos_, "raw", &end, &sign);
    AdvanceTo(end);
    ApplyTrailingControl(sign, /*trims_newline=*/true);
    for (size_t i = FindTagStart(pos_); i != std::string::npos; i = FindTagStart(i + 1)) {
      size_t raw_end;
      char close_sign;
      if (source_[i + 1] != '%' || !MatchSimpleTag(i, "endraw", &raw_end, &close_sign)) continue;
      const char open_sign = (source_[i + 2] == '-' || source_[i + 2] == '+') ? source_[i + 2] : '\0';
      std::string text = ApplyLeadingControl(source_.substr(pos_, i - pos_), true, open_sign);
      EmitText(text);
      AdvanceTo(raw_end);
      ApplyTrailingControl(close_sign, /*trims_newline=*/true);
      return absl::OkStatus();
    }
    return Error("missing end of raw directive");
  }

  absl::Status LexTag(bool is_variable) {
    tokens_.push_back(Token{is_variable ? TokenType::kVariableBegin : TokenType::kBlockBegin, "", 0, 0.0, line_});
    size_t i = pos_ + 2;
    if (i < source_.size() && (source_[i] == '-' || (!is_variable && source_[i] == '+'))) ++i;
    AdvanceTo(i);
    std::vector<char> brackets;
    const char closer = is_variable ? '}' : '%';
    while (true) {
      while (pos_ < source_.size() && IsAsciiSpace(source_[pos_])) AdvanceTo(pos_ + 1);
      if (pos_ >= source_.size()) {
        return Error(is_variable ? "unexpected end of template, expected '}}'"
                                 : "unexpected end of template, expected '%}'");
      }
      if (brackets.empty()) {
        char sign = '\0';
        size_t at = pos_;
        if ((source_[at] == '-' || (!is_variable && source_[at] == '+')) && at + 1 < source_.size()) {
          sign = source_[at];
          ++at;
        }
        if (source_.compare(at, 2, std::string{closer, '}'}) == 0) {
          tokens_.push_back(Token{is_variable ? TokenType::kVariableEnd : TokenType::kBlockEnd, "", 0, 0.0, line_});
          AdvanceTo(at + 2);
          ApplyTrailingControl(sign, /*trims_newline=*/!is_variable);
          return absl::OkStatus();
        }
      }
      absl::Status status = LexExpressionToken(&brackets);
      if (!status.ok()) return status;
    }
  }

  absl::Status LexExpressionToken(std::vector<char>* brackets) {
    const char c = source_[pos_];
    const bool after_dot = pos_ > 0 && source_[pos_ - 1] == '.';
    if (IsDigit(c)) return LexNumber(after_dot);
    if (IsNameStart(c)) {
      size_t end = pos_;
      while (end < source_.size() && IsNameChar(source_[end])) ++end;
      tokens_.push_back(Token{TokenType::kName, source_.substr(pos_, end - pos_), 0, 0.0, line_});
      AdvanceTo(end);
      return absl::OkStatus();
    }
    if (c == '\'' || c == '"') return LexString();
    static constexpr std::string_view kTwoChar[] = {"//", "**", "==", "!=", "<=", ">="};
    for (std::string_view op : kTwoChar) {
      if (source_.compare(pos_, 2, op) == 0) {
        tokens_.push_back(Token{TokenType::kOperator, std::string(op), 0, 0.0, line_});
        AdvanceTo(pos_ + 2);
        return absl::OkStatus();
      }
    }
    static constexpr std::string_view kOneChar = "+-/*%~[](){}<>=.:|,;";
    if (kOneChar.find(c) == std::string_view::npos) {
      return Error(StrCat("unexpected character '", std::string(1, c), "'"));
    }
    if (c == '(' || c == '[' || c == '{') {
      brackets->push_back(c);
    } else if (c == ')' || c == ']' || c == '}') {
      const char expected = c == ')' ? '(' : (c == ']' ? '[' : '{');
      if (brackets->empty()) return Error(StrCat("unexpected '", std::string(1, c), "'"));
      if (brackets->back() != expected) return Error(StrCat("unexpected '", std::string(1, c), "'"));
      brackets->pop_back();
    }
    tokens_.push_back(Token{TokenType::kOperator, std::string(1, c), 0, 0.0, line_});
    AdvanceTo(pos_ + 1);
    return absl::OkStatus();
  }

  // Digit runs may contain single underscores between digits ("1_000").
  size_t ScanDigits(size_t i) const {
    if (i >= source_.size() || !IsDigit(source_[i])) return i;
    while (i < source_.size() && IsDigit(source_[i])) {
      ++i;
      if (i + 1 < source_.size() && source_[i] == '_' && IsDigit(source_[i + 1])) ++i;
    }
    return i;
  }

  absl::Status LexNumber(bool after_dot) {
    size_t end = ScanDigits(pos_);
    bool is_float = false;
    if (!after_dot) {
      size_t fraction_end = end;
      if (end + 1 < source_.size() && source_[end] == '.' && IsDigit(source_[end + 1])) {
        fraction_end = ScanDigits(end + 1);
      }
      size_t exponent_end = fraction_end;
      if (fraction_end < source_.size() && (source_[fraction_end] == 'e' || source_[fraction_end] == 'E')) {
        size_t k = fraction_end + 1;
        if (k < source_.size() && (source_[k] == '+' || source_[k] == '-')) ++k;
        if (k < source_.size() && IsDigit(source_[k])) exponent_end = ScanDigits(k);
      }
      is_float = exponent_end != end;
      end = exponent_end;
    }
    std::string digits;
    for (size_t i = pos_; i < end; ++i) {
      if (source_[i] != '_') digits.push_back(source_[i]);
    }
    Token token{is_float ? TokenType::kFloat : TokenType::kInteger, digits, 0, 0.0, line_};
    errno = 0;
    if (is_float) {
      token.float_value = std::strtod(digits.c_str(), nullptr);
    } else {
      token.int_value = std::strtoll(digits.c_str(), nullptr, 10);
      if (errno == ERANGE) return Error(StrCat("integer literal too large: ", digits));
    }
    tokens_.push_back(std::move(token));
    AdvanceTo(end);
    return absl::OkStatus();
  }

  static int HexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // Python string-literal escapes, as jinja2 decodes them.
  absl::Status LexString() {
    const char quote = source_[pos_];
    std::string value;
    size_t i = pos_ + 1;
    while (true) {
      if (i >= source_.size()) return Error("unterminated string literal");
      char c = source_[i];
      if (c == quote) break;
      if (c != '\\') {
        value.push_back(c);
        ++i;
        continue;
      }
      if (i + 1 >= source_.size()) return Error("unterminated string literal");
      char e = source_[i + 1];
      i += 2;
      switch (e) {
        case '\n': break;
        case '\\': value.push_back('\\'); break;
        case '\'': value.push_back('\''); break;
        case '"': value.push_back('"'); break;
        case 'a': value.push_back('\a'); break;
        case 'b': value.push_back('\b'); break;
        case 'f': value.push_back('\f'); break;
        case 'n': value.push_back('\n'); break;
        case 'r': value.push_back('\r'); break;
        case 't': value.push_back('\t'); break;
        case 'v': value.push_back('\v'); break;
        case 'x': case 'u': case 'U': {
          const int width = e == 'x' ? 2 : (e == 'u' ? 4 : 8);
          char32_t code = 0;
          for (int k = 0; k < width; ++k) {
            int digit = i + k < source_.size() ? HexValue(source_[i + k]) : -1;
            if (digit < 0) return Error(StrCat("truncated \\", std::string(1, e), " escape in string literal"));
            code = code * 16 + static_cast<char32_t>(digit);
          }
          if (code > 0x10FFFF) return Error("illegal Unicode character in string literal");
          i += width;
          AppendUtf8(code, &value);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            char32_t code = static_cast<char32_t>(e - '0');
            for (int k = 0; k < 2 && i < source_.size() && source_[i] >= '0' && source_[i] <= '7'; ++k, ++i) {
              code = code * 8 + static_cast<char32_t>(source_[i] - '0');
            }
            AppendUtf8(code, &value);
          } else {
            value.push_back('\\');  // Python keeps unknown escapes as written
            value.push_back(e);
          }
      }
    }
    tokens_.push_back(Token{TokenType::kString, std::move(value), 0, 0.0, line_});
    AdvanceTo(i + 1);
    return absl::OkStatus();
  }

  absl::Status Error(std::string_view message) const {
    return absl::InvalidArgumentError(
        StrCat("chat template syntax error at line ", line_, ": ", message));
  }

  std::string source_;
  const LexerOptions& options_;
  size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

}  // namespace

absl::StatusOr<std::vector<Token>> Tokenize(std::string_view source, const LexerOptions& options) {
  Lexer lexer(NormalizeNewlines(source), options);
  return lexer.Run();
}

}  // namespace duet::chat_template
