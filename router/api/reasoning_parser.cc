#include "router/api/reasoning_parser.h"

#include <algorithm>

namespace duet::api {
namespace {

// Length of the longest suffix of `text` that is a proper prefix of `tag`.
size_t HeldBackLength(std::string_view text, std::string_view tag) {
  for (size_t length = std::min(text.size(), tag.size() - 1); length > 0; --length) {
    if (text.substr(text.size() - length) == tag.substr(0, length)) return length;
  }
  return 0;
}

}  // namespace

void ReasoningParser::Emit(std::string_view text, std::vector<ReasoningSegment>* out) const {
  if (text.empty()) return;
  if (!out->empty() && out->back().is_reasoning == in_reasoning_) {
    out->back().text.append(text);
    return;
  }
  out->push_back(ReasoningSegment{in_reasoning_, std::string(text)});
}

std::vector<ReasoningSegment> ReasoningParser::Add(std::string_view text) {
  std::vector<ReasoningSegment> out;
  pending_.append(text);
  std::string_view rest = pending_;
  while (true) {
    const std::string_view tag = in_reasoning_ ? kEndTag : kStartTag;
    const size_t found = rest.find(tag);
    if (found == std::string_view::npos) break;
    Emit(rest.substr(0, found), &out);
    rest.remove_prefix(found + tag.size());
    in_reasoning_ = !in_reasoning_;
  }
  const size_t held = HeldBackLength(rest, in_reasoning_ ? kEndTag : kStartTag);
  Emit(rest.substr(0, rest.size() - held), &out);
  pending_ = std::string(rest.substr(rest.size() - held));
  return out;
}

std::vector<ReasoningSegment> ReasoningParser::Finish() {
  std::vector<ReasoningSegment> out;
  Emit(pending_, &out);
  pending_.clear();
  return out;
}

bool PromptOpensReasoning(absl::Span<const int32_t> prompt_token_ids, int32_t start_tag_id, int32_t end_tag_id) {
  for (auto it = prompt_token_ids.rbegin(); it != prompt_token_ids.rend(); ++it) {
    if (*it == start_tag_id) return true;
    if (*it == end_tag_id) return false;
  }
  return false;
}

}  // namespace duet::api
