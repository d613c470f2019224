// A context-free grammar over Unicode code points, the one form every
// structured-output constraint (JSON Schema, regex, a list of choices) is
// compiled into before the matcher (grammar_matcher.h) runs it over the
// UTF-8 bytes of tokens.
//
// A grammar is a list of rules; rule 0 is the root. A rule is a list of
// alternatives, each a sequence of elements:
//   - a character class: exactly one code point from a set of ranges;
//   - a class star: zero or more code points from a set (kept as one element
//     so that "any string content" is a single matcher position);
//   - a reference to another rule.
// Left recursion is not allowed (Finalize rejects it); right recursion is how
// repetition is written, and the matcher runs a reference in the last place
// of an alternative without growing its stack.
//
// Thread-safety: built by one thread, then only read.
#ifndef DUET_ROUTER_GRAMMAR_GRAMMAR_H_
#define DUET_ROUTER_GRAMMAR_GRAMMAR_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace duet::grammar {

inline constexpr uint32_t kMaxCodepoint = 0x10FFFF;

// Inclusive range of code points.
struct CodepointRange {
  uint32_t first = 0;
  uint32_t last = 0;
};

// A set of code points: sorted, disjoint, non-adjacent ranges with the
// surrogates (U+D800..U+DFFF, which UTF-8 cannot carry) removed.
class CharClass {
 public:
  CharClass() = default;
  static CharClass Of(std::vector<CodepointRange> ranges);
  static CharClass Single(uint32_t codepoint) { return Of({{codepoint, codepoint}}); }
  static CharClass Any() { return Of({{0, kMaxCodepoint}}); }

  CharClass Complement() const;
  CharClass Union(const CharClass& other) const;
  CharClass Minus(const CharClass& other) const;

  bool Contains(uint32_t codepoint) const;
  // Whether some member lies in [first, last].
  bool Intersects(uint32_t first, uint32_t last) const;
  bool empty() const { return ranges_.empty(); }
  const std::vector<CodepointRange>& ranges() const { return ranges_; }
  bool operator==(const CharClass& other) const;

 private:
  std::vector<CodepointRange> ranges_;
};

enum class ElementKind : uint8_t {
  kClass,      // one code point of classes()[index]
  kClassStar,  // zero or more code points of classes()[index]
  kRule,       // rule `index`
  kEnd,        // end of an alternative (only in the flattened form)
};

struct Element {
  ElementKind kind = ElementKind::kEnd;
  int32_t index = 0;
};

using Sequence = std::vector<Element>;

class Grammar {
 public:
  Grammar();  // with rule 0, the root, and no alternatives yet

  // A new rule with no alternatives; `name` is for messages and dumps.
  int32_t AddRule(std::string name);
  void AddAlternative(int32_t rule, Sequence elements);
  // Deduplicated: equal classes share an index.
  int32_t AddClass(const CharClass& char_class);

  // Element helpers.
  Element ClassElement(const CharClass& char_class) { return {ElementKind::kClass, AddClass(char_class)}; }
  Element StarElement(const CharClass& char_class) { return {ElementKind::kClassStar, AddClass(char_class)}; }
  static Element RuleElement(int32_t rule) { return {ElementKind::kRule, rule}; }
  // The code points of UTF-8 `text`, one class each; invalid bytes are skipped.
  Sequence Literal(std::string_view text);

  // Rules for common shapes; each returns a new rule's id.
  // (elements)*: R -> elements R | ε.
  int32_t Star(const Sequence& elements, std::string name);
  // elements | ε.
  int32_t Optional(const Sequence& elements, std::string name);
  // Between min_count and max_count copies (max_count < 0: unbounded).
  // Needs on the order of max(min_count, max_count) elements.
  int32_t Repeat(const Sequence& elements, int64_t min_count, int64_t max_count, std::string name);
  // A rule whose alternatives are `alternatives`.
  int32_t Choice(std::vector<Sequence> alternatives, std::string name);

  // Checks that every rule has an alternative, references are in range, no
  // rule is left-recursive, and the grammar is within `max_elements`;
  // InvalidArgument otherwise (left recursion is a bug of the compiler that
  // made the grammar, not of the user, but it is reported the same way).
  absl::Status Finalize(int64_t max_elements = 1 << 20);

  int32_t num_rules() const { return static_cast<int32_t>(rules_.size()); }
  const std::vector<Sequence>& alternatives(int32_t rule) const { return rules_[rule].alternatives; }
  const std::string& rule_name(int32_t rule) const { return rules_[rule].name; }
  const std::vector<CharClass>& classes() const { return classes_; }
  int64_t num_elements() const;

  // Readable EBNF-like text, for tests and debugging.
  std::string ToString() const;

 private:
  struct Rule {
    std::string name;
    std::vector<Sequence> alternatives;
  };
  std::vector<Rule> rules_;
  std::vector<CharClass> classes_;
};

}  // namespace duet::grammar

#endif  // DUET_ROUTER_GRAMMAR_GRAMMAR_H_
