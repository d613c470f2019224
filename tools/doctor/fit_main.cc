// duet-fit: will a model fit on these GPUs, and how much KV cache is left?
//
//   duet-fit (--model DIR | --config FILE) [--quantization auto|none|awq|fp8|int4]
//            [--gpus 2] [--gpu-memory-gib 24] [--gpu-memory-utilization 0.9]
//            [--max-model-len N] [--max-num-batched-tokens 2048]
//            [--max-num-seqs 256] [--json]
//
// Prints, for tensor parallel, expert parallel (MoE) and one model per GPU,
// the weights, runtime and activation memory per GPU, the KV-cache capacity
// in tokens and concurrent sequences, and a verdict (tools/doctor/fit.h has
// the formulas). Reads config.json only; no GPU is touched. --max-model-len
// defaults to 8192 or the model's max_position_embeddings when smaller.
// Exit status 0 with a report, 1 on an error (message on stderr), 2 on
// misuse.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "common/command_line.h"
#include "common/status_macros.h"
#include "tools/doctor/fit.h"
#include "tools/doctor/fit_input.h"
#include "tools/doctor/fit_report.h"

ABSL_FLAG(std::string, model, "", "Hugging Face model directory (its config.json is read)");
ABSL_FLAG(std::string, config, "", "a config.json file, instead of --model");
ABSL_FLAG(std::string, quantization, "auto",
          "weight format: auto (config.json's quantization_config), none (bf16), awq, fp8, int4");
ABSL_FLAG(int32_t, gpus, 2, "number of GPUs");
ABSL_FLAG(double, gpu_memory_gib, 24.0, "memory of each GPU in GiB");
ABSL_FLAG(double, gpu_memory_utilization, 0.9, "fraction of each GPU's memory duet may use");
ABSL_FLAG(int64_t, max_model_len, 0,
          "longest sequence; 0: 8192 or the model's max_position_embeddings when smaller");
ABSL_FLAG(int64_t, max_num_batched_tokens, 2048, "most tokens in one step (activation workspace)");
ABSL_FLAG(int64_t, max_num_seqs, 256, "most sequences in one step (logits workspace)");
ABSL_FLAG(bool, json, false, "print JSON instead of a table");

namespace duet::doctor {
namespace {

absl::StatusOr<std::string> Run() {
  const double gpu_memory_gib = absl::GetFlag(FLAGS_gpu_memory_gib);
  if (!(gpu_memory_gib > 0.0 && gpu_memory_gib < 1e6)) {
    return absl::InvalidArgumentError("--gpu-memory-gib must be a positive number of GiB");
  }
  FitRequest request;
  request.model_dir = absl::GetFlag(FLAGS_model);
  request.config_file = absl::GetFlag(FLAGS_config);
  request.quantization = absl::GetFlag(FLAGS_quantization);
  FitOptions& options = request.options;
  options.num_gpus = absl::GetFlag(FLAGS_gpus);
  options.gpu_memory_bytes = std::llround(gpu_memory_gib * static_cast<double>(kGiB));
  options.gpu_memory_utilization = absl::GetFlag(FLAGS_gpu_memory_utilization);
  options.max_model_len = absl::GetFlag(FLAGS_max_model_len);
  options.max_num_batched_tokens = absl::GetFlag(FLAGS_max_num_batched_tokens);
  options.max_num_seqs = absl::GetFlag(FLAGS_max_num_seqs);
  DUET_ASSIGN_OR_RETURN(const FitReport report, ComputeRequestedFit(request));

  const std::string& model_name =
      request.model_dir.empty() ? request.config_file : request.model_dir;
  if (absl::GetFlag(FLAGS_json)) return FitReportJson(report, model_name).dump(2) + "\n";
  return FitReportTable(report, model_name);
}

}  // namespace
}  // namespace duet::doctor

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "duet-fit (--model DIR | --config FILE) [--quantization auto|none|awq|fp8|int4] [--gpus N] "
      "[--gpu-memory-gib GIB] [--gpu-memory-utilization F] [--max-model-len N] [--json]");
  const std::vector<std::string> positional = duet::ParseFlags(argc, argv);
  if (!positional.empty()) {
    std::fprintf(stderr, "duet-fit: unexpected argument \"%s\" (see --help)\n",
                 positional[0].c_str());
    return 2;
  }
  const absl::StatusOr<std::string> output = duet::doctor::Run();
  if (!output.ok()) {
    std::fprintf(stderr, "duet-fit: %s\n", std::string(output.status().message()).c_str());
    return 1;
  }
  std::cout << *output;
  return 0;
}
