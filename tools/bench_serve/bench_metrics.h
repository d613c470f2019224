// What `duet bench serve` measures, with vLLM's `bench serve` definitions:
//   TTFT  time from sending a request to its first streamed token text;
//   TPOT  per request, (E2EL − TTFT) / (output tokens − 1), for requests
//         with more than one output token (the first token excluded);
//   ITL   every gap between successive streamed chunks with text, pooled
//         over all requests;
//   E2EL  time from sending a request to the end of its stream.
// Throughputs divide totals over successful requests by the benchmark's
// wall time. Token counts are the server's own (the stream's `usage`), never
// what was asked for (for a server whose streams carry no usage, the
// tokenizer's count of what it returned). Percentiles interpolate linearly between order
// statistics (numpy's default, as vLLM reports them).
#ifndef DUET_TOOLS_BENCH_SERVE_BENCH_METRICS_H_
#define DUET_TOOLS_BENCH_SERVE_BENCH_METRICS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace duet::bench {

// One request as the client saw it. Times in seconds.
struct RequestResult {
  bool ok = false;
  std::string error;           // why it failed; empty when ok
  int64_t prompt_tokens = 0;   // usage.prompt_tokens
  int64_t output_tokens = 0;   // usage.completion_tokens
  int64_t cached_tokens = 0;   // usage.prompt_tokens_details.cached_tokens, when given
  // The stream carried no usage (llama-cpp-python's server, for one): the
  // counts are the benchmark tokenizer's, of the prompt and of the returned
  // text, as vLLM's bench counts for such servers.
  bool counted_by_tokenizer = false;
  double ttft = 0;
  double e2el = 0;
  std::vector<double> itl;
  std::string text;            // the generated text, concatenated
};

// Service-level objectives for goodput, in milliseconds; a request counts
// when it meets every one given.
struct SloTargets {
  std::optional<double> ttft_ms;
  std::optional<double> tpot_ms;
  std::optional<double> e2el_ms;
  bool any() const { return ttft_ms || tpot_ms || e2el_ms; }
};

// "ttft:500 tpot:50 e2el:3000" (any subset, space- or comma-separated);
// InvalidArgument naming the bad entry.
absl::StatusOr<SloTargets> ParseGoodput(std::string_view spec);

// The p-th percentile (0..100) of `values`, linear interpolation; 0 if empty.
double Percentile(std::vector<double> values, double p);

// A latency distribution in milliseconds.
struct Distribution {
  double mean = 0, median = 0, stddev = 0;
  std::vector<std::pair<double, double>> percentiles;  // (p, value)
};

Distribution Distribute(const std::vector<double>& seconds, const std::vector<double>& percentiles);

struct BenchReport {
  int64_t completed = 0;
  int64_t failed = 0;
  double duration_s = 0;
  int64_t total_input_tokens = 0;
  int64_t total_output_tokens = 0;
  int64_t total_cached_tokens = 0;
  int64_t counted_by_tokenizer = 0;    // successful requests without usage
  double request_throughput = 0;       // completed requests / s
  double output_throughput = 0;        // output tokens / s
  double total_token_throughput = 0;   // (input + output) tokens / s
  std::optional<double> goodput;       // requests meeting the SLOs / s
  Distribution ttft, tpot, itl, e2el;
  std::map<std::string, int64_t> errors;  // failure message → count
};

BenchReport Summarize(const std::vector<RequestResult>& results, double duration_s,
                      const std::vector<double>& percentiles, const SloTargets& slos);

// The report as a table for a person, headed by `title` lines, and as JSON.
std::string ReportTable(const BenchReport& report, const std::vector<std::pair<std::string, std::string>>& title);
nlohmann::json ReportJson(const BenchReport& report);

}  // namespace duet::bench

#endif  // DUET_TOOLS_BENCH_SERVE_BENCH_METRICS_H_
