#include "router/grammar/grammar.h"

#include <algorithm>
#include <functional>

#include "common/str_cat.h"
#include "common/utf8.h"

namespace duet::grammar {
namespace {

constexpr uint32_t kSurrogateFirst = 0xD800;
constexpr uint32_t kSurrogateLast = 0xDFFF;

std::string CodepointText(uint32_t codepoint) {
  if (codepoint >= 0x21 && codepoint <= 0x7E && codepoint != '\\' && codepoint != ']' && codepoint != '-' &&
      codepoint != '[' && codepoint != '^') {
    return std::string(1, static_cast<char>(codepoint));
  }
  char buffer[16];
  snprintf(buffer, sizeof(buffer), "\\u{%X}", codepoint);
  return buffer;
}

}  // namespace

CharClass CharClass::Of(std::vector<CodepointRange> ranges) {
  std::vector<CodepointRange> split;
  for (CodepointRange range : ranges) {
    if (range.first > range.last) continue;
    range.last = std::min(range.last, kMaxCodepoint);
    if (range.first > kMaxCodepoint) continue;
    if (range.first < kSurrogateFirst && range.last >= kSurrogateFirst) {
      split.push_back({range.first, kSurrogateFirst - 1});
      if (range.last > kSurrogateLast) split.push_back({kSurrogateLast + 1, range.last});
    } else if (range.first >= kSurrogateFirst && range.first <= kSurrogateLast) {
      if (range.last > kSurrogateLast) split.push_back({kSurrogateLast + 1, range.last});
    } else {
      split.push_back(range);
    }
  }
  std::sort(split.begin(), split.end(),
            [](const CodepointRange& a, const CodepointRange& b) { return a.first < b.first; });
  CharClass out;
  for (const CodepointRange& range : split) {
    if (!out.ranges_.empty() && range.first <= out.ranges_.back().last + 1) {
      out.ranges_.back().last = std::max(out.ranges_.back().last, range.last);
    } else {
      out.ranges_.push_back(range);
    }
  }
  return out;
}

CharClass CharClass::Complement() const {
  std::vector<CodepointRange> out;
  uint32_t next = 0;
  for (const CodepointRange& range : ranges_) {
    if (range.first > next) out.push_back({next, range.first - 1});
    next = range.last + 1;
  }
  if (next <= kMaxCodepoint) out.push_back({next, kMaxCodepoint});
  return Of(std::move(out));
}

CharClass CharClass::Union(const CharClass& other) const {
  std::vector<CodepointRange> all = ranges_;
  all.insert(all.end(), other.ranges_.begin(), other.ranges_.end());
  return Of(std::move(all));
}

CharClass CharClass::Minus(const CharClass& other) const {
  return Complement().Union(other).Complement();
}

bool CharClass::Contains(uint32_t codepoint) const { return Intersects(codepoint, codepoint); }

bool CharClass::Intersects(uint32_t first, uint32_t last) const {
  if (first > last) return false;
  // The first range that ends at or after `first`.
  auto it = std::lower_bound(ranges_.begin(), ranges_.end(), first,
                             [](const CodepointRange& range, uint32_t value) { return range.last < value; });
  return it != ranges_.end() && it->first <= last;
}

bool CharClass::operator==(const CharClass& other) const {
  if (ranges_.size() != other.ranges_.size()) return false;
  for (size_t i = 0; i < ranges_.size(); ++i) {
    if (ranges_[i].first != other.ranges_[i].first || ranges_[i].last != other.ranges_[i].last) return false;
  }
  return true;
}

Grammar::Grammar() { rules_.push_back({"root", {}}); }

int32_t Grammar::AddRule(std::string name) {
  rules_.push_back({std::move(name), {}});
  return static_cast<int32_t>(rules_.size()) - 1;
}

void Grammar::AddAlternative(int32_t rule, Sequence elements) {
  rules_[rule].alternatives.push_back(std::move(elements));
}

int32_t Grammar::AddClass(const CharClass& char_class) {
  for (size_t i = 0; i < classes_.size(); ++i) {
    if (classes_[i] == char_class) return static_cast<int32_t>(i);
  }
  classes_.push_back(char_class);
  return static_cast<int32_t>(classes_.size()) - 1;
}

Sequence Grammar::Literal(std::string_view text) {
  Sequence out;
  size_t offset = 0;
  while (offset < text.size()) {
    const size_t length = ValidSequenceLength(text, offset);
    if (length == 0) {
      ++offset;
      continue;
    }
    out.push_back(ClassElement(CharClass::Single(DecodeValidSequence(text, offset, length))));
    offset += length;
  }
  return out;
}

int32_t Grammar::Star(const Sequence& elements, std::string name) {
  const int32_t rule = AddRule(std::move(name));
  Sequence again = elements;
  again.push_back(RuleElement(rule));
  AddAlternative(rule, std::move(again));
  AddAlternative(rule, {});
  return rule;
}

int32_t Grammar::Optional(const Sequence& elements, std::string name) {
  const int32_t rule = AddRule(std::move(name));
  AddAlternative(rule, elements);
  AddAlternative(rule, {});
  return rule;
}

int32_t Grammar::Repeat(const Sequence& elements, int64_t min_count, int64_t max_count, std::string name) {
  // Tail: what may follow the required copies.
  Sequence tail;
  if (max_count < 0) {
    tail.push_back(RuleElement(Star(elements, name + "*")));
  } else if (max_count > min_count) {
    // O_1 = elements | ε;  O_k = elements O_{k-1} | ε.
    int32_t optional = Optional(elements, name + "?");
    for (int64_t k = 2; k <= max_count - min_count; ++k) {
      const int32_t rule = AddRule(name + "?");
      Sequence more = elements;
      more.push_back(RuleElement(optional));
      AddAlternative(rule, std::move(more));
      AddAlternative(rule, {});
      optional = rule;
    }
    tail.push_back(RuleElement(optional));
  }
  const int32_t rule = AddRule(std::move(name));
  Sequence body;
  for (int64_t i = 0; i < min_count; ++i) body.insert(body.end(), elements.begin(), elements.end());
  body.insert(body.end(), tail.begin(), tail.end());
  AddAlternative(rule, std::move(body));
  return rule;
}

int32_t Grammar::Choice(std::vector<Sequence> alternatives, std::string name) {
  const int32_t rule = AddRule(std::move(name));
  for (Sequence& alternative : alternatives) AddAlternative(rule, std::move(alternative));
  return rule;
}

int64_t Grammar::num_elements() const {
  int64_t total = 0;
  for (const Rule& rule : rules_) {
    for (const Sequence& alternative : rule.alternatives) total += static_cast<int64_t>(alternative.size()) + 1;
  }
  return total;
}

absl::Status Grammar::Finalize(int64_t max_elements) {
  if (num_elements() > max_elements) {
    return absl::InvalidArgumentError(
        StrCat("the constraint compiles to a grammar of ", num_elements(), " elements, over the limit of ",
               max_elements));
  }
  const int32_t count = num_rules();
  for (int32_t rule = 0; rule < count; ++rule) {
    if (rules_[rule].alternatives.empty()) {
      return absl::InvalidArgumentError(StrCat("grammar rule '", rules_[rule].name, "' matches nothing"));
    }
    for (const Sequence& alternative : rules_[rule].alternatives) {
      for (const Element& element : alternative) {
        const bool is_class = element.kind == ElementKind::kClass || element.kind == ElementKind::kClassStar;
        if (element.kind == ElementKind::kRule && (element.index < 0 || element.index >= count)) {
          return absl::InternalError("grammar references a rule that does not exist");
        }
        if (is_class && (element.index < 0 || element.index >= static_cast<int32_t>(classes_.size()))) {
          return absl::InternalError("grammar references a class that does not exist");
        }
        if (element.kind == ElementKind::kClass && classes_[element.index].empty()) {
          return absl::InvalidArgumentError(StrCat("grammar rule '", rules_[rule].name,
                                                   "' needs a character from an empty set"));
        }
      }
    }
  }
  // Nullable rules, to a fixed point.
  std::vector<bool> nullable(count, false);
  for (bool changed = true; changed;) {
    changed = false;
    for (int32_t rule = 0; rule < count; ++rule) {
      if (nullable[rule]) continue;
      for (const Sequence& alternative : rules_[rule].alternatives) {
        const bool all_nullable = std::all_of(alternative.begin(), alternative.end(), [&](const Element& e) {
          return e.kind == ElementKind::kClassStar || (e.kind == ElementKind::kRule && nullable[e.index]);
        });
        if (all_nullable) {
          nullable[rule] = changed = true;
          break;
        }
      }
    }
  }
  // Left corners: rule -> rules it can reach without consuming a character.
  std::vector<std::vector<int32_t>> left(count);
  for (int32_t rule = 0; rule < count; ++rule) {
    for (const Sequence& alternative : rules_[rule].alternatives) {
      for (const Element& element : alternative) {
        if (element.kind == ElementKind::kRule) left[rule].push_back(element.index);
        const bool passes = element.kind == ElementKind::kClassStar ||
                            (element.kind == ElementKind::kRule && nullable[element.index]);
        if (!passes) break;
      }
    }
  }
  // A cycle in the left-corner graph is left recursion (or an empty loop).
  std::vector<uint8_t> color(count, 0);  // 0 new, 1 on the stack, 2 done
  std::vector<std::pair<int32_t, size_t>> stack;
  for (int32_t start = 0; start < count; ++start) {
    if (color[start] != 0) continue;
    stack.push_back({start, 0});
    color[start] = 1;
    while (!stack.empty()) {
      auto& [rule, next] = stack.back();
      if (next < left[rule].size()) {
        const int32_t target = left[rule][next++];
        if (color[target] == 1) {
          return absl::InvalidArgumentError(
              StrCat("grammar rule '", rules_[target].name,
                     "' can repeat without consuming input (left recursion or a repeated empty match)"));
        }
        if (color[target] == 0) {
          color[target] = 1;
          stack.push_back({target, 0});
        }
      } else {
        color[rule] = 2;
        stack.pop_back();
      }
    }
  }
  return absl::OkStatus();
}

std::string Grammar::ToString() const {
  std::string out;
  auto class_text = [&](int32_t index) {
    const CharClass& char_class = classes_[index];
    if (char_class.ranges().size() == 1 && char_class.ranges()[0].first == char_class.ranges()[0].last) {
      return StrCat("'", CodepointText(char_class.ranges()[0].first), "'");
    }
    std::string text = "[";
    for (const CodepointRange& range : char_class.ranges()) {
      text += CodepointText(range.first);
      if (range.last != range.first) text += StrCat("-", CodepointText(range.last));
    }
    return text + "]";
  };
  for (int32_t rule = 0; rule < num_rules(); ++rule) {
    out += StrCat(rules_[rule].name, "#", rule, " ::=");
    for (size_t a = 0; a < rules_[rule].alternatives.size(); ++a) {
      if (a > 0) out += " |";
      if (rules_[rule].alternatives[a].empty()) out += " ε";
      for (const Element& element : rules_[rule].alternatives[a]) {
        switch (element.kind) {
          case ElementKind::kClass: out += " " + class_text(element.index); break;
          case ElementKind::kClassStar: out += " " + class_text(element.index) + "*"; break;
          case ElementKind::kRule: out += StrCat(" ", rules_[element.index].name, "#", element.index); break;
          case ElementKind::kEnd: break;
        }
      }
    }
    out += "\n";
  }
  return out;
}

}  // namespace duet::grammar
