// `duet doctor`: probes this machine (GPUs, then the CPU path), judges what
// it found (doctor_checks.h) and prints a table or JSON (doctor_report.h).
// With a model it also runs the fit calculator (fit.h) on the GPUs found, or
// on duet-fit's default 2 × 24 GiB workstation when there are none, and adds
// a [fit] check: ok when some layout fits, warn when the best is borderline,
// fail when none fits or the model cannot be read.
#ifndef DUET_TOOLS_DOCTOR_DOCTOR_COMMAND_H_
#define DUET_TOOLS_DOCTOR_DOCTOR_COMMAND_H_

#include <cstdint>
#include <string>

namespace duet::doctor {

struct DoctorOptions {
  bool json = false;
  // With a model: the fit flags (fit_input.h's FitRequest).
  std::string model_dir;
  std::string quantization = "auto";
  int64_t max_model_len = 0;            // 0: fit's default
  double gpu_memory_utilization = 0.9;  // (0, 1]
  double nccl_timeout_seconds = 20.0;   // > 0
  bool skip_bandwidth = false;
};

// Exit status of `duet doctor`: 0 when no check failed, 1 when one did, 2
// for options out of range (message on stderr). Prints to stdout. Forks a
// child for the NCCL check, so call it while the process has one thread.
int RunDoctor(const DoctorOptions& options);

}  // namespace duet::doctor

#endif  // DUET_TOOLS_DOCTOR_DOCTOR_COMMAND_H_
