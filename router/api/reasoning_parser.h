// Splits a reasoning model's output into its reasoning (the text inside a
// <think> ... </think> block) and its content (everything else), one delta
// at a time, as the OpenAI front end streams it.
//
// Tags may arrive split across deltas ("</th" + "ink>"): text that could be
// the beginning of the tag the parser waits for is held back until the next
// delta decides, or until Finish. The tags themselves belong to neither
// part. A block the prompt already opened (DeepSeek-R1 distills' templates
// end with "<think>\n") is declared at construction: the output then starts
// in the reasoning and only "</think>" matters until it appears.
//
// Thread-compatible: one parser per choice, fed by one thread at a time.
#ifndef DUET_ROUTER_API_REASONING_PARSER_H_
#define DUET_ROUTER_API_REASONING_PARSER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/types/span.h"

namespace duet::api {

// A run of output text that is all reasoning or all content.
struct ReasoningSegment {
  bool is_reasoning = false;
  std::string text;
};

class ReasoningParser {
 public:
  static constexpr std::string_view kStartTag = "<think>";
  static constexpr std::string_view kEndTag = "</think>";

  // `starts_in_reasoning`: the prompt ends inside an open think block.
  explicit ReasoningParser(bool starts_in_reasoning) : in_reasoning_(starts_in_reasoning) {}

  // Feeds the next piece of output; returns the text that is now decided, in
  // output order, adjacent runs of one kind merged. Never splits a UTF-8
  // character (tags are ASCII, and only a tag prefix is held back).
  std::vector<ReasoningSegment> Add(std::string_view text);

  // The output ended: whatever was held back is text of the current kind.
  std::vector<ReasoningSegment> Finish();

  bool in_reasoning() const { return in_reasoning_; }

 private:
  void Emit(std::string_view text, std::vector<ReasoningSegment>* out) const;

  bool in_reasoning_;
  std::string pending_;  // undecided text: a prefix of the awaited tag
};

// Whether the output of `prompt_token_ids` starts inside a think block: the
// last think tag of the prompt is an opening one. `prompt_token_ids`:
// [num_prompt_tokens].
bool PromptOpensReasoning(absl::Span<const int32_t> prompt_token_ids, int32_t start_tag_id, int32_t end_tag_id);

}  // namespace duet::api

#endif  // DUET_ROUTER_API_REASONING_PARSER_H_
