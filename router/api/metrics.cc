#include "router/api/metrics.h"

#include <algorithm>
#include <utility>

#include "common/str_cat.h"
#include "glog/logging.h"

namespace duet::api {
namespace {

// Bucket bounds in seconds, the ones vLLM uses, so the same dashboards work.
std::vector<double> TimeToFirstTokenBounds() {
  return {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
          1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
}

std::vector<double> InterTokenLatencyBounds() {
  return {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0};
}

std::vector<double> EndToEndLatencyBounds() {
  return {0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0,
          30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
}

template <typename... Pieces>
void StrAppend(std::string* out, const Pieces&... pieces) {
  out->append(StrCat(pieces...));
}

// A label value as the exposition format wants it: \, " and newline escaped.
std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void AppendHeader(std::string* out, std::string_view name, std::string_view type, std::string_view help) {
  StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

template <typename T>
void AppendSample(std::string* out, std::string_view name, std::string_view labels, T value) {
  StrAppend(out, name, "{", labels, "} ", value, "\n");
}

void AppendHistogram(std::string* out, std::string_view name, std::string_view help, std::string_view labels,
                     const Histogram& histogram) {
  AppendHeader(out, name, "histogram", help);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < histogram.upper_bounds().size(); ++i) {
    cumulative += histogram.bucket_counts()[i];
    StrAppend(out, name, "_bucket{", labels, ",le=\"", histogram.upper_bounds()[i], "\"} ", cumulative, "\n");
  }
  StrAppend(out, name, "_bucket{", labels, ",le=\"+Inf\"} ", histogram.count(), "\n");
  StrAppend(out, name, "_sum{", labels, "} ", histogram.sum(), "\n");
  StrAppend(out, name, "_count{", labels, "} ", histogram.count(), "\n");
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)), bucket_counts_(upper_bounds_.size() + 1, 0) {
  CHECK(std::is_sorted(upper_bounds_.begin(), upper_bounds_.end()));
}

void Histogram::Observe(double value) {
  const size_t bucket =
      std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) - upper_bounds_.begin();
  ++bucket_counts_[bucket];
  ++count_;
  sum_ += value;
}

Metrics::Metrics(std::string model_name)
    : model_label_(StrCat("model_name=\"", EscapeLabelValue(model_name), "\"")),
      time_to_first_token_(TimeToFirstTokenBounds()),
      inter_token_latency_(InterTokenLatencyBounds()),
      end_to_end_latency_(EndToEndLatencyBounds()) {}

void Metrics::ObserveTimeToFirstToken(absl::Duration latency) {
  absl::MutexLock lock(&mu_);
  time_to_first_token_.Observe(absl::ToDoubleSeconds(latency));
}

void Metrics::ObserveInterTokenLatency(absl::Duration latency) {
  absl::MutexLock lock(&mu_);
  inter_token_latency_.Observe(absl::ToDoubleSeconds(latency));
}

void Metrics::ObserveEndToEndLatency(absl::Duration latency) {
  absl::MutexLock lock(&mu_);
  end_to_end_latency_.Observe(absl::ToDoubleSeconds(latency));
}

void Metrics::CountFinished(std::string_view reason) {
  absl::MutexLock lock(&mu_);
  auto it = finished_.find(reason);
  if (it == finished_.end()) it = finished_.emplace(std::string(reason), 0).first;
  ++it->second;
}

Metrics::KeyCounters& Metrics::Key(std::string_view key_name) {
  auto it = keys_.find(key_name);
  if (it == keys_.end()) it = keys_.emplace(std::string(key_name), KeyCounters()).first;
  return it->second;
}

void Metrics::AddKey(std::string_view key_name) {
  absl::MutexLock lock(&mu_);
  Key(key_name);
}

void Metrics::CountKeyRequest(std::string_view key_name) {
  absl::MutexLock lock(&mu_);
  ++Key(key_name).requests;
}

void Metrics::CountKeyRefused(std::string_view key_name, std::string_view limit) {
  absl::MutexLock lock(&mu_);
  KeyCounters& counters = Key(key_name);
  ++(limit == "rate" ? counters.refused_by_rate : counters.refused_by_concurrency);
}

void Metrics::CountKeyTokens(std::string_view key_name, int64_t prompt_tokens, int64_t completion_tokens) {
  absl::MutexLock lock(&mu_);
  KeyCounters& counters = Key(key_name);
  counters.prompt_tokens += static_cast<uint64_t>(std::max<int64_t>(0, prompt_tokens));
  counters.completion_tokens += static_cast<uint64_t>(std::max<int64_t>(0, completion_tokens));
}

std::string Metrics::RenderPrometheus(const engine::EngineStats& stats) const {
  const std::string_view labels = model_label_;
  std::string out;
  AppendHeader(&out, "duet:num_requests_running", "gauge", "Requests with a sequence in the running batch.");
  AppendSample(&out, "duet:num_requests_running", labels, stats.num_running_requests);
  AppendHeader(&out, "duet:num_requests_waiting", "gauge", "Requests waiting to be scheduled.");
  AppendSample(&out, "duet:num_requests_waiting", labels, stats.num_waiting_requests);
  AppendHeader(&out, "duet:kv_cache_usage_perc", "gauge", "Fraction of KV blocks held by sequences (1 = full).");
  const double usage = stats.num_kv_blocks > 0
                           ? static_cast<double>(stats.num_used_kv_blocks) / stats.num_kv_blocks
                           : 0.0;
  AppendSample(&out, "duet:kv_cache_usage_perc", labels, usage);
  AppendHeader(&out, "duet:workers_healthy", "gauge", "1 while the worker group serves steps, 0 while it is down.");
  AppendSample(&out, "duet:workers_healthy", labels, stats.workers_healthy ? 1 : 0);
  AppendHeader(&out, "duet:prefix_cache_queries_total", "counter", "Prompt tokens looked up in the prefix cache.");
  AppendSample(&out, "duet:prefix_cache_queries_total", labels, stats.prefix_cache_queried_tokens);
  AppendHeader(&out, "duet:prefix_cache_hits_total", "counter", "Prompt tokens served from the prefix cache.");
  AppendSample(&out, "duet:prefix_cache_hits_total", labels, stats.prefix_cache_hit_tokens);
  AppendHeader(&out, "duet:num_preemptions_total", "counter", "Sequences preempted for lack of KV blocks.");
  AppendSample(&out, "duet:num_preemptions_total", labels, stats.num_preemptions);
  AppendHeader(&out, "duet:prompt_tokens_total", "counter", "Prompt tokens of admitted requests.");
  AppendSample(&out, "duet:prompt_tokens_total", labels, stats.num_prompt_tokens);
  AppendHeader(&out, "duet:generation_tokens_total", "counter", "Output tokens sent to clients.");
  AppendSample(&out, "duet:generation_tokens_total", labels, stats.num_generated_tokens);
  AppendHeader(&out, "duet:num_steps_total", "counter", "Engine steps run on the workers.");
  AppendSample(&out, "duet:num_steps_total", labels, stats.num_steps);
  AppendHeader(&out, "duet:step_seconds_total", "counter",
               "Wall time of the engine's steps, from sending the step to the workers to its result.");
  AppendSample(&out, "duet:step_seconds_total", labels, stats.step_seconds);
  AppendHeader(&out, "duet:step_compute_seconds_total", "counter",
               "The part of duet:step_seconds_total the workers spent computing (the slowest rank).");
  AppendSample(&out, "duet:step_compute_seconds_total", labels, stats.step_compute_seconds);
  AppendHeader(&out, "duet:decode_steps_total", "counter", "Steps of one token per sequence.");
  AppendSample(&out, "duet:decode_steps_total", labels, stats.num_decode_steps);
  AppendHeader(&out, "duet:decode_step_seconds_total", "counter", "duet:step_seconds_total of the decode steps.");
  AppendSample(&out, "duet:decode_step_seconds_total", labels, stats.decode_step_seconds);
  AppendHeader(&out, "duet:decode_step_compute_seconds_total", "counter",
               "duet:step_compute_seconds_total of the decode steps.");
  AppendSample(&out, "duet:decode_step_compute_seconds_total", labels, stats.decode_step_compute_seconds);

  absl::MutexLock lock(&mu_);
  AppendHeader(&out, "duet:request_success_total", "counter", "Finished samples and failed requests by reason.");
  for (const char* reason : {"stop", "length", "abort", "error"}) {
    const auto it = finished_.find(std::string_view(reason));
    StrAppend(&out, "duet:request_success_total{", labels, ",finished_reason=\"", reason, "\"} ",
              it == finished_.end() ? 0 : it->second, "\n");
  }
  AppendHistogram(&out, "duet:time_to_first_token_seconds", "Time from arrival to the first output token.",
                  labels, time_to_first_token_);
  AppendHistogram(&out, "duet:inter_token_latency_seconds", "Time between consecutive output tokens.", labels,
                  inter_token_latency_);
  AppendHistogram(&out, "duet:e2e_request_latency_seconds", "Time from arrival to the last output.", labels,
                  end_to_end_latency_);
  if (!keys_.empty()) {
    auto key_labels = [&](const std::string& name) { return StrCat(labels, ",key=\"", EscapeLabelValue(name), "\""); };
    AppendHeader(&out, "duet:api_key_requests_total", "counter", "Generation requests admitted, per API key name.");
    for (const auto& [name, counters] : keys_) {
      AppendSample(&out, "duet:api_key_requests_total", key_labels(name), counters.requests);
    }
    AppendHeader(&out, "duet:api_key_refused_requests_total", "counter",
                 "Generation requests refused with 429 by a key's limit (rate or concurrency).");
    for (const auto& [name, counters] : keys_) {
      AppendSample(&out, "duet:api_key_refused_requests_total", StrCat(key_labels(name), ",limit=\"rate\""),
                   counters.refused_by_rate);
      AppendSample(&out, "duet:api_key_refused_requests_total", StrCat(key_labels(name), ",limit=\"concurrency\""),
                   counters.refused_by_concurrency);
    }
    AppendHeader(&out, "duet:api_key_prompt_tokens_total", "counter", "Prompt tokens of finished requests, per key.");
    for (const auto& [name, counters] : keys_) {
      AppendSample(&out, "duet:api_key_prompt_tokens_total", key_labels(name), counters.prompt_tokens);
    }
    AppendHeader(&out, "duet:api_key_generation_tokens_total", "counter",
                 "Output tokens of finished requests, per key.");
    for (const auto& [name, counters] : keys_) {
      AppendSample(&out, "duet:api_key_generation_tokens_total", key_labels(name), counters.completion_tokens);
    }
  }
  return out;
}

}  // namespace duet::api
