// Sends the benchmark's prompts to an OpenAI-compatible endpoint
// (/v1/completions or /v1/chat/completions, streamed, with
// stream_options.include_usage so the server reports its own token counts)
// and times every streamed chunk. Arrivals: all at once (request rate inf)
// or a gamma process of the given rate (burstiness 1: Poisson; below 1
// burstier, above more regular), either under an optional cap on requests
// in flight. Warm-up requests go first and are not counted; a failed
// warm-up stops the run.
#ifndef DUET_TOOLS_BENCH_SERVE_BENCH_RUNNER_H_
#define DUET_TOOLS_BENCH_SERVE_BENCH_RUNNER_H_

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "tools/bench_serve/bench_dataset.h"
#include "tools/bench_serve/bench_metrics.h"
#include "tools/bench_serve/http_stream.h"

namespace duet::bench {

struct RunOptions {
  HttpUrl url;                 // base URL + endpoint
  bool chat = false;           // the endpoint is chat/completions
  std::string model;           // "model" of every request
  std::string api_key;         // bearer token; empty: none
  std::optional<int64_t> max_concurrency;
  double request_rate = std::numeric_limits<double>::infinity();
  double burstiness = 1.0;
  bool ignore_eos = false;
  double temperature = 0.0;
  int64_t num_warmups = 1;
  uint64_t seed = 0;
  double request_timeout_s = 600;
  bool progress = false;       // a progress bar on stderr
  // Fields merged into every request body (e.g. a response_format); a JSON
  // object, or null for none.
  nlohmann::json extra_body;
  // Counts tokens of requests whose stream has no usage; null: such a
  // request fails.
  const tokenizer::Tokenizer* tokenizer = nullptr;
};

// The JSON body of one request.
std::string RequestBody(const BenchPrompt& prompt, const RunOptions& options);

// Reads one request's server-sent events as they arrive and keeps its
// timings: times are seconds since the request was sent.
class StreamTimer {
 public:
  StreamTimer(bool chat, double sent_at) : chat_(chat), sent_at_(sent_at) {}
  // `body` is the next piece of the stream, received at `now`.
  void Feed(std::string_view body, double now);
  // The result once the stream ended at `now` with HTTP `status`; without
  // usage in the stream, ok with counted_by_tokenizer set and counts zero.
  RequestResult Finish(int status, double now);

 private:
  void Event(std::string_view data, double now);

  bool chat_;
  double sent_at_;
  std::string buffer_;
  std::string raw_;  // the body, kept for error messages when not a stream
  RequestResult result_;
  bool saw_done_ = false;
  bool saw_usage_ = false;
  double last_chunk_ = 0;
  bool first_chunk_seen_ = false;
};

struct RunOutput {
  std::vector<RequestResult> results;  // one per prompt, in prompt order
  double duration_s = 0;
};

absl::StatusOr<RunOutput> RunBenchmark(const std::vector<BenchPrompt>& prompts, const RunOptions& options);

}  // namespace duet::bench

#endif  // DUET_TOOLS_BENCH_SERVE_BENCH_RUNNER_H_
