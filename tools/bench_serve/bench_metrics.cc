#include "tools/bench_serve/bench_metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/str_cat.h"

namespace duet::bench {
namespace {

std::string Fixed(double value, int digits = 2) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", digits, value);
  return buffer;
}

std::string PercentName(double p) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%g", p);
  return buffer;
}

void Row(std::string* out, std::string_view name, std::string_view value) {
  std::string line(name);
  line.resize(std::max<size_t>(line.size() + 1, 40), ' ');
  out->append(StrCat(line, value, "\n"));
}

void DistributionRows(std::string* out, std::string_view title, std::string_view key, const Distribution& d) {
  const std::string bar(50, '-');
  const std::string heading = StrCat(" ", title, " ");
  const size_t pad = (bar.size() - std::min(bar.size(), heading.size())) / 2;
  out->append(StrCat(std::string(pad, '-'), heading, std::string(bar.size() - pad - heading.size(), '-'), "\n"));
  Row(out, StrCat("Mean ", key, " (ms):"), Fixed(d.mean));
  Row(out, StrCat("Median ", key, " (ms):"), Fixed(d.median));
  for (const auto& [p, value] : d.percentiles) Row(out, StrCat("P", PercentName(p), " ", key, " (ms):"), Fixed(value));
}

nlohmann::json DistributionJson(const Distribution& d) {
  nlohmann::json json = {{"mean_ms", d.mean}, {"median_ms", d.median}, {"std_ms", d.stddev}};
  for (const auto& [p, value] : d.percentiles) json[StrCat("p", PercentName(p), "_ms")] = value;
  return json;
}

}  // namespace

absl::StatusOr<SloTargets> ParseGoodput(std::string_view spec) {
  SloTargets slos;
  for (absl::string_view entry : absl::StrSplit(absl::string_view(spec.data(), spec.size()), absl::ByAnyChar(" ,"),
                                                absl::SkipEmpty())) {
    const size_t colon = entry.find(':');
    double value = 0;
    if (colon == absl::string_view::npos || !absl::SimpleAtod(entry.substr(colon + 1), &value) || !(value > 0)) {
      return absl::InvalidArgumentError(
          StrCat("--goodput: '", std::string(entry), "' is not NAME:MILLISECONDS with a positive number"));
    }
    const absl::string_view name = entry.substr(0, colon);
    if (name == "ttft") {
      slos.ttft_ms = value;
    } else if (name == "tpot") {
      slos.tpot_ms = value;
    } else if (name == "e2el") {
      slos.e2el_ms = value;
    } else {
      return absl::InvalidArgumentError(
          StrCat("--goodput: unknown metric '", std::string(name), "' (ttft, tpot or e2el)"));
    }
  }
  return slos;
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = p / 100.0 * static_cast<double>(values.size() - 1);
  const size_t low = static_cast<size_t>(std::floor(rank));
  const size_t high = std::min(values.size() - 1, low + 1);
  return values[low] + (values[high] - values[low]) * (rank - static_cast<double>(low));
}

Distribution Distribute(const std::vector<double>& seconds, const std::vector<double>& percentiles) {
  Distribution d;
  if (seconds.empty()) {
    for (double p : percentiles) d.percentiles.emplace_back(p, 0.0);
    return d;
  }
  std::vector<double> ms(seconds.size());
  std::transform(seconds.begin(), seconds.end(), ms.begin(), [](double s) { return s * 1000.0; });
  double sum = 0;
  for (double v : ms) sum += v;
  d.mean = sum / static_cast<double>(ms.size());
  double squares = 0;
  for (double v : ms) squares += (v - d.mean) * (v - d.mean);
  d.stddev = std::sqrt(squares / static_cast<double>(ms.size()));
  d.median = Percentile(ms, 50);
  for (double p : percentiles) d.percentiles.emplace_back(p, Percentile(ms, p));
  return d;
}

