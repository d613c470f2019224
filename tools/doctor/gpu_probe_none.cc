// ProbeGpus for builds without CUDA: no CUDA runtime to ask, but the driver's
// NVML (when installed) still lists the GPUs, and sysfs their PCIe links, so
// the report can say "GPUs present, this build cannot use them".
#include <cstdlib>

#include "tools/doctor/gpu_probe.h"
#include "tools/doctor/nvml_probe.h"

namespace duet::doctor {

SystemReport ProbeGpus(const GpuProbeOptions& options) {
  SystemReport report;
  report.cuda_build = false;
  const char* p2p_disable = std::getenv("NCCL_P2P_DISABLE");
  if (p2p_disable != nullptr) report.nccl_p2p_disable = p2p_disable;
  const NvmlInfo nvml = ProbeNvml();
  report.nvml_loaded = nvml.loaded;
  report.nvml_error = nvml.error;
  report.driver_version = nvml.driver_version;
  report.cuda_driver_version = nvml.cuda_driver_version;
  for (const NvmlGpu& found : nvml.gpus) {
    GpuInfo& gpu = report.gpus.emplace_back();
    gpu.index = found.index;
    gpu.name = found.name;
    gpu.total_memory_bytes = found.total_memory_bytes;
    gpu.free_memory_bytes = found.free_memory_bytes;
    gpu.compute_capability_major = found.compute_capability_major;
    gpu.compute_capability_minor = found.compute_capability_minor;
    gpu.pci_bus_id = found.pci_bus_id;
    gpu.nvlink_active_links = found.nvlink_active_links;
    gpu.pcie_idle = ReadPcieLink(options.sysfs_root, found.pci_bus_id);
  }
  report.nccl.skipped_reason = "this build of duet has no CUDA support";
  report.bandwidth_skipped = !options.measure_bandwidth;
  return report;
}

}  // namespace duet::doctor
