#include "router/grammar/grammar_matcher.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace duet::grammar {

GrammarMatcher::GrammarMatcher(std::shared_ptr<CompiledGrammar> grammar, std::vector<int32_t> stop_token_ids)
    : grammar_(std::move(grammar)), stop_token_ids_(std::move(stop_token_ids)) {
  state_ = grammar_->InitialState();
}

bool GrammarMatcher::IsStopToken(int32_t token_id) const {
  return std::find(stop_token_ids_.begin(), stop_token_ids_.end(), token_id) != stop_token_ids_.end();
}

bool GrammarMatcher::AcceptToken(int32_t token_id) {
  if (terminated_) return false;
  if (IsStopToken(token_id) && state_.can_end) {
    terminated_ = true;
    return true;
  }
  if (token_id < 0 || token_id >= grammar_->vocabulary().size()) return false;
  const std::string_view bytes = grammar_->vocabulary().bytes(token_id);
  if (bytes.empty()) return false;
  std::optional<MatchState> next = grammar_->Advance(state_, bytes);
  if (!next) return false;
  state_ = *next;
  return true;
}

std::string GrammarMatcher::NextTokenBitmask(int32_t num_tokens) {
  std::string out((num_tokens + 7) / 8, '\0');
  if (terminated_) return out;
  if (state_.set_id != 0) {
    std::shared_ptr<const TokenBitmask> mask = grammar_->NextTokenMask(state_);
    const int32_t limit = std::min(num_tokens, grammar_->vocabulary().size());
    const int32_t full_bytes = limit / 8;
    static_assert(std::endian::native == std::endian::little, "the mask's words are copied as bytes");
    std::memcpy(out.data(), mask->data(), full_bytes);
    for (int32_t id = full_bytes * 8; id < limit; ++id) {
      if (MaskHas(*mask, id)) out[id / 8] = static_cast<char>(out[id / 8] | (1 << (id % 8)));
    }
  }
  if (state_.can_end) {
    for (int32_t id : stop_token_ids_) {
      if (id >= 0 && id < num_tokens) out[id / 8] = static_cast<char>(out[id / 8] | (1 << (id % 8)));
    }
  }
  return out;
}

std::vector<int32_t> GrammarMatcher::AllowedTokenIds() {
  const int32_t size = std::max(grammar_->vocabulary().size(),
                                stop_token_ids_.empty() ? 0 : *std::max_element(stop_token_ids_.begin(),
                                                                                stop_token_ids_.end()) + 1);
  const std::string mask = NextTokenBitmask(size);
  std::vector<int32_t> ids;
  for (int32_t id = 0; id < size; ++id) {
    if ((static_cast<uint8_t>(mask[id / 8]) >> (id % 8)) & 1) ids.push_back(id);
  }
  return ids;
}

}  // namespace duet::grammar
