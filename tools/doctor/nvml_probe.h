// What the NVIDIA driver's management library (NVML) says about the GPUs:
// driver version, the newest CUDA it supports, and per GPU its name, memory,
// PCI bus id and active NVLink links. libnvidia-ml.so.1 is loaded with
// dlopen, never linked, so duet starts on machines without the driver; then
// `loaded` is false and `error` says why.
//
// Thread-compatible: NVML is initialised and shut down inside the call.
#ifndef DUET_TOOLS_DOCTOR_NVML_PROBE_H_
#define DUET_TOOLS_DOCTOR_NVML_PROBE_H_

#include <cstdint>
#include <string>
#include <vector>

namespace duet::doctor {

struct NvmlGpu {
  int32_t index = 0;  // NVML's index (PCI order; may differ from CUDA's)
  std::string name;
  std::string pci_bus_id;  // sysfs form, "0000:01:00.0"
  int64_t total_memory_bytes = 0;
  int64_t free_memory_bytes = -1;
  int32_t compute_capability_major = 0;
  int32_t compute_capability_minor = 0;
  int32_t nvlink_active_links = -1;  // -1: unknown; 0 also where NVLink is unsupported
};

struct NvmlInfo {
  bool loaded = false;
  std::string error;
  std::string driver_version;       // "550.54.14"
  int32_t cuda_driver_version = 0;  // 12040 = 12.4
  std::vector<NvmlGpu> gpus;
};

NvmlInfo ProbeNvml();

}  // namespace duet::doctor

#endif  // DUET_TOOLS_DOCTOR_NVML_PROBE_H_
