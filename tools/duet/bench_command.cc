#include "tools/duet/bench_command.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <limits>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "common/str_cat.h"
#include "router/api/model_assets.h"
#include "tools/bench_serve/bench_dataset.h"
#include "tools/bench_serve/bench_metrics.h"
#include "tools/bench_serve/bench_runner.h"

namespace duet::cli {
namespace {

absl::StatusOr<std::vector<double>> ParsePercentiles(const std::string& text) {
  std::vector<double> out;
  for (absl::string_view piece : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    double p = 0;
    if (!absl::SimpleAtod(piece, &p) || !(p > 0 && p < 100)) {
      return absl::InvalidArgumentError(
          StrCat("--metric-percentiles: '", std::string(piece), "' is not a number strictly between 0 and 100"));
    }
    out.push_back(p);
  }
  return out;
}

absl::StatusOr<double> ParseRate(const std::string& text) {
  if (text == "inf") return std::numeric_limits<double>::infinity();
  double rate = 0;
  if (!absl::SimpleAtod(text, &rate) || !(rate > 0)) {
    return absl::InvalidArgumentError(StrCat("--request-rate must be a positive number or inf, got '", text, "'"));
  }
  return rate;
}

absl::Status Run(const BenchServeOptions& options, int* exit_code) {
  if (options.model.empty()) return absl::InvalidArgumentError("--model is required (the model name to request)");
  if (options.endpoint != "/v1/completions" && options.endpoint != "/v1/chat/completions") {
    return absl::InvalidArgumentError(
        StrCat("--endpoint must be /v1/completions or /v1/chat/completions, got '", options.endpoint, "'"));
  }
  std::string base = options.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (base.ends_with("/v1")) base.resize(base.size() - 3);
  DUET_ASSIGN_OR_RETURN(bench::HttpUrl url, bench::ParseHttpUrl(base + options.endpoint));
  DUET_ASSIGN_OR_RETURN(const std::vector<double> percentiles, ParsePercentiles(options.metric_percentiles));
  DUET_ASSIGN_OR_RETURN(const bench::SloTargets slos, bench::ParseGoodput(options.goodput));
  DUET_ASSIGN_OR_RETURN(const double rate, ParseRate(options.request_rate));
  const std::string tokenizer_path = options.tokenizer.empty() ? options.model : options.tokenizer;
  absl::StatusOr<api::ModelAssets> assets = api::LoadModelAssets(tokenizer_path, "");
  if (!assets.ok()) {
    return absl::InvalidArgumentError(StrCat("cannot load the tokenizer (--tokenizer, default --model): ",
                                             assets.status().message()));
  }

  std::vector<bench::BenchPrompt> prompts;
  if (options.dataset_name == "random") {
    DUET_ASSIGN_OR_RETURN(prompts, bench::RandomDataset(*assets->tokenizer,
                                                        {.num_prompts = options.num_prompts,
                                                         .input_len = options.random_input_len,
                                                         .output_len = options.random_output_len,
                                                         .range_ratio = options.random_range_ratio,
                                                         .prefix_len = options.random_prefix_len,
                                                         .seed = options.seed}));
  } else if (options.dataset_name == "sharegpt") {
    if (options.dataset_path.empty()) return absl::InvalidArgumentError("--dataset-name sharegpt needs --dataset-path");
    std::optional<int64_t> output_len;
    if (options.sharegpt_output_len > 0) output_len = options.sharegpt_output_len;
    DUET_ASSIGN_OR_RETURN(prompts, bench::ShareGptDataset(*assets->tokenizer, options.dataset_path,
                                                          options.num_prompts, output_len, options.seed));
  } else {
    return absl::InvalidArgumentError(
        StrCat("--dataset-name must be random or sharegpt, got '", options.dataset_name, "'"));
  }

  bench::RunOptions run;
  run.url = url;
  run.chat = options.endpoint == "/v1/chat/completions";
  run.model = options.model;
  run.api_key = options.api_key;
  if (options.max_concurrency > 0) run.max_concurrency = options.max_concurrency;
  if (options.max_concurrency < 0) return absl::InvalidArgumentError("--max-concurrency must not be negative");
  run.request_rate = rate;
  run.burstiness = options.burstiness;
  run.ignore_eos = options.ignore_eos;
  run.temperature = options.temperature;
  if (options.num_warmups < 0) return absl::InvalidArgumentError("--num-warmups must not be negative");
  run.num_warmups = options.num_warmups;
  run.seed = options.seed;
  run.request_timeout_s = options.request_timeout_s;
  run.progress = options.progress && isatty(STDERR_FILENO);
  run.tokenizer = assets->tokenizer.get();
  if (!options.extra_body.empty()) {
    run.extra_body = nlohmann::json::parse(options.extra_body, nullptr, /*allow_exceptions=*/false);
    if (!run.extra_body.is_object()) return absl::InvalidArgumentError("--extra-body must be a JSON object");
  }
  DUET_ASSIGN_OR_RETURN(const bench::RunOutput output, bench::RunBenchmark(prompts, run));

  const bench::BenchReport report = bench::Summarize(output.results, output.duration_s, percentiles, slos);
  nlohmann::json json = bench::ReportJson(report);
  json["endpoint"] = base + options.endpoint;
  json["model"] = options.model;
  json["dataset"] = options.dataset_name;
  json["num_prompts"] = prompts.size();
  json["max_concurrency"] = options.max_concurrency > 0 ? nlohmann::json(options.max_concurrency) : nlohmann::json();
  json["request_rate"] = options.request_rate;
  json["burstiness"] = options.burstiness;
  if (!options.result_file.empty()) {
    std::ofstream file(options.result_file);
    file << json.dump(2) << "\n";
    if (!file) return absl::UnavailableError(StrCat("cannot write ", options.result_file));
  }
  if (options.json) {
    std::printf("%s\n", json.dump(2).c_str());
  } else {
    const std::string table = bench::ReportTable(
        report, {{"Endpoint", base + options.endpoint},
                 {"Dataset", StrCat(options.dataset_name, ", ", prompts.size(), " prompts")},
                 {"Maximum request concurrency",
                  options.max_concurrency > 0 ? StrCat(options.max_concurrency) : std::string("none")},
                 {"Request rate (req/s)", options.request_rate}});
    std::fputs(table.c_str(), stdout);
  }
  *exit_code = report.completed > 0 ? 0 : 1;
  return absl::OkStatus();
}

}  // namespace

int RunBenchServe(const BenchServeOptions& options) {
  int exit_code = 1;
  if (const absl::Status status = Run(options, &exit_code); !status.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return exit_code;
}

}  // namespace duet::cli
