// duet::StrCat: absl::StrCat that also takes std::string_view and char.
//
// Debian builds Abseil with ABSL_OPTION_USE_STD_STRING_VIEW=0, so
// absl::string_view is its own type and absl::StrCat rejects a
// std::string_view argument. duet code uses std::string_view throughout and
// calls duet::StrCat: text pieces are appended directly, a char as one
// character, anything else (numbers, absl::Hex, ...) as absl::StrCat formats it.
#ifndef DUET_COMMON_STR_CAT_H_
#define DUET_COMMON_STR_CAT_H_

#include <string>
#include <string_view>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace duet {
namespace str_cat_internal {

template <typename T>
void Append(std::string* out, const T& piece) {
  if constexpr (std::is_same_v<T, char>) {
    out->push_back(piece);
  } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
    out->append(std::string_view(piece));
  } else if constexpr (std::is_convertible_v<const T&, absl::string_view>) {
    const absl::string_view view = piece;
    out->append(view.data(), view.size());
  } else {
    out->append(absl::StrCat(piece));
  }
}

}  // namespace str_cat_internal

template <typename... Pieces>
std::string StrCat(const Pieces&... pieces) {
  std::string out;
  (str_cat_internal::Append(&out, pieces), ...);
  return out;
}

}  // namespace duet

#endif  // DUET_COMMON_STR_CAT_H_
