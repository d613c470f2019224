#include "router/grammar/regex_grammar.h"

#include <optional>
#include <string>
#include <vector>

#include "common/str_cat.h"
#include "common/utf8.h"

namespace duet::grammar {
namespace {

constexpr int64_t kMaxRepeat = 10000;

CharClass Digits() { return CharClass::Of({{'0', '9'}}); }
CharClass WordChars() { return CharClass::Of({{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}); }
CharClass Spaces() { return CharClass::Of({{'\t', '\r'}, {' ', ' '}}); }

// One parsed atom: a single character class (so that `*` can stay one
// element) or any sequence.
struct Atom {
  std::optional<CharClass> char_class;
  Sequence elements;
};

class RegexCompiler {
 public:
  RegexCompiler(std::string_view pattern, bool json_string, Grammar* grammar)
      : pattern_(pattern), json_string_(json_string), grammar_(grammar) {}

  absl::StatusOr<Sequence> Compile() {
    std::string_view body = pattern_;
    if (!body.empty() && body.front() == '^') body.remove_prefix(1);
    if (!body.empty() && body.back() == '$' && !EndsInEscape(body)) body.remove_suffix(1);
    text_ = body;
    absl::StatusOr<Sequence> out = ParseAlternation();
    if (!out.ok()) return out.status();
    if (pos_ < text_.size()) return Error("an unmatched ')'");
    return out;
  }

 private:
  static bool EndsInEscape(std::string_view body) {
    size_t backslashes = 0;
    for (size_t i = body.size() - 1; i > 0 && body[i - 1] == '\\'; --i) ++backslashes;
    return backslashes % 2 == 1;
  }

  absl::Status Error(std::string_view what) const {
    return absl::InvalidArgumentError(StrCat("regex: ", what, " (at offset ", pos_, ")"));
  }
  absl::Status Unsupported(std::string_view what) const {
    return absl::InvalidArgumentError(StrCat("regex: ", what, " is not supported (at offset ", pos_, ")"));
  }

  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return text_[pos_]; }

  // The next code point (invalid UTF-8: the byte itself).
  uint32_t NextCodepoint() {
    const size_t length = ValidSequenceLength(text_, pos_);
    if (length == 0) return static_cast<uint8_t>(text_[pos_++]);
    const uint32_t codepoint = DecodeValidSequence(text_, pos_, length);
    pos_ += length;
    return codepoint;
  }

  absl::StatusOr<Sequence> ParseAlternation() {
    std::vector<Sequence> branches;
    while (true) {
      absl::StatusOr<Sequence> branch = ParseConcatenation();
      if (!branch.ok()) return branch.status();
      branches.push_back(std::move(*branch));
      if (AtEnd() || Peek() != '|') break;
      ++pos_;
    }
    if (branches.size() == 1) return std::move(branches[0]);
    return Sequence{Grammar::RuleElement(grammar_->Choice(std::move(branches), "regex|"))};
  }

  absl::StatusOr<Sequence> ParseConcatenation() {
    Sequence out;
    while (!AtEnd() && Peek() != '|' && Peek() != ')') {
      absl::StatusOr<Atom> atom = ParseAtom();
      if (!atom.ok()) return atom.status();
      absl::StatusOr<Sequence> quantified = ParseQuantifier(std::move(*atom));
      if (!quantified.ok()) return quantified.status();
      out.insert(out.end(), quantified->begin(), quantified->end());
    }
    return out;
  }

  // Parses {n}, {n,} or {n,m} at pos_ (on the '{'); nullopt when the text
  // there is not a quantifier (then '{' is a literal, as in Python).
  std::optional<std::pair<int64_t, int64_t>> ParseBraces() {
    size_t at = pos_ + 1;
    auto number = [&](int64_t* value) {
      const size_t start = at;
      *value = 0;
      while (at < text_.size() && text_[at] >= '0' && text_[at] <= '9' && *value <= kMaxRepeat) {
        *value = *value * 10 + (text_[at++] - '0');
      }
      return at > start;
    };
    int64_t min_count = 0;
    int64_t max_count = 0;
    if (!number(&min_count)) return std::nullopt;
    if (at < text_.size() && text_[at] == '}') {
      pos_ = at + 1;
      return std::make_pair(min_count, min_count);
    }
    if (at >= text_.size() || text_[at] != ',') return std::nullopt;
    ++at;
    if (!number(&max_count)) max_count = -1;
    if (at >= text_.size() || text_[at] != '}') return std::nullopt;
    pos_ = at + 1;
    return std::make_pair(min_count, max_count);
  }

  absl::StatusOr<Sequence> ParseQuantifier(Atom atom) {
    if (AtEnd()) return ToSequence(atom);
    int64_t min_count = 0;
    int64_t max_count = 0;
    const char c = Peek();
    if (c == '*') {
      ++pos_, min_count = 0, max_count = -1;
    } else if (c == '+') {
      ++pos_, min_count = 1, max_count = -1;
    } else if (c == '?') {
      ++pos_, min_count = 0, max_count = 1;
    } else if (c == '{') {
      std::optional<std::pair<int64_t, int64_t>> braces = ParseBraces();
      if (!braces) return ToSequence(atom);
      min_count = braces->first;
      max_count = braces->second;
      if (min_count > kMaxRepeat || max_count > kMaxRepeat) return Unsupported("a repeat count over 10000");
      if (max_count >= 0 && max_count < min_count) return Error("a repeat {n,m} with m < n");
    } else {
      return ToSequence(atom);
    }
    if (!AtEnd() && Peek() == '?') ++pos_;  // lazy: the same strings
    if (!AtEnd() && Peek() == '+') return Unsupported("a possessive quantifier");
    if (!AtEnd() && (Peek() == '*' || (Peek() == '{' && ParseBracesAhead()))) return Error("a repeated quantifier");
    // [class]* stays one element when it needs no escapes.
    if (atom.char_class && min_count == 0 && max_count < 0) {
      std::optional<CharClass> plain = PlainClass(*atom.char_class);
      if (plain) return Sequence{grammar_->StarElement(*plain)};
    }
    const Sequence elements = ToSequence(atom);
    if (elements.empty()) return Sequence{};
    if (min_count == 1 && max_count < 0 && atom.char_class) {
      std::optional<CharClass> plain = PlainClass(*atom.char_class);
      if (plain) return Sequence{grammar_->ClassElement(*plain), grammar_->StarElement(*plain)};
    }
    return Sequence{Grammar::RuleElement(grammar_->Repeat(elements, min_count, max_count, "regex{}"))};
  }

  bool ParseBracesAhead() {
    const size_t saved = pos_;
    const bool is_quantifier = ParseBraces().has_value();
    pos_ = saved;
    return is_quantifier;
  }

  // The class as one element, when no member needs escaping in JSON.
  std::optional<CharClass> PlainClass(const CharClass& char_class) const {
    if (!json_string_) return char_class;
    if (char_class.Intersects(0, 0x1F) || char_class.Contains('"') || char_class.Contains('\\')) return std::nullopt;
    return char_class;
  }

  Sequence ToSequence(const Atom& atom) {
    if (!atom.char_class) return atom.elements;
    const CharClass& char_class = *atom.char_class;
    if (std::optional<CharClass> plain = PlainClass(char_class)) return {grammar_->ClassElement(*plain)};
    // In a JSON string: the plain members as themselves, the rest escaped.
    std::vector<Sequence> alternatives;
    const CharClass special = CharClass::Of({{0, 0x1F}, {'"', '"'}, {'\\', '\\'}});
    const CharClass plain = char_class.Minus(special);
    if (!plain.empty()) alternatives.push_back({grammar_->ClassElement(plain)});
    if (char_class.Contains('"')) alternatives.push_back(grammar_->Literal("\\\""));
    if (char_class.Contains('\\')) alternatives.push_back(grammar_->Literal("\\\\"));
    for (uint32_t c = 0; c < 0x20; ++c) {
      if (!char_class.Contains(c)) continue;
      std::string escaped;
      switch (c) {
        case '\b': escaped = "\\b"; break;
        case '\f': escaped = "\\f"; break;
        case '\n': escaped = "\\n"; break;
        case '\r': escaped = "\\r"; break;
        case '\t': escaped = "\\t"; break;
        default: {
          char buffer[8];
          snprintf(buffer, sizeof(buffer), "\\u%04x", c);
          escaped = buffer;
        }
      }
      alternatives.push_back(grammar_->Literal(escaped));
    }
    if (alternatives.size() == 1) return alternatives[0];
    return {Grammar::RuleElement(grammar_->Choice(std::move(alternatives), "json-char"))};
  }

  absl::StatusOr<Atom> ParseAtom() {
    const char c = Peek();
    Atom atom;
    if (c == '(') {
      ++pos_;
      if (!AtEnd() && Peek() == '?') {
        ++pos_;
        if (!AtEnd() && Peek() == ':') {
          ++pos_;
        } else if (text_.substr(pos_, 2) == "P<" || (!AtEnd() && Peek() == '<' && text_.substr(pos_, 2) != "<=" &&
                                                     text_.substr(pos_, 2) != "<!")) {
          const size_t close = text_.find('>', pos_);
          if (close == std::string_view::npos) return Error("an unterminated group name");
          pos_ = close + 1;
        } else if (!AtEnd() && (Peek() == '=' || Peek() == '!' || Peek() == '<')) {
          return Unsupported("lookaround");
        } else {
          return Unsupported("an inline flag or extension group");
        }
      }
      absl::StatusOr<Sequence> inner = ParseAlternation();
      if (!inner.ok()) return inner.status();
      if (AtEnd() || Peek() != ')') return Error("an unterminated group");
      ++pos_;
      atom.elements = std::move(*inner);
      return atom;
    }
    if (c == '[') return ParseClass();
    if (c == '.') {
      ++pos_;
      atom.char_class = CharClass::Single('\n').Complement();
      return atom;
    }
    if (c == '*' || c == '+' || c == '?') return Error("nothing to repeat");
    if (c == '{' && ParseBracesAhead()) return Error("nothing to repeat");
    if (c == '^' || c == '$') return Unsupported("an anchor inside the pattern");
    if (c == '\\') {
      absl::StatusOr<CharClass> escaped = ParseEscape(/*in_class=*/false);
      if (!escaped.ok()) return escaped.status();
      atom.char_class = *escaped;
      return atom;
    }
    atom.char_class = CharClass::Single(NextCodepoint());
    return atom;
  }

  // After a backslash (pos_ on it): the class the escape stands for.
  absl::StatusOr<CharClass> ParseEscape(bool in_class) {
    ++pos_;
    if (AtEnd()) return Error("a trailing backslash");
    const char c = Peek();
    ++pos_;
    switch (c) {
      case 'd': return Digits();
      case 'D': return Digits().Complement();
      case 'w': return WordChars();
      case 'W': return WordChars().Complement();
      case 's': return Spaces();
      case 'S': return Spaces().Complement();
      case 'n': return CharClass::Single('\n');
      case 't': return CharClass::Single('\t');
      case 'r': return CharClass::Single('\r');
      case 'f': return CharClass::Single('\f');
      case 'v': return CharClass::Single('\v');
      case '0': return CharClass::Single(0);
      case 'x':
      case 'u': {
        const size_t digits = c == 'x' ? 2 : 4;
        if (pos_ + digits > text_.size()) return Error("a short \\x or \\u escape");
        uint32_t value = 0;
        for (size_t i = 0; i < digits; ++i) {
          const char h = text_[pos_ + i];
          const int digit = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                            : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
          if (digit < 0) return Error("a bad hex digit in an escape");
          value = value * 16 + digit;
        }
        pos_ += digits;
        if (value >= 0xD800 && value <= 0xDFFF) return Unsupported("a surrogate escape");
        return CharClass::Single(value);
      }
      case 'b':
        if (in_class) return CharClass::Single('\b');
        return Unsupported("a word boundary (\\b)");
      case 'B': return Unsupported("a word boundary (\\B)");
      default:
        break;
    }
    if (c >= '1' && c <= '9') return Unsupported("a backreference");
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      return Unsupported(StrCat("the escape \\", std::string(1, c)));
    }
    --pos_;
    return CharClass::Single(NextCodepoint());
  }

