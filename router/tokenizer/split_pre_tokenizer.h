// The pre-tokenizer of a byte-level `tokenizer.json`: one or more regex
// splits with behavior "Isolated" (every match and every stretch between
// matches is its own piece), each applied to the pieces of the one before,
// followed by `ByteLevel` (which only maps bytes to characters; the BPE model
// works on raw bytes, so that step is implicit).
//
// Accepted "pre_tokenizer" shapes: a Sequence of Split and Digits steps
// ending in ByteLevel, or a lone ByteLevel. Split needs a "Regex" pattern,
// behavior "Isolated" and invert false; Digits splits off each digit
// (individual_digits) or each run of digits; ByteLevel needs
// add_prefix_space false, and with use_regex (its default) adds GPT-2's split
// regex as the last stage. Anything else is rejected with UnimplementedError.
//
// The regex runs with PCRE2 (JIT when available) and PCRE2_UTF | PCRE2_UCP,
// after TranslateOnigurumaPattern. Thread-safety: immutable after creation;
// Split may be called concurrently (match data is per thread).
#ifndef DUET_ROUTER_TOKENIZER_SPLIT_PRE_TOKENIZER_H_
#define DUET_ROUTER_TOKENIZER_SPLIT_PRE_TOKENIZER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

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
  // Several patterns applied in turn, each to the pieces of the one before.
  static absl::StatusOr<std::unique_ptr<SplitPreTokenizer>> FromPatterns(
      const std::vector<std::string>& patterns);

  ~SplitPreTokenizer();
  SplitPreTokenizer(const SplitPreTokenizer&) = delete;
  SplitPreTokenizer& operator=(const SplitPreTokenizer&) = delete;

  // Calls `emit` with each non-empty piece of `text`, in order; the pieces
  // concatenate to `text`. Precondition: `text` is valid UTF-8.
  absl::Status Split(std::string_view text,
                     absl::FunctionRef<void(std::string_view piece)> emit) const;

 private:
  struct Compiled;
  explicit SplitPreTokenizer(std::vector<std::unique_ptr<Compiled>> stages);
  static absl::StatusOr<std::unique_ptr<Compiled>> Compile(const std::string& pattern);
  static absl::Status SplitOne(const Compiled& compiled, std::string_view text,
                               absl::FunctionRef<void(std::string_view piece)> emit);
  absl::Status SplitStage(size_t stage, std::string_view text,
                          absl::FunctionRef<void(std::string_view piece)> emit) const;

  std::vector<std::unique_ptr<Compiled>> stages_;
};

}  // namespace duet::tokenizer

#endif  // DUET_ROUTER_TOKENIZER_SPLIT_PRE_TOKENIZER_H_
