#include "router/tokenizer/added_vocabulary.h"

#include <utf8proc.h>

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "common/utf8.h"

namespace duet::tokenizer {
namespace {

using nlohmann::json;

bool IsWhiteSpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// Unicode \w as the Rust `regex` crate defines it: Alphabetic, marks, decimal
// digits, connector punctuation and join controls. Alphabetic is approximated
// by letters, letter numbers and the enclosed/squared Latin letters.
bool IsWordCharacter(char32_t c) {
  if (c < 0x80) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  }
  if (c == 0x200C || c == 0x200D) return true;
  if ((c >= 0x24B6 && c <= 0x24E9) || (c >= 0x1F130 && c <= 0x1F149) ||
      (c >= 0x1F150 && c <= 0x1F169) || (c >= 0x1F170 && c <= 0x1F189)) {
    return true;
  }
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return false;
  }
}

// The last code point of valid UTF-8 `text` (non-empty).
char32_t LastCodePoint(std::string_view text, size_t* start) {
  size_t pos = text.size() - 1;
  while (pos > 0 && (static_cast<uint8_t>(text[pos]) & 0xC0) == 0x80) --pos;
  *start = pos;
  return DecodeValidSequence(text, pos, text.size() - pos);
}

char32_t FirstCodePoint(std::string_view text, size_t* length) {
  *length = ValidSequenceLength(text, 0);
  return DecodeValidSequence(text, 0, *length);
}

bool EndsWithWord(std::string_view text) {
  size_t start = 0;
  return !text.empty() && IsWordCharacter(LastCodePoint(text, &start));
}

bool StartsWithWord(std::string_view text) {
  size_t length = 0;
  return !text.empty() && IsWordCharacter(FirstCodePoint(text, &length));
}

// Offset where the run of whitespace at the end of `text` begins.
size_t TrailingWhiteSpaceStart(std::string_view text) {
  while (!text.empty()) {
    size_t start = 0;
    if (!IsWhiteSpace(LastCodePoint(text, &start))) break;
    text = text.substr(0, start);
  }
  return text.size();
}

// Length of the run of whitespace at the start of `text`.
size_t LeadingWhiteSpaceLength(std::string_view text) {
  size_t total = 0;
  while (total < text.size()) {
    size_t length = 0;
    if (!IsWhiteSpace(FirstCodePoint(text.substr(total), &length))) break;
    total += length;
  }
  return total;
}

absl::StatusOr<bool> ReadFlag(const json& token, const char* field, const std::string& where) {
  if (!token.contains(field)) return false;
  if (!token[field].is_boolean()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".", field, ": expected a boolean"));
  }
  return token[field].get<bool>();
}

}  // namespace

absl::StatusOr<AddedVocabulary> AddedVocabulary::FromJson(const json& added_tokens,
                                                          const Normalizer& normalizer,
                                                          const BpeModel& model,
                                                          const std::string& source) {
  AddedVocabulary vocabulary;
  if (added_tokens.is_null()) return vocabulary;
  if (!added_tokens.is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": added_tokens: expected an array"));
  }
  for (size_t i = 0; i < added_tokens.size(); ++i) {
    const json& entry = added_tokens[i];
    const std::string where = absl::StrCat(source, ": added_tokens[", i, "]");
    if (!entry.is_object() || !entry.contains("id") || !entry["id"].is_number_integer() ||
        !entry.contains("content") || !entry["content"].is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": needs an integer id and content"));
    }
    AddedToken token;
    const int64_t id = entry["id"].get<int64_t>();
    if (id < 0 || id >= (int64_t{1} << 30)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".id: out of range"));
    }
    token.content = entry["content"].get<std::string>();
    token.id = model.TokenToId(token.content).value_or(static_cast<int32_t>(id));
    if (token.content.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".content: empty"));
    }
    struct FlagField {
      const char* name;
      bool* value;
    };
    for (const FlagField& flag : {FlagField{"single_word", &token.single_word},
                                  FlagField{"lstrip", &token.lstrip},
                                  FlagField{"rstrip", &token.rstrip},
                                  FlagField{"normalized", &token.normalized},
                                  FlagField{"special", &token.special}}) {
      absl::StatusOr<bool> value = ReadFlag(entry, flag.name, where);
      if (!value.ok()) return value.status();
      *flag.value = *value;
    }
    vocabulary.tokens_.push_back(std::move(token));
  }
  std::string normalized_content;
  for (size_t i = 0; i < vocabulary.tokens_.size(); ++i) {
    const AddedToken& token = vocabulary.tokens_[i];
    const auto index = static_cast<int32_t>(i);
    if (!token.normalized) {
      Insert(vocabulary.raw_, token.content, index);
      continue;
    }
    if (absl::Status status = normalizer.Normalize(token.content, &normalized_content);
        !status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": added_tokens[", i, "]: ",
                                                     status.message()));
    }
    if (!normalized_content.empty()) Insert(vocabulary.normalized_, normalized_content, index);
  }
  return vocabulary;
}

