#include "router/tokenizer/regex_translate.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace duet::tokenizer {
namespace {

// Unicode White_Space, as Oniguruma's `\s` matches it.
constexpr char kWhiteSpaceItems[] =
    "\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
    "\\x{202F}\\x{205F}\\x{3000}";

absl::Status Unsupported(const std::string& pattern, size_t pos, const std::string& what) {
  return absl::UnimplementedError(absl::StrCat("Split regex \"", pattern, "\": ", what,
                                               " at offset ", pos, " is not supported"));
}

}  // namespace

absl::StatusOr<std::string> TranslateOnigurumaPattern(const std::string& pattern) {
  std::string out;
  out.reserve(pattern.size() * 2);
  bool in_class = false;
  size_t class_start = 0;  // offset just after "[" or "[^"
  for (size_t pos = 0; pos < pattern.size(); ++pos) {
    const char c = pattern[pos];
    if (c == '\\') {
      if (pos + 1 >= pattern.size()) return Unsupported(pattern, pos, "a trailing backslash");
      const char escaped = pattern[++pos];
      if (escaped == 's') {
        if (in_class) {
          out.append(kWhiteSpaceItems);
        } else {
          absl::StrAppend(&out, "[", kWhiteSpaceItems, "]");
        }
      } else if (escaped == 'S') {
        if (in_class) return Unsupported(pattern, pos, "\\S inside a character class");
        absl::StrAppend(&out, "[^", kWhiteSpaceItems, "]");
      } else if (escaped == 'Q' || escaped == 'h' || escaped == 'H' || escaped == 'v' ||
                 escaped == 'V' || escaped == 'w' || escaped == 'W' || escaped == 'b' ||
                 escaped == 'B') {
        // Classes and assertions whose Unicode sets may differ between the engines.
        return Unsupported(pattern, pos, absl::StrCat("\\", std::string(1, escaped)));
      } else {
        out.push_back('\\');
        out.push_back(escaped);
      }
      continue;
    }
    if (in_class) {
      if (c == '[') return Unsupported(pattern, pos, "a nested or POSIX class");
      if (c == ']' && pos != class_start) in_class = false;
      out.push_back(c);
      continue;
    }
    if (c == '[') {
      in_class = true;
      out.push_back(c);
      if (pos + 1 < pattern.size() && pattern[pos + 1] == '^') {
        out.push_back('^');
        ++pos;
      }
      class_start = pos + 1;
      continue;
    }
    out.push_back(c);
  }
  if (in_class) return Unsupported(pattern, pattern.size(), "an unterminated class");
  return out;
}

}  // namespace duet::tokenizer
