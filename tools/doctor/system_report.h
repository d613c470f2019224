// What `duet doctor` found on this machine: plain data filled by the probes
// (gpu_probe.h, cpu_checks.h) and judged by the rules (doctor_checks.h). No
// CUDA types, so the rules and their tests build everywhere.
//
// Conventions: 0 or -1 (as commented) means "not known"; an `error` string is
// empty when the step succeeded or did not run.
#ifndef DUET_TOOLS_DOCTOR_SYSTEM_REPORT_H_
#define DUET_TOOLS_DOCTOR_SYSTEM_REPORT_H_

#include <cstdint>
#include <string>
#include <vector>

namespace duet::doctor {

// One GPU's PCIe link as sysfs gives it. Widths in lanes, generations 1..6;
// 0 when unknown. `port_*` are the upstream port's (the slot's) capabilities,
// 0 when the device has no readable upstream port.
struct PcieLink {
  bool read = false;  // false: no link files for this device (error says why)
  int32_t current_width = 0;
  int32_t max_width = 0;  // the card's
  int32_t current_generation = 0;
  int32_t max_generation = 0;  // the card's
  int32_t port_max_width = 0;
  int32_t port_max_generation = 0;
  std::string error;
};

struct GpuInfo {
  int32_t index = 0;  // CUDA device index (NVML's index without CUDA)
  std::string name;
  int64_t total_memory_bytes = 0;
  int64_t free_memory_bytes = -1;  // -1: unknown
  int32_t compute_capability_major = 0;
  int32_t compute_capability_minor = 0;
  std::string pci_bus_id;            // sysfs form, "0000:01:00.0"
  int32_t nvlink_active_links = -1;  // -1: unknown (no NVML)
  PcieLink pcie_idle;                // read before any copy
  PcieLink pcie_under_load;          // read during the bandwidth copies; read=false if none
};

// Peer-to-peer between an ordered pair of GPUs (src reads/writes dst).
struct P2pPair {
  int32_t src = 0;
  int32_t dst = 1;
  bool can_access_peer = false;  // cudaDeviceCanAccessPeer
  bool copy_tested = false;      // a pattern was copied src→dst→src with peer access on
  bool copy_ok = false;          // ... and came back intact
  std::string error;
};

// One all-reduce over the first two GPUs with NCCL, in a child process.
struct NcclCheck {
  bool ran = false;
  bool ok = false;  // finished without an NCCL/CUDA error
  bool timed_out = false;
  bool value_correct = false;
  double seconds = 0.0;        // communicator setup + all-reduce, as the parent saw it
  std::string error;           // NCCL/CUDA error text, or why it did not run
  std::string skipped_reason;  // set when ran is false
};

// Device-to-device copy bandwidth in one direction.
struct Bandwidth {
  int32_t src = 0;
  int32_t dst = 1;
  bool measured = false;
  double gb_per_s = 0.0;  // 1e9 bytes per second, median of the repetitions
  int64_t bytes = 0;      // per copy
  int32_t repetitions = 0;
  std::string error;
};

struct SystemReport {
  bool cuda_build = false;           // this duet was built with CUDA
  std::string cuda_error;            // cudaGetDeviceCount's error, if any
  std::string driver_version;        // "550.54.14" (NVML); empty: unknown
  int32_t cuda_driver_version = 0;   // 12040 = CUDA 12.4, the newest the driver supports
  int32_t cuda_runtime_version = 0;  // the runtime duet was built with
  std::string cuda_architectures;    // CMAKE_CUDA_ARCHITECTURES as built, "86;89"
  bool nvml_loaded = false;
  std::string nvml_error;
  std::string nccl_p2p_disable;  // NCCL_P2P_DISABLE in this environment; empty: unset
  std::vector<GpuInfo> gpus;
  std::vector<P2pPair> p2p;  // ordered pairs of the first two GPUs
  NcclCheck nccl;
  std::vector<Bandwidth> bandwidth;  // 0→1 and 1→0
  bool bandwidth_skipped = false;    // --skip-bandwidth
  // A copy never finished: its buffers were left in place, and tearing CUDA
  // down at exit could block, so the process should leave with _exit.
  bool copy_hung = false;
};

// The CPU path: what the router, the tokenizer and CPU workers run on.
struct CpuReport {
  std::string model;  // /proc/cpuinfo "model name"
  int32_t logical_cores = 0;
  std::string isa;               // the CPU kernels' variant: scalar, avx2, avx512
  bool vector_isa = false;       // avx2 or better
  int64_t ram_total_bytes = -1;  // -1: unknown
  int64_t ram_available_bytes = -1;
  int64_t shm_bytes = -1;  // size of /dev/shm; -1: unknown
  // CPU backend matmul against the reference backend.
  bool matmul_ran = false;
  bool matmul_ok = false;
  double matmul_max_error = 0.0;  // largest |cpu - reference| / (1 + |reference|)
  std::string matmul_error;
  // Two Gloo ranks over 127.0.0.1: one all-reduce.
  bool gloo_ran = false;
  bool gloo_ok = false;
  double gloo_seconds = 0.0;
  std::string gloo_error;
};

}  // namespace duet::doctor

#endif  // DUET_TOOLS_DOCTOR_SYSTEM_REPORT_H_
