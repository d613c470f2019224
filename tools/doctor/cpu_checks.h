// The CPU path of `duet doctor`: what the CPU is, how much memory and
// /dev/shm there is, and two real runs of what CPU serving uses: the CPU
// backend's matmul against the reference backend, and a two-rank Gloo
// all-reduce over 127.0.0.1. The rules that judge the result are in
// doctor_checks.h.
//
// ProbeCpu starts threads (the CPU backend's pool, the Gloo ranks) and joins
// them all before it returns. Call it from one thread at a time.
#ifndef DUET_TOOLS_DOCTOR_CPU_CHECKS_H_
#define DUET_TOOLS_DOCTOR_CPU_CHECKS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "tools/doctor/system_report.h"

namespace duet::doctor {

struct CpuProbeOptions {
  std::string proc_root = "/proc";
  std::string shm_path = "/dev/shm";
  // Joining the Gloo group and the all-reduce each end by then.
  absl::Duration gloo_timeout = absl::Seconds(20);
};

CpuReport ProbeCpu(const CpuProbeOptions& options);

// /proc/meminfo's MemTotal and MemAvailable in bytes; -1 for a missing one.
void ParseMemInfo(std::string_view meminfo, int64_t* total_bytes, int64_t* available_bytes);

// The first "model name" of /proc/cpuinfo; "" when there is none.
std::string ParseCpuModel(std::string_view cpuinfo);

}  // namespace duet::doctor

#endif  // DUET_TOOLS_DOCTOR_CPU_CHECKS_H_