void AddedVocabulary::Insert(Trie& trie, std::string_view content, int32_t token_index) {
  trie.is_first_byte[static_cast<uint8_t>(content[0])] = true;
  int32_t node = 0;
  for (const char byte : content) {
    const uint64_t key = static_cast<uint64_t>(node) << 8 | static_cast<uint8_t>(byte);
    const auto [it, inserted] =
        trie.edges.try_emplace(key, static_cast<int32_t>(trie.token_at_node.size()));
    if (inserted) trie.token_at_node.push_back(-1);
    node = it->second;
  }
  // With duplicate contents the later entry wins, as in a map built in order.
  trie.token_at_node[node] = token_index;
}

std::optional<AddedVocabulary::Match> AddedVocabulary::FindMatch(const Trie& trie,
                                                                 std::string_view text,
                                                                 size_t from) const {
  for (size_t start = from; start < text.size(); ++start) {
    if (!trie.is_first_byte[static_cast<uint8_t>(text[start])]) continue;
    int32_t node = 0;
    std::optional<Match> longest;
    for (size_t pos = start; pos < text.size(); ++pos) {
      const auto it =
          trie.edges.find(static_cast<uint64_t>(node) << 8 | static_cast<uint8_t>(text[pos]));
      if (it == trie.edges.end()) break;
      node = it->second;
      if (trie.token_at_node[node] >= 0) longest = Match{start, pos + 1, trie.token_at_node[node]};
    }
    if (longest.has_value()) return longest;
  }
  return std::nullopt;
}

void AddedVocabulary::Split(std::string_view text, bool normalized_tokens,
                            std::vector<TextSegment>* out) const {
  const Trie& trie = normalized_tokens ? normalized_ : raw_;
  size_t segment_start = 0;  // end of what has been emitted
  size_t search_from = 0;
  while (!trie.edges.empty()) {
    const std::optional<Match> match = FindMatch(trie, text, search_from);
    if (!match.has_value()) break;
    // The search continues after the match as found, before any stripping.
    search_from = match->end;
    const AddedToken& token = tokens_[match->token_index];
    size_t start = match->start;
    size_t end = match->end;
    if (token.single_word &&
        ((start > 0 && EndsWithWord(text.substr(0, start))) ||
         (end < text.size() && StartsWithWord(text.substr(end))))) {
      continue;
    }
    if (token.lstrip) {
      start = std::max(TrailingWhiteSpaceStart(text.substr(0, start)), segment_start);
    }
    if (token.rstrip) end += LeadingWhiteSpaceLength(text.substr(end));
    if (start > segment_start) {
      out->push_back(TextSegment{text.substr(segment_start, start - segment_start), -1});
    }
    out->push_back(TextSegment{text.substr(start, end - start), token.id});
    segment_start = end;
  }
  if (segment_start < text.size()) {
    out->push_back(TextSegment{text.substr(segment_start), -1});
  }
}

}  // namespace duet::tokenizer
