#include "tools/doctor/doctor_command.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "common/str_cat.h"
#include "tools/doctor/cpu_checks.h"
#include "tools/doctor/doctor_checks.h"
#include "tools/doctor/doctor_report.h"
#include "tools/doctor/fit_input.h"
#include "tools/doctor/gpu_probe.h"
#include "tools/doctor/model_bytes.h"

namespace duet::doctor {
namespace {

std::string GibText(int64_t bytes) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f GiB",
                static_cast<double>(bytes) / static_cast<double>(kGiB));
  return buffer;
}

// The fit on the GPUs found, or on duet-fit's 2 × 24 GiB workstation when
// there are none. A model that cannot be read becomes a failed check.
std::optional<DoctorFit> FitModel(const DoctorOptions& options, const SystemReport& system,
                                  std::vector<Check>* checks) {
  FitRequest request;
  request.model_dir = options.model_dir;
  request.quantization = options.quantization;
  request.options.max_model_len = options.max_model_len;
  request.options.gpu_memory_utilization = options.gpu_memory_utilization;
  std::string source;
  if (system.cuda_build && !system.gpus.empty()) {
    int64_t smallest = system.gpus.front().total_memory_bytes;
    for (const GpuInfo& gpu : system.gpus) smallest = std::min(smallest, gpu.total_memory_bytes);
    request.options.num_gpus = static_cast<int32_t>(system.gpus.size());
    request.options.gpu_memory_bytes = smallest;
    source = StrCat("detected: ", system.gpus.size(), " × ", GibText(smallest));
  } else {
    source = StrCat("no usable GPU: the default workstation of ", request.options.num_gpus, " × ",
                    GibText(request.options.gpu_memory_bytes));
  }
  const absl::StatusOr<FitReport> report = ComputeRequestedFit(request);
  if (!report.ok()) {
    checks->push_back(Check{"fit", "model fit", CheckStatus::kFail,
                            absl::StartsWith(report.status().message(), options.model_dir)
                                ? std::string(report.status().message())
                                : StrCat(options.model_dir, ": ", report.status().message()),
                            "give --model a GGUF file or a Hugging Face model directory (with its "
                            "config.json) "
                            "and a --max-model-len within the model's max_position_embeddings"});
    return std::nullopt;
  }
  // Fits beats borderline beats does not fit.
  const auto rank = [](Verdict verdict) {
    switch (verdict) {
      case Verdict::kFits:
        return 3;
      case Verdict::kBorderline:
        return 2;
      case Verdict::kDoesNotFit:
        return 1;
      case Verdict::kNotApplicable:
        return 0;
    }
    return 0;
  };
  Verdict best = Verdict::kNotApplicable;
  std::string layouts;
  for (const LayoutFit& fit : report->layouts) {
    if (fit.verdict == Verdict::kNotApplicable) continue;
    layouts +=
        StrCat(layouts.empty() ? "" : ", ", LayoutName(fit.layout), " ", VerdictName(fit.verdict));
    if (rank(fit.verdict) > rank(best)) best = fit.verdict;
  }
  const std::string detail = StrCat(layouts, " (", source, ")");
  const std::string fix =
      "use a quantized checkpoint (--quantization awq or fp8), lower --max-model-len, or raise "
      "--gpu-memory-utilization; the fit table below has the figures";
  if (best == Verdict::kFits) {
    checks->push_back(Check{"fit", "model fit", CheckStatus::kOk, detail, ""});
  } else if (best == Verdict::kBorderline) {
    checks->push_back(Check{"fit", "model fit", CheckStatus::kWarn, detail, fix});
  } else {
    checks->push_back(Check{"fit", "model fit", CheckStatus::kFail, detail, fix});
  }
  return DoctorFit{options.model_dir, *report, source};
}

}  // namespace

int RunDoctor(const DoctorOptions& options) {
  if (!(options.nccl_timeout_seconds > 0.0 && options.nccl_timeout_seconds <= 3600.0)) {
    std::fprintf(stderr, "error: --nccl-timeout must be in (0, 3600] seconds\n");
    return 2;
  }
  if (!(options.gpu_memory_utilization > 0.0 && options.gpu_memory_utilization <= 1.0)) {
    std::fprintf(stderr, "error: --gpu-memory-utilization must be in (0, 1]\n");
    return 2;
  }
  if (options.max_model_len < 0) {
    std::fprintf(stderr, "error: --max-model-len must be positive (0: the default)\n");
    return 2;
  }
  if (const absl::StatusOr<QuantizationChoice> choice =
          ParseQuantizationChoice(options.quantization);
      !choice.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(choice.status().message()).c_str());
    return 2;
  }
  if (options.model_dir.empty() && (options.quantization != "auto" || options.max_model_len != 0)) {
    std::fprintf(stderr, "error: --quantization and --max-model-len need --model\n");
    return 2;
  }

  GpuProbeOptions gpu_options;
  gpu_options.nccl_timeout = absl::Seconds(options.nccl_timeout_seconds);
  gpu_options.measure_bandwidth = !options.skip_bandwidth;
  std::fflush(nullptr);  // the GPU probe forks
  const SystemReport system = ProbeGpus(gpu_options);
  const CpuReport cpu = ProbeCpu(CpuProbeOptions{});

  std::vector<Check> checks = RunChecks(system, cpu);
  std::optional<DoctorFit> fit;
  if (!options.model_dir.empty()) fit = FitModel(options, system, &checks);
  const DoctorFit* fit_pointer = fit.has_value() ? &*fit : nullptr;
  if (options.json) {
    std::cout << DoctorJson(system, cpu, checks, fit_pointer).dump(2) << "\n";
  } else {
    std::cout << DoctorTable(checks, fit_pointer);
  }
  std::cout.flush();
  const int exit_status = AnyFailed(checks) ? 1 : 0;
  if (system.copy_hung) {
    std::fflush(nullptr);
    _exit(exit_status);  // a GPU copy never finished: CUDA's teardown could block
  }
  return exit_status;
}

}  // namespace duet::doctor
