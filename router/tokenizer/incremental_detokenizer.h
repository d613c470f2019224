// Streaming detokenization: feed the ids of one sequence as they are sampled
// and get back the text that has become final.
//
// Invariants:
// - Released text is always valid UTF-8; a character whose bytes are split
//   across tokens (emoji, CJK under byte-level BPE) is released whole once its
//   last byte arrives.
// - The concatenation of everything Add returns plus Flush equals
//   Tokenizer::Decode(all ids, skip_special_tokens), including the U+FFFD the
//   decoder makes for bytes that never form a character. This holds because
//   Decode is "concatenate token bytes, then repair UTF-8", and the repair of a
//   prefix is final once it ends outside an incomplete sequence (utf8.h).
//
// skip_special_tokens: special tokens contribute no bytes, so they neither
// release nor split text; e.g. bytes of "你" interrupted by <|im_end|> still
// decode to "你", exactly as Decode does.
//
// Ownership: holds a pointer to `tokenizer`, which must outlive it.
// Thread-safety: one detokenizer per sequence; not safe for concurrent use.
#ifndef DUET_ROUTER_TOKENIZER_INCREMENTAL_DETOKENIZER_H_
#define DUET_ROUTER_TOKENIZER_INCREMENTAL_DETOKENIZER_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "router/tokenizer/tokenizer.h"

namespace duet::tokenizer {

class IncrementalDetokenizer {
 public:
  IncrementalDetokenizer(const Tokenizer* tokenizer, bool skip_special_tokens);

  // Adds one id; returns the newly final text (possibly empty).
  // InvalidArgument for an id with no token (nothing is consumed then).
  absl::StatusOr<std::string> Add(int32_t id);

  // Ends the sequence: returns what is still held back (an incomplete UTF-8
  // sequence becomes U+FFFD). The detokenizer is empty afterwards.
  std::string Flush();

  // Bytes held back because they may be the start of a character.
  size_t num_pending_bytes() const { return pending_bytes_.size(); }

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_tokens_;
  std::string pending_bytes_;  // at most 3 bytes: an incomplete UTF-8 prefix
};

}  // namespace duet::tokenizer

#endif  // DUET_ROUTER_TOKENIZER_INCREMENTAL_DETOKENIZER_H_
