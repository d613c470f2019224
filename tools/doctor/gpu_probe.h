// Fills the GPU half of `duet doctor`'s SystemReport: the GPUs and their
// memory, driver and CUDA versions, NVLink (NVML, loaded at run time), P2P
// verified by copies, one NCCL all-reduce in a child process with a timeout,
// the PCIe links from sysfs (idle and during the copies) and the
// device-to-device bandwidth.
//
// Two implementations, one per build: gpu_probe_cuda.cc in CUDA builds
// (DUET_WITH_CUDA) and gpu_probe_none.cc otherwise, which reports that this
// duet has no CUDA support and lists the GPUs NVML sees.
//
// ProbeGpus forks a child process for the NCCL check before this process
// touches CUDA, so call it before anything else in the process uses CUDA and
// while the process has no other threads. A copy that never completes (a
// broken P2P path) is reported as an error after copy_timeout instead of
// hanging; the GPU work stops there.
#ifndef DUET_TOOLS_DOCTOR_GPU_PROBE_H_
#define DUET_TOOLS_DOCTOR_GPU_PROBE_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "tools/doctor/pcie_sysfs.h"
#include "tools/doctor/system_report.h"

namespace duet::doctor {

struct GpuProbeOptions {
  std::string sysfs_root = kSysfsRoot;
  // The NCCL child is killed after this long.
  absl::Duration nccl_timeout = absl::Seconds(20);
  bool measure_bandwidth = true;
  int64_t bandwidth_bytes = int64_t{256} << 20;  // per copy
  int32_t bandwidth_repetitions = 5;             // median of these, after one warm-up copy
  // Longest wait for one P2P check copy or one direction's bandwidth copies.
  absl::Duration copy_timeout = absl::Seconds(20);
};

SystemReport ProbeGpus(const GpuProbeOptions& options);

}  // namespace duet::doctor

#endif  // DUET_TOOLS_DOCTOR_GPU_PROBE_H_
