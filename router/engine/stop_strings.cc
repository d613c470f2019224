#include "router/engine/stop_strings.h"

#include <algorithm>
#include <utility>

namespace duet::engine {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stop_strings)
    : stop_strings_(std::move(stop_strings)) {}

std::string StopStringMatcher::Add(std::string_view text) {
  if (matched_) return {};
  held_.append(text);
  if (stop_strings_.empty()) return std::exchange(held_, {});
  // Everything released so far could not start a stop string, so a match
  // starts inside held_.
  size_t match_pos = std::string::npos;
  for (const std::string& stop : stop_strings_) {
    const size_t pos = held_.find(stop);
    if (pos < match_pos) {
      match_pos = pos;
      matched_ = stop;
    }
  }
  if (matched_) {
    std::string released = held_.substr(0, match_pos);
    held_.clear();
    return released;
  }
  // Hold back the longest tail of held_ that is a proper prefix of a stop
  // string. Stop strings are valid UTF-8, so the tail starts a character.
  size_t keep = 0;
  for (const std::string& stop : stop_strings_) {
    for (size_t len = std::min(stop.size() - 1, held_.size()); len > keep; --len) {
      if (std::string_view(held_).substr(held_.size() - len) == std::string_view(stop).substr(0, len)) {
        keep = len;
        break;
      }
    }
  }
  std::string released = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return released;
}

std::string StopStringMatcher::Flush() {
  if (matched_) return {};
  return std::exchange(held_, {});
}

}  // namespace duet::engine