BenchReport Summarize(const std::vector<RequestResult>& results, double duration_s,
                      const std::vector<double>& percentiles, const SloTargets& slos) {
  BenchReport report;
  report.duration_s = duration_s;
  std::vector<double> ttfts, tpots, itls, e2els;
  int64_t good = 0;
  for (const RequestResult& r : results) {
    if (!r.ok) {
      ++report.failed;
      ++report.errors[r.error];
      continue;
    }
    ++report.completed;
    report.total_input_tokens += r.prompt_tokens;
    report.total_output_tokens += r.output_tokens;
    report.total_cached_tokens += r.cached_tokens;
    report.counted_by_tokenizer += r.counted_by_tokenizer ? 1 : 0;
    ttfts.push_back(r.ttft);
    e2els.push_back(r.e2el);
    itls.insert(itls.end(), r.itl.begin(), r.itl.end());
    double tpot = 0;
    if (r.output_tokens > 1) {
      tpot = (r.e2el - r.ttft) / static_cast<double>(r.output_tokens - 1);
      tpots.push_back(tpot);
    }
    if (slos.any() && (!slos.ttft_ms || r.ttft * 1000 <= *slos.ttft_ms) &&
        (!slos.tpot_ms || tpot * 1000 <= *slos.tpot_ms) && (!slos.e2el_ms || r.e2el * 1000 <= *slos.e2el_ms)) {
      ++good;
    }
  }
  if (duration_s > 0) {
    report.request_throughput = static_cast<double>(report.completed) / duration_s;
    report.output_throughput = static_cast<double>(report.total_output_tokens) / duration_s;
    report.total_token_throughput =
        static_cast<double>(report.total_input_tokens + report.total_output_tokens) / duration_s;
    if (slos.any()) report.goodput = static_cast<double>(good) / duration_s;
  }
  report.ttft = Distribute(ttfts, percentiles);
  report.tpot = Distribute(tpots, percentiles);
  report.itl = Distribute(itls, percentiles);
  report.e2el = Distribute(e2els, percentiles);
  return report;
}

std::string ReportTable(const BenchReport& report, const std::vector<std::pair<std::string, std::string>>& title) {
  std::string out = StrCat(std::string(14, '='), " Serving Benchmark Result ", std::string(10, '='), "\n");
  for (const auto& [name, value] : title) Row(&out, StrCat(name, ":"), value);
  Row(&out, "Successful requests:", StrCat(report.completed));
  Row(&out, "Failed requests:", StrCat(report.failed));
  Row(&out, "Benchmark duration (s):", Fixed(report.duration_s));
  Row(&out, "Total input tokens:", StrCat(report.total_input_tokens));
  Row(&out, "Total generated tokens:", StrCat(report.total_output_tokens));
  Row(&out, "Total cached prompt tokens:", StrCat(report.total_cached_tokens));
  if (report.counted_by_tokenizer > 0) {
    Row(&out, "Requests without usage (tokenizer counts):", StrCat(report.counted_by_tokenizer));
  }
  Row(&out, "Request throughput (req/s):", Fixed(report.request_throughput));
  if (report.goodput) Row(&out, "Request goodput (req/s):", Fixed(*report.goodput));
  Row(&out, "Output token throughput (tok/s):", Fixed(report.output_throughput));
  Row(&out, "Total token throughput (tok/s):", Fixed(report.total_token_throughput));
  DistributionRows(&out, "Time to First Token", "TTFT", report.ttft);
  DistributionRows(&out, "Time per Output Token (excl. 1st token)", "TPOT", report.tpot);
  DistributionRows(&out, "Inter-token Latency", "ITL", report.itl);
  DistributionRows(&out, "End-to-end Latency", "E2EL", report.e2el);
  if (!report.errors.empty()) {
    out.append(StrCat(std::string(20, '-'), " Failures ", std::string(20, '-'), "\n"));
    for (const auto& [message, count] : report.errors) out.append(StrCat(count, " x ", message, "\n"));
  }
  out.append(std::string(50, '=') + "\n");
  return out;
}

nlohmann::json ReportJson(const BenchReport& report) {
  nlohmann::json errors = nlohmann::json::object();
  for (const auto& [message, count] : report.errors) errors[message] = count;
  nlohmann::json json = {
      {"completed", report.completed},
      {"failed", report.failed},
      {"duration_s", report.duration_s},
      {"total_input_tokens", report.total_input_tokens},
      {"total_output_tokens", report.total_output_tokens},
      {"total_cached_tokens", report.total_cached_tokens},
      {"counted_by_tokenizer", report.counted_by_tokenizer},
      {"request_throughput", report.request_throughput},
      {"output_throughput", report.output_throughput},
      {"total_token_throughput", report.total_token_throughput},
      {"ttft", DistributionJson(report.ttft)},
      {"tpot", DistributionJson(report.tpot)},
      {"itl", DistributionJson(report.itl)},
      {"e2el", DistributionJson(report.e2el)},
      {"errors", errors},
  };
  if (report.goodput) json["request_goodput"] = *report.goodput;
  return json;
}

}  // namespace duet::bench
