// The "added_tokens" of tokenizer.json: strings (mostly special tokens such as
// "<|eot_id|>") that are cut out of the input before normalization and
// pre-tokenization and map directly to one id.
//
// Matching follows `tokenizers`: leftmost match first, longest at that
// position; then the token's flags apply:
// - single_word: the match counts only if neither neighbour is a word
//   character (Unicode \w); otherwise it is skipped and the search resumes
//   after it.
// - lstrip / rstrip: whitespace (Unicode White_Space) to the left / right is
//   absorbed into the token.
// - normalized: the token is matched in the normalized text (after
//   Normalizer) instead of the raw input.
// - special: marks the token for skipping in Decode(skip_special_tokens).
//
// Thread-safety: immutable after FromJson; concurrent const use is safe.
#ifndef DUET_ROUTER_TOKENIZER_ADDED_VOCABULARY_H_
#define DUET_ROUTER_TOKENIZER_ADDED_VOCABULARY_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"
#include "router/tokenizer/bpe_model.h"
#include "router/tokenizer/normalizer.h"

namespace duet::tokenizer {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
};

// A piece of input: an added token (added_token_id >= 0, text is what it
// covered) or plain text still to be tokenized (added_token_id == -1).
struct TextSegment {
  std::string_view text;
  int32_t added_token_id = -1;
};

class AddedVocabulary {
 public:
  // `added_tokens` is the "added_tokens" array of tokenizer.json (null: none).
  // Tokens flagged `normalized` are matched by their normalized content. A
  // token whose content is already in the model's vocabulary takes the
  // model's id (the file's id is ignored), as in `tokenizers`.
  static absl::StatusOr<AddedVocabulary> FromJson(const nlohmann::json& added_tokens,
                                                  const Normalizer& normalizer,
                                                  const BpeModel& model,
                                                  const std::string& source);

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  bool has_normalized_tokens() const { return !normalized_.edges.empty(); }

  // Appends the segments of `text` to `out`, cutting out the tokens whose
  // `normalized` flag equals `normalized_tokens`. Precondition: `text` is
  // valid UTF-8. Segments are in order and cover `text` (a token that
  // absorbed whitespace covers it).
  void Split(std::string_view text, bool normalized_tokens, std::vector<TextSegment>* out) const;

 private:
  // A byte trie over the contents of one group of tokens.
  struct Trie {
    absl::flat_hash_map<uint64_t, int32_t> edges;  // (node << 8 | byte) -> child node
    std::vector<int32_t> token_at_node{-1};        // [num_nodes] index into tokens_, or -1
    std::array<bool, 256> is_first_byte{};
  };

  static void Insert(Trie& trie, std::string_view content, int32_t token_index);
  // Leftmost-longest match in text[from, end): (start, end, token index).
  struct Match {
    size_t start;
    size_t end;
    int32_t token_index;
  };
  std::optional<Match> FindMatch(const Trie& trie, std::string_view text, size_t from) const;

  std::vector<AddedToken> tokens_;
  Trie raw_;         // tokens with normalized == false
  Trie normalized_;  // tokens with normalized == true
};

}  // namespace duet::tokenizer

#endif  // DUET_ROUTER_TOKENIZER_ADDED_VOCABULARY_H_