  absl::StatusOr<Atom> ParseClass() {
    ++pos_;  // '['
    bool negated = false;
    if (!AtEnd() && Peek() == '^') {
      negated = true;
      ++pos_;
    }
    std::vector<CodepointRange> ranges;
    CharClass members;
    bool first = true;
    while (true) {
      if (AtEnd()) return Error("an unterminated character class");
      if (Peek() == ']' && !first) {
        ++pos_;
        break;
      }
      first = false;
      if (text_.substr(pos_, 2) == "[:") return Unsupported("a POSIX character class");
      // One member: an escape (maybe a whole class) or a character.
      std::optional<uint32_t> low;
      if (Peek() == '\\') {
        absl::StatusOr<CharClass> escaped = ParseEscape(/*in_class=*/true);
        if (!escaped.ok()) return escaped.status();
        const auto& rs = escaped->ranges();
        if (rs.size() == 1 && rs[0].first == rs[0].last) {
          low = rs[0].first;
        } else {
          members = members.Union(*escaped);
          continue;
        }
      } else {
        low = NextCodepoint();
      }
      // A range low-high ('-' before ']' is a literal).
      if (pos_ + 1 < text_.size() && Peek() == '-' && text_[pos_ + 1] != ']') {
        ++pos_;
        uint32_t high = 0;
        if (Peek() == '\\') {
          absl::StatusOr<CharClass> escaped = ParseEscape(/*in_class=*/true);
          if (!escaped.ok()) return escaped.status();
          const auto& rs = escaped->ranges();
          if (rs.size() != 1 || rs[0].first != rs[0].last) return Error("a range ending in a class");
          high = rs[0].first;
        } else {
          high = NextCodepoint();
        }
        if (high < *low) return Error("a range out of order");
        ranges.push_back({*low, high});
      } else {
        ranges.push_back({*low, *low});
      }
    }
    CharClass char_class = CharClass::Of(std::move(ranges)).Union(members);
    if (negated) char_class = char_class.Complement();
    if (char_class.empty()) return Error("a character class that matches nothing");
    Atom atom;
    atom.char_class = std::move(char_class);
    return atom;
  }

  std::string_view pattern_;
  std::string_view text_;
  size_t pos_ = 0;
  const bool json_string_;
  Grammar* grammar_;
};

}  // namespace

absl::StatusOr<Sequence> CompileRegex(std::string_view pattern, bool json_string, Grammar* grammar) {
  return RegexCompiler(pattern, json_string, grammar).Compile();
}

absl::StatusOr<Grammar> RegexGrammar(std::string_view pattern) {
  Grammar grammar;
  absl::StatusOr<Sequence> elements = CompileRegex(pattern, /*json_string=*/false, &grammar);
  if (!elements.ok()) return elements.status();
  grammar.AddAlternative(0, std::move(*elements));
  absl::Status finalized = grammar.Finalize();
  if (!finalized.ok()) return finalized;
  return grammar;
}

}  // namespace duet::grammar
