// The rules of `duet doctor`: from what the probes found (system_report.h)
// to a list of checks, each with a status, what was seen and, unless it is
// ok, what to do. Pure functions; no I/O; safe from any thread.
//
// The checks, in order (ids in brackets):
//   [gpus]      GPUs present. None: info "duet will run on the CPU" and the
//               CPU checks decide. One: warn (tp 2 / ep 2 need two). A
//               build without CUDA on a machine whose driver lists GPUs:
//               warn, rebuild with -DDUET_CUDA=ON. A CUDA error other than
//               "no device" with no GPU listed: fail.
//   [gpu_memory] warn when another process holds more than
//               kBusyMemoryFraction of a GPU's memory (the budget duet
//               computes from --gpu-memory-utilization assumes it is free).
//   [driver]    the newest CUDA the driver supports against the CUDA runtime
//               duet was built with: an older major fails (the runtime
//               refuses to start); an older minor warns (CUDA's minor
//               version compatibility runs it, but PTX built by the newer
//               toolkit cannot be JIT-compiled by the older driver).
//   [kernels]   each GPU's compute capability against the architectures duet
//               was compiled for: a GPU needs SASS of its major with a minor
//               no higher than its own, or PTX of an architecture no newer
//               (JIT). None: fail, rebuild with its architecture.
//   [nvlink]    0 active links: info, expected on GeForce cards.
//   [p2p]       not reported: info (NCCL stages through host memory; the
//               stock RTX 4090 driver reports no P2P). Reported but a copy
//               comes back wrong or fails: fail, NCCL_P2P_DISABLE=1.
//   [nccl]      one all-reduce over two GPUs in a child process with a
//               timeout. Fails or times out with P2P on: fail,
//               NCCL_P2P_DISABLE=1; with P2P off: fail, NCCL_DEBUG=INFO and
//               /dev/shm (NCCL's host transport lives there).
//   [pcie_width_<i>] x4 or narrower: warn (a quarter of x16 or less: move the
//               card to a CPU-attached slot, check BIOS bifurcation);
//               narrower than the card: warn (x8/x8 is what consumer boards
//               give two cards). The width read under load wins when there is
//               one.
//   [pcie_gen_<i>] generation read during the bandwidth copies below what
//               card and slot both support: warn. Consumer GPUs drop to gen1
//               at idle to save power, so an idle reading below the maximum
//               is info, never a warning.
//   [bandwidth_<src>_<dst>] measured device-to-device copy bandwidth against
//               the narrower of the two links: per-lane GB/s ×
//               width × kPcieEfficiency (gen4 x8: 15.8 GB/s raw, ≈12.6
//               expected; the x8/x8 workstations duet targets measure 14–16).
//               The width and generation are those read under load. Below
//               kLowBandwidthFraction of that: warn. A copy that fails or
//               never finishes: fail.
//   [cpu_isa]   the CPU kernels' instruction set; scalar (no AVX2): warn.
//   [ram]       available memory under kLowRamAvailableBytes: warn.
//   [shm]       /dev/shm under kMinShmBytes: warn (Gloo and NCCL's host
//               transport use shared memory; docker's default is 64 MiB).
//   [cpu_matmul] the CPU backend's matmul against the reference backend.
//   [gloo]      a two-rank Gloo all-reduce over 127.0.0.1.
#ifndef DUET_TOOLS_DOCTOR_DOCTOR_CHECKS_H_
#define DUET_TOOLS_DOCTOR_DOCTOR_CHECKS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tools/doctor/system_report.h"

namespace duet::doctor {

// Another process holds more than this fraction of a GPU's memory: duet's
// budget (utilization × total) would not be free.
inline constexpr double kBusyMemoryFraction = 0.1;
// Usable share of the raw PCIe rate for a large copy (TLP headers, flow
// control); 0.8 puts gen4 x8 at 12.6 GB/s, the low end of what x8/x8
// workstations measure.
inline constexpr double kPcieEfficiency = 0.8;
// Below this fraction of the expected bandwidth something other than the
// link width limits copies (P2P through host memory, a chipset slot, IOMMU).
inline constexpr double kLowBandwidthFraction = 0.6;
// x4 and narrower: a quarter of x16, typically a chipset-attached slot.
inline constexpr int32_t kNarrowLinkWidth = 4;
// Docker gives containers 64 MiB of /dev/shm; NCCL and Gloo need more.
inline constexpr int64_t kMinShmBytes = int64_t{1} << 30;
// Less free RAM than this: loading checkpoints and CPU workers will swap.
inline constexpr int64_t kLowRamAvailableBytes = int64_t{4} << 30;

enum class CheckStatus { kOk, kWarn, kFail, kInfo, kSkipped };

// "ok", "warn", "fail", "info", "skipped".
std::string_view CheckStatusName(CheckStatus status);

struct Check {
  std::string id;  // stable, for scripts: "p2p", "pcie_width_0", ...
  std::string title;
  CheckStatus status = CheckStatus::kOk;
  std::string detail;  // what was found
  std::string fix;     // what to do; empty only when status is ok
};

// Every check, GPU checks first, then the CPU ones.
std::vector<Check> RunChecks(const SystemReport& system, const CpuReport& cpu);

// The GPU and CPU halves of RunChecks.
std::vector<Check> GpuChecks(const SystemReport& system);
std::vector<Check> CpuChecks(const CpuReport& cpu);

// Usable bytes per second, in GB/s (1e9), of one direction of a link:
// per-lane rate × width × kPcieEfficiency; 0 for an unknown generation.
double ExpectedPcieGbPerSecond(int32_t generation, int32_t width);

// Whether a GPU of compute capability major.minor has a kernel image among
// `architectures` (CMAKE_CUDA_ARCHITECTURES: "86;89", "89-real",
// "90-virtual", "90a"). "all", "all-major" and "native" cover every GPU.
bool HasKernelImage(std::string_view architectures, int32_t major, int32_t minor);

// Whether any check failed (the exit status of duet doctor).
bool AnyFailed(const std::vector<Check>& checks);

}  // namespace duet::doctor

#endif  // DUET_TOOLS_DOCTOR_DOCTOR_CHECKS_H_
