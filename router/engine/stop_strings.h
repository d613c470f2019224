// Finds stop strings in a sequence's streamed text. Text that might still
// turn out to be the start of a stop string is held back, so a stop string
// never reaches the client; on a match the text ends right before it.
//
// Thread-compatible; one per sequence.
#ifndef DUET_ROUTER_ENGINE_STOP_STRINGS_H_
#define DUET_ROUTER_ENGINE_STOP_STRINGS_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace duet::engine {

class StopStringMatcher {
 public:
  explicit StopStringMatcher(std::vector<std::string> stop_strings);

  // Adds final text; returns the text that can be released now. After a
  // match, returns the text before the stop string, and nothing ever again.
  std::string Add(std::string_view text);
  // The sequence ended without a match: everything held back.
  std::string Flush();

  // The stop string that matched (the earliest in the text; of those
  // starting at the same place, the first listed).
  const std::optional<std::string>& matched() const { return matched_; }
  size_t num_held_bytes() const { return held_.size(); }

 private:
  std::vector<std::string> stop_strings_;
  std::string held_;
  std::optional<std::string> matched_;
};

}  // namespace duet::engine

#endif  // DUET_ROUTER_ENGINE_STOP_STRINGS_H_
