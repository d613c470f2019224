// The router's Prometheus metrics (GET /metrics): request latencies observed
// by the OpenAI front end as histograms, and the engine's gauges and
// counters (EngineStats) read at scrape time. Names use the "duet:" prefix
// the way vLLM uses "vllm:", so dashboards carry over by renaming.
//
// Thread-safe: observations come from the engine's output thread, scrapes
// from the HTTP server's threads.
#ifndef DUET_ROUTER_API_METRICS_H_
#define DUET_ROUTER_API_METRICS_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "router/engine/engine.h"

namespace duet::api {

// A cumulative histogram over fixed upper bounds (seconds), plus +Inf.
// Thread-compatible; Metrics guards it.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);

  void Observe(double value);

  const std::vector<double>& upper_bounds() const { return upper_bounds_; }
  // bucket_counts()[i]: observations <= upper_bounds()[i] (not cumulative);
  // the last entry counts those above every bound.
  const std::vector<uint64_t>& bucket_counts() const { return bucket_counts_; }
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> upper_bounds_;    // ascending
  std::vector<uint64_t> bucket_counts_;  // [upper_bounds_.size() + 1]
  uint64_t count_ = 0;
  double sum_ = 0;
};

class Metrics {
 public:
  // `model_name` labels every series (model_name="...").
  explicit Metrics(std::string model_name);

  // From a request's arrival to its first output token.
  void ObserveTimeToFirstToken(absl::Duration latency);
  // Between consecutive output tokens of one sample.
  void ObserveInterTokenLatency(absl::Duration latency);
  // From a request's arrival to its last event.
  void ObserveEndToEndLatency(absl::Duration latency);
  // One finished sample or failed request; `reason` is "stop", "length",
  // "abort" or "error".
  void CountFinished(std::string_view reason);

  // Per API key (by its name): generation requests admitted, refused by a
  // limit ("rate" or "concurrency"), and the tokens of finished ones.
  // AddKey shows a key's counters (at 0) before its first request.
  void AddKey(std::string_view key_name);
  void CountKeyRequest(std::string_view key_name);
  void CountKeyRefused(std::string_view key_name, std::string_view limit);
  void CountKeyTokens(std::string_view key_name, int64_t prompt_tokens, int64_t completion_tokens);

  // The Prometheus text exposition format (version 0.0.4) of everything
  // above together with `stats`.
  std::string RenderPrometheus(const engine::EngineStats& stats) const;

 private:
  const std::string model_label_;  // model_name="..." with the value escaped
  mutable absl::Mutex mu_;
  Histogram time_to_first_token_ ABSL_GUARDED_BY(mu_);
  Histogram inter_token_latency_ ABSL_GUARDED_BY(mu_);
  Histogram end_to_end_latency_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t, std::less<>> finished_ ABSL_GUARDED_BY(mu_);
  struct KeyCounters {
    uint64_t requests = 0;
    uint64_t refused_by_rate = 0;
    uint64_t refused_by_concurrency = 0;
    uint64_t prompt_tokens = 0;
    uint64_t completion_tokens = 0;
  };
  KeyCounters& Key(std::string_view key_name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::map<std::string, KeyCounters, std::less<>> keys_ ABSL_GUARDED_BY(mu_);
};

}  // namespace duet::api

#endif  // DUET_ROUTER_API_METRICS_H_
