// Translates a `tokenizers` Split pattern (written for Oniguruma) into a PCRE2
// pattern with the same matches under PCRE2_UTF | PCRE2_UCP.
//
// The two engines agree on syntax and on Unicode case folding for these
// patterns (both match "'ſ" with `(?i:'s)`), but not on `\s`: PCRE2 (UCP) also
// matches U+180E MONGOLIAN VOWEL SEPARATOR, Oniguruma matches exactly the
// White_Space property. So `\s` / `\S` become explicit classes. Escapes
// whose Unicode sets may differ too (`\w`, `\b`, `\h`, `\v`, ...), `\S`
// inside a class, nested or POSIX classes are rejected with
// UnimplementedError rather than run with different semantics.
#ifndef DUET_ROUTER_TOKENIZER_REGEX_TRANSLATE_H_
#define DUET_ROUTER_TOKENIZER_REGEX_TRANSLATE_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace duet::tokenizer {

absl::StatusOr<std::string> TranslateOnigurumaPattern(const std::string& pattern);

}  // namespace duet::tokenizer

#endif  // DUET_ROUTER_TOKENIZER_REGEX_TRANSLATE_H_
