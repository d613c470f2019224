#include "router/grammar/token_vocabulary.h"

#include <algorithm>

namespace duet::grammar {

std::shared_ptr<const TokenVocabulary> TokenVocabulary::FromTokenizer(const tokenizer::Tokenizer& tokenizer) {
  std::vector<std::string> bytes(tokenizer.vocab_size());
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    if (tokenizer.IsSpecialToken(id)) continue;
    absl::StatusOr<std::string_view> token = tokenizer.TokenBytes(id);
    if (token.ok()) bytes[id] = std::string(*token);
  }
  return FromTokens(std::move(bytes));
}

std::shared_ptr<const TokenVocabulary> TokenVocabulary::FromTokens(std::vector<std::string> token_bytes) {
  return std::shared_ptr<const TokenVocabulary>(new TokenVocabulary(std::move(token_bytes)));
}

TokenVocabulary::TokenVocabulary(std::vector<std::string> token_bytes) : bytes_(std::move(token_bytes)) {
  for (int32_t id = 0; id < size(); ++id) {
    if (!bytes_[id].empty()) sorted_ids_.push_back(id);
  }
  std::sort(sorted_ids_.begin(), sorted_ids_.end(), [this](int32_t a, int32_t b) {
    return bytes_[a] != bytes_[b] ? bytes_[a] < bytes_[b] : a < b;
  });
  common_prefix_.assign(sorted_ids_.size(), 0);
  for (size_t i = 1; i < sorted_ids_.size(); ++i) {
    const std::string& previous = bytes_[sorted_ids_[i - 1]];
    const std::string& current = bytes_[sorted_ids_[i]];
    size_t length = 0;
    while (length < previous.size() && length < current.size() && previous[length] == current[length]) ++length;
    common_prefix_[i] = static_cast<int32_t>(length);
  }
}

}  // namespace duet::grammar
