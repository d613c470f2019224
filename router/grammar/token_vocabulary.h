// The bytes of every token a grammar may allow, sorted so that tokens with a
// common prefix are neighbours: the matcher walks this order as a trie,
// sharing the work of each prefix between the tokens that start with it.
//
// Special tokens (EOS, <|im_start|>, ...) and tokens that decode to nothing
// are not in it: a grammar never allows them as text; the matcher allows the
// stop tokens it is given once the grammar may end.
//
// Thread-safety: immutable after construction.
#ifndef DUET_ROUTER_GRAMMAR_TOKEN_VOCABULARY_H_
#define DUET_ROUTER_GRAMMAR_TOKEN_VOCABULARY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "router/tokenizer/tokenizer.h"

namespace duet::grammar {

class TokenVocabulary {
 public:
  // Bytes as Tokenizer::TokenBytes gives them (what the token adds to the
  // decoded text).
  static std::shared_ptr<const TokenVocabulary> FromTokenizer(const tokenizer::Tokenizer& tokenizer);
  // token_bytes[id]; an empty string marks an id no grammar allows.
  static std::shared_ptr<const TokenVocabulary> FromTokens(std::vector<std::string> token_bytes);

  // One past the largest id.
  int32_t size() const { return static_cast<int32_t>(bytes_.size()); }
  std::string_view bytes(int32_t id) const { return bytes_[id]; }
  // Ids with bytes, in byte order.
  const std::vector<int32_t>& sorted_ids() const { return sorted_ids_; }
  // common_prefix()[i]: bytes sorted_ids()[i] shares with sorted_ids()[i-1] (0 for i = 0).
  const std::vector<int32_t>& common_prefix() const { return common_prefix_; }

 private:
  explicit TokenVocabulary(std::vector<std::string> token_bytes);

  std::vector<std::string> bytes_;
  std::vector<int32_t> sorted_ids_;
  std::vector<int32_t> common_prefix_;
};

}  // namespace duet::grammar

#endif  // DUET_ROUTER_GRAMMAR_TOKEN_VOCABULARY_H_
