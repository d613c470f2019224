// `duet bench serve`: the serving benchmark of vLLM's `bench serve`, against
// any OpenAI-compatible endpoint (tools/bench_serve/).
#ifndef DUET_TOOLS_DUET_BENCH_COMMAND_H_
#define DUET_TOOLS_DUET_BENCH_COMMAND_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace duet::cli {

struct BenchServeOptions {
  std::string base_url = "http://127.0.0.1:8000";
  std::string endpoint = "/v1/completions";
  std::string model;             // the "model" of each request
  std::string tokenizer;         // model directory or GGUF file with the tokenizer
  std::string api_key;
  std::string dataset_name = "random";
  std::string dataset_path;
  int64_t num_prompts = 100;
  int64_t random_input_len = 1024;
  int64_t random_output_len = 128;
  double random_range_ratio = 0.0;
  int64_t random_prefix_len = 0;
  int64_t sharegpt_output_len = 0;  // 0: each conversation's own answer length
  int64_t max_concurrency = 0;      // 0: no cap
  std::string request_rate = "inf";
  double burstiness = 1.0;
  int64_t num_warmups = 1;
  uint64_t seed = 0;
  bool ignore_eos = false;
  double temperature = 0.0;
  double request_timeout_s = 600;
  std::string metric_percentiles = "90,99";
  std::string goodput;             // "ttft:500 tpot:50"
  std::string result_file;         // also write the JSON report here
  std::string extra_body;          // a JSON object merged into every request body
  bool json = false;               // print JSON instead of the table
  bool progress = true;
};

// Runs the benchmark and prints its report. Exit status: 0 when at least one
// request succeeded (failures are counted in the report), 1 otherwise or on
// an error before the run, which is printed.
int RunBenchServe(const BenchServeOptions& options);

}  // namespace duet::cli

#endif  // DUET_TOOLS_DUET_BENCH_COMMAND_H_
