// A flat_hash_map keyed by std::string that can be searched with a
// std::string_view without building a string (Debian's Abseil has its own
// absl::string_view, so its default heterogeneous lookup does not accept
// std::string_view).
#ifndef DUET_ROUTER_TOKENIZER_STRING_MAP_H_
#define DUET_ROUTER_TOKENIZER_STRING_MAP_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"

namespace duet::tokenizer {

struct StringViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const {
    return absl::Hash<absl::string_view>{}(absl::string_view(text.data(), text.size()));
  }
};

struct StringViewEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
};

template <typename Value>
using StringMap = absl::flat_hash_map<std::string, Value, StringViewHash, StringViewEq>;

}  // namespace duet::tokenizer

#endif  // DUET_ROUTER_TOKENIZER_STRING_MAP_H_
