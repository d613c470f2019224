// Shared by the engine tests: a byte tokenizer (id b is byte b, 256 is the
// special "<eos>") and a helper that collects a request's events.
#ifndef DUET_TESTS_ROUTER_ENGINE_ENGINE_TEST_UTIL_H_
#define DUET_TESTS_ROUTER_ENGINE_ENGINE_TEST_UTIL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"
#include "router/engine/engine.h"
#include "router/tokenizer/byte_level.h"
#include "router/tokenizer/tokenizer.h"

namespace duet::testing {

inline constexpr int32_t kByteEosId = 256;

inline std::unique_ptr<tokenizer::Tokenizer> ByteTokenizer() {
  nlohmann::json vocab = nlohmann::json::object();
  for (int byte = 0; byte < 256; ++byte) {
    vocab[tokenizer::BytesToByteLevel(std::string(1, static_cast<char>(byte)))] = byte;
  }
  const nlohmann::json spec = {
      {"version", "1.0"},
      {"added_tokens", nlohmann::json::array({{{"id", kByteEosId}, {"content", "<eos>"}, {"special", true}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         nlohmann::json::array({{{"type", "Split"},
                                 {"pattern", {{"Regex", "[^\\n]+|\\n"}}},
                                 {"behavior", "Isolated"},
                                 {"invert", false}},
                                {{"type", "ByteLevel"},
                                 {"add_prefix_space", false},
                                 {"trim_offsets", true},
                                 {"use_regex", false}}})}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}},
  };
  absl::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> tokenizer =
      tokenizer::Tokenizer::FromJson(spec.dump(), "bytes");
  CHECK(tokenizer.ok()) << tokenizer.status();
  return *std::move(tokenizer);
}

inline std::vector<int32_t> Bytes(const std::string& text) { return {text.begin(), text.end()}; }

// Everything a request produced, per sample.
struct Collected {
  struct Sample {
    std::vector<int32_t> token_ids;
    std::string text;
    engine::FinishReason finish_reason = engine::FinishReason::kNone;
    std::optional<std::string> stop_string;
    std::optional<int32_t> stop_token_id;
    int32_t num_cached_prompt_tokens = 0;
    int32_t num_completion_tokens = 0;
    int32_t num_logprobs = 0;
  };
  std::vector<Sample> samples;
  absl::Status error;
  int32_t num_events = 0;
};

// Waits for the request's last event (at most `timeout`).
inline Collected Collect(engine::EventQueue& queue, int32_t n, absl::Duration timeout = absl::Seconds(60)) {
  Collected collected;
  collected.samples.resize(n);
  const absl::Time deadline = absl::Now() + timeout;
  engine::EngineEvent event;
  while (queue.Next(&event, deadline - absl::Now())) {
    ++collected.num_events;
    if (event.kind == engine::EngineEvent::Kind::kError) {
      collected.error = event.error;
      return collected;
    }
    Collected::Sample& sample = collected.samples.at(event.index);
    sample.token_ids.insert(sample.token_ids.end(), event.token_ids.begin(), event.token_ids.end());
    sample.text += event.text;
    sample.num_logprobs += static_cast<int32_t>(event.logprobs.size());
    sample.num_cached_prompt_tokens = event.num_cached_prompt_tokens;
    sample.num_completion_tokens = event.num_completion_tokens;
    if (event.kind == engine::EngineEvent::Kind::kFinished) {
      sample.finish_reason = event.finish_reason;
      sample.stop_string = event.stop_string;
      sample.stop_token_id = event.stop_token_id;
    }
    if (event.last) return collected;
  }
  collected.error = absl::DeadlineExceededError("no last event");
  return collected;
}

}  // namespace duet::testing

#endif  // DUET_TESTS_ROUTER_ENGINE_ENGINE_TEST_UTIL_H_
