// The pre-tokenizer of a byte-level `tokenizer.json`: a `Split` regex with
// behavior "Isolated" (every match and every stretch between matches is its own
// piece), followed by `ByteLevel` with use_regex false (which only maps bytes
// to characters; the BPE model works on raw bytes, so that step is implicit).
//
// Accepted "pre_tokenizer" shapes: a Sequence of [Split, ByteLevel], where
// Split has a "Regex" pattern, behavior "Isolated", invert false, and
// ByteLevel has add_prefix_space false and use_regex false. Anything else is
// rejected with UnimplementedError.
//
// The regex runs with PCRE2 (JIT when available) and PCRE2_UTF | PCRE2_UCP,
// after TranslateOnigurumaPattern. Thread-safety: immutable after creation;
// Split may be called concurrently (match data is per thread).
#ifndef DUET_ROUTER_TOKENIZER_SPLIT_PRE_TOKENIZER_H_
#define DUET_ROUTER_TOKENIZER_SPLIT_PRE_TOKENIZER_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"

namespace duet::tokenizer {

class SplitPreTokenizer {
 public:
  // `pre_tokenizer` is the "pre_tokenizer" object of tokenizer.json.
  static absl::StatusOr<std::unique_ptr<SplitPreTokenizer>> FromJson(
      const nlohmann::json& pre_tokenizer, const std::string& source);
  // `pattern` is an Oniguruma-style pattern as written in tokenizer.json.
  static absl::StatusOr<std::unique_ptr<SplitPreTokenizer>> FromPattern(const std::string& pattern);

  ~SplitPreTokenizer();
  SplitPreTokenizer(const SplitPreTokenizer&) = delete;
  SplitPreTokenizer& operator=(const SplitPreTokenizer&) = delete;

  // Calls `emit` with each non-empty piece of `text`, in order; the pieces
  // concatenate to `text`. Precondition: `text` is valid UTF-8.
  absl::Status Split(std::string_view text,
                     absl::FunctionRef<void(std::string_view piece)> emit) const;

 private:
  struct Compiled;
  explicit SplitPreTokenizer(std::unique_ptr<Compiled> compiled);

  std::unique_ptr<Compiled> compiled_;
};

}  // namespace duet::tokenizer

#endif  // DUET_ROUTER_TOKENIZER_SPLIT_PRE_TOKENIZER_H_
