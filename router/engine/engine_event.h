// What the engine tells a front end about one request, and where it goes.
#ifndef DUET_ROUTER_ENGINE_ENGINE_EVENT_H_
#define DUET_ROUTER_ENGINE_ENGINE_EVENT_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace duet::engine {

enum class FinishReason {
  kNone,
  kStop,    // EOS, a stop token id or a stop string
  kLength,  // max_tokens or the context length
  kAbort,   // aborted by the client
};
const char* FinishReasonName(FinishReason reason);  // "stop", "length", "abort", ""

struct TokenLogprob {
  int32_t token_id = 0;
  float logprob = 0.0f;
  // The most likely alternatives, most likely first.
  std::vector<std::pair<int32_t, float>> top_logprobs;
};

struct EngineEvent {
  enum class Kind {
    kDelta,     // new tokens and/or text of one sample
    kFinished,  // one sample is done (it may carry the last delta too)
    kError,     // the whole request failed; always the last event
  };
  Kind kind = Kind::kDelta;
  // Which of the request's n samples this is about (0 for kError).
  int32_t index = 0;

  // New output tokens of this sample, and the text that became final with
  // them (text may lag tokens: incomplete UTF-8 and a possible stop string
  // are held back).
  std::vector<int32_t> token_ids;
  std::string text;
  // One per token in token_ids when the request asked for logprobs.
  std::vector<TokenLogprob> logprobs;

  // Cumulative counts for this sample.
  int32_t num_prompt_tokens = 0;
  int32_t num_cached_prompt_tokens = 0;  // prompt tokens served from the prefix cache
  int32_t num_completion_tokens = 0;

  // kFinished only.
  FinishReason finish_reason = FinishReason::kNone;
  std::optional<std::string> stop_string;  // the stop string that matched
  std::optional<int32_t> stop_token_id;    // the EOS / stop id that matched

  // kError only: Unavailable (workers failed), InvalidArgument (rejected by
  // the workers), Aborted (engine shutting down), ...
  absl::Status error;

  // True on the request's final event: after every sample finished, or on
  // the error.
  bool last = false;
};

// Receives a request's events in order. Called from the engine's threads:
// OnEvent must not block and must not call back into the engine.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void OnEvent(EngineEvent event) = 0;
};

// An EventSink a synchronous consumer waits on (e.g. a gRPC handler thread).
// Thread-safe.
class EventQueue : public EventSink {
 public:
  void OnEvent(EngineEvent event) override {
    absl::MutexLock lock(&mu_);
    events_.push_back(std::move(event));
  }
  // Waits up to `timeout` for the next event; false on timeout.
  bool Next(EngineEvent* event, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !events_.empty(); };
    if (!mu_.AwaitWithTimeout(absl::Condition(&ready), timeout)) return false;
    *event = std::move(events_.front());
    events_.pop_front();
    return true;
  }

 private:
  absl::Mutex mu_;
  std::deque<EngineEvent> events_ ABSL_GUARDED_BY(mu_);
};

}  // namespace duet::engine

#endif  // DUET_ROUTER_ENGINE_ENGINE_EVENT_H_
