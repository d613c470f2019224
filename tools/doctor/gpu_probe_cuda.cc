// ProbeGpus for CUDA builds: the CUDA runtime (linked statically, so duet
// starts where libcudart is absent) for devices, P2P and copies; NVML for
// the driver version and NVLink; sysfs for the PCIe links; a child process
// for NCCL (nccl_check.h).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "common/str_cat.h"
#include "tools/doctor/gpu_probe.h"
#include "tools/doctor/nccl_check.h"
#include "tools/doctor/nvml_probe.h"

#ifndef DUET_DOCTOR_CUDA_ARCHITECTURES
#error "DUET_DOCTOR_CUDA_ARCHITECTURES (CMAKE_CUDA_ARCHITECTURES) must be defined"
#endif

namespace duet::doctor {
namespace {

constexpr size_t kPatternWords = size_t{1} << 20;  // 4 MiB copied for the P2P check
// Let the copies start before the link is read under load.
constexpr absl::Duration kLoadSettle = absl::Milliseconds(5);

std::string CudaErrorText(cudaError_t error) {
  return StrCat(cudaGetErrorName(error), ": ", cudaGetErrorString(error));
}

// Records the first failure; false once anything failed.
class Steps {
 public:
  bool Do(cudaError_t error, const char* what) {
    if (error != cudaSuccess && error_.empty()) error_ = StrCat(what, ": ", CudaErrorText(error));
    return error_.empty();
  }
  void Fail(std::string error) {
    if (error_.empty()) error_ = std::move(error);
  }
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

// Device memory freed on destruction.
class DeviceBuffer {
 public:
  DeviceBuffer(int device, size_t bytes, Steps* steps) : device_(device) {
    if (steps->Do(cudaSetDevice(device), "cudaSetDevice")) {
      steps->Do(cudaMalloc(&data_, bytes), StrCat("cudaMalloc on GPU ", device).c_str());
    }
  }
  ~DeviceBuffer() {
    if (data_ != nullptr && !abandoned_) {
      cudaSetDevice(device_);
      cudaFree(data_);
    }
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* get() const { return data_; }
  // After a copy that never finished: freeing could block forever.
  void Abandon() { abandoned_ = true; }

 private:
  int device_;
  void* data_ = nullptr;
  bool abandoned_ = false;
};

// Polls `event` until it completes or `timeout` passes.
bool WaitForEvent(cudaEvent_t event, absl::Duration timeout, Steps* steps) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    const cudaError_t state = cudaEventQuery(event);
    if (state == cudaSuccess) return true;
    if (state != cudaErrorNotReady) return steps->Do(state, "copy");
    if (absl::Now() > deadline) {
      steps->Fail(StrCat("copy did not finish within ", absl::FormatDuration(timeout)));
      return false;
    }
    absl::SleepFor(absl::Microseconds(200));
  }
}

std::vector<uint32_t> Pattern(uint32_t seed) {
  std::vector<uint32_t> words(kPatternWords);
  uint32_t state = seed;
  for (uint32_t& word : words) {
    state = state * 1664525u + 1013904223u;  // LCG: every word differs from its neighbours
    word = state;
  }
  return words;
}

// Copies a pattern src → dst → src with peer access enabled and compares
// both copies with what was sent. Sets `hung` when a copy never finished.
void VerifyPeerCopy(const GpuProbeOptions& options, P2pPair* pair, bool* hung) {
  Steps steps;
  const size_t bytes = kPatternWords * sizeof(uint32_t);
  const std::vector<uint32_t> sent = Pattern(0x9E3779B9u + pair->src * 7 + pair->dst);
  DeviceBuffer source(pair->src, bytes, &steps);
  DeviceBuffer back(pair->src, bytes, &steps);
  DeviceBuffer target(pair->dst, bytes, &steps);
  cudaEvent_t done = nullptr;
  if (steps.ok()) {
    steps.Do(cudaSetDevice(pair->src), "cudaSetDevice");
    steps.Do(cudaMemcpy(source.get(), sent.data(), bytes, cudaMemcpyHostToDevice), "upload");
    steps.Do(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), "cudaEventCreate");
    steps.Do(cudaMemcpyPeerAsync(target.get(), pair->dst, source.get(), pair->src, bytes, nullptr),
             "copy to the peer");
    steps.Do(cudaMemcpyPeerAsync(back.get(), pair->src, target.get(), pair->dst, bytes, nullptr),
             "copy back");
    steps.Do(cudaEventRecord(done, nullptr), "cudaEventRecord");
  }
  if (steps.ok() && !WaitForEvent(done, options.copy_timeout, &steps)) {
    if (cudaEventQuery(done) == cudaErrorNotReady) {
      *hung = true;
      source.Abandon();
      back.Abandon();
      target.Abandon();
    }
  }
  pair->copy_tested = true;
  std::vector<uint32_t> at_peer(kPatternWords);
  std::vector<uint32_t> returned(kPatternWords);
  if (steps.ok()) {
    steps.Do(cudaSetDevice(pair->dst), "cudaSetDevice");
    steps.Do(cudaMemcpy(at_peer.data(), target.get(), bytes, cudaMemcpyDeviceToHost), "download");
    steps.Do(cudaSetDevice(pair->src), "cudaSetDevice");
    steps.Do(cudaMemcpy(returned.data(), back.get(), bytes, cudaMemcpyDeviceToHost), "download");
  }
  if (done != nullptr && !*hung) cudaEventDestroy(done);
  if (!steps.ok()) {
    pair->error = steps.error();
    return;
  }
  for (size_t i = 0; i < kPatternWords; ++i) {
    if (at_peer[i] != sent[i] || returned[i] != sent[i]) {
      pair->error = StrCat("word ", i, " of ", kPatternWords, " came back wrong",
                           at_peer[i] != sent[i] ? " (already wrong on the peer)" : "");
      return;
    }
  }
  pair->copy_ok = true;
}

// Keeps the reading with the higher generation: the link under the most load.
void KeepBusiestReading(const PcieLink& reading, PcieLink* kept) {
  if (!reading.read) return;
  if (!kept->read || reading.current_generation > kept->current_generation) *kept = reading;
}

// Times `repetitions` copies src → dst (after one warm-up) and reads both
// links while they run.
void MeasureBandwidth(const GpuProbeOptions& options, SystemReport* report, Bandwidth* copy,
                      bool* hung) {
  Steps steps;
  const size_t bytes = static_cast<size_t>(options.bandwidth_bytes);
  const int repetitions = std::max(1, options.bandwidth_repetitions);
  copy->bytes = options.bandwidth_bytes;
  copy->repetitions = repetitions;
  DeviceBuffer source(copy->src, bytes, &steps);
  DeviceBuffer target(copy->dst, bytes, &steps);
  cudaStream_t stream = nullptr;
  std::vector<cudaEvent_t> marks(repetitions + 1, nullptr);
  if (steps.ok()) {
    steps.Do(cudaSetDevice(copy->src), "cudaSetDevice");
    steps.Do(cudaMemset(source.get(), 0x5A, bytes), "cudaMemset");
    steps.Do(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    for (cudaEvent_t& mark : marks) steps.Do(cudaEventCreate(&mark), "cudaEventCreate");
    steps.Do(cudaMemcpyPeerAsync(target.get(), copy->dst, source.get(), copy->src, bytes, stream),
             "warm-up copy");
    steps.Do(cudaEventRecord(marks[0], stream), "cudaEventRecord");
    for (int i = 0; i < repetitions && steps.ok(); ++i) {
      steps.Do(cudaMemcpyPeerAsync(target.get(), copy->dst, source.get(), copy->src, bytes, stream),
               "copy");
      steps.Do(cudaEventRecord(marks[i + 1], stream), "cudaEventRecord");
    }
  }
  if (steps.ok()) {
    absl::SleepFor(kLoadSettle);
    for (GpuInfo& gpu : report->gpus) {
      if (gpu.index != copy->src && gpu.index != copy->dst) continue;
      KeepBusiestReading(ReadPcieLink(options.sysfs_root, gpu.pci_bus_id), &gpu.pcie_under_load);
    }
    if (!WaitForEvent(marks.back(), options.copy_timeout, &steps) &&
        cudaEventQuery(marks.back()) == cudaErrorNotReady) {
      *hung = true;
      source.Abandon();
      target.Abandon();
    }
  }
  std::vector<double> seconds;
  for (int i = 0; i < repetitions && steps.ok(); ++i) {
    float ms = 0.0f;
    if (steps.Do(cudaEventElapsedTime(&ms, marks[i], marks[i + 1]), "cudaEventElapsedTime")) {
      seconds.push_back(ms / 1e3);
    }
  }
  if (!*hung) {
    for (cudaEvent_t mark : marks) {
      if (mark != nullptr) cudaEventDestroy(mark);
    }
    if (stream != nullptr) cudaStreamDestroy(stream);
  }
  if (!steps.ok() || seconds.empty()) {
    copy->error = steps.ok() ? "no timing" : steps.error();
    return;
  }
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2];
  if (median <= 0.0) {
    copy->error = "copy timed at zero";
    return;
  }
  copy->measured = true;
  copy->gb_per_s = static_cast<double>(bytes) / median / 1e9;
}

void ProbeDevices(const GpuProbeOptions& options, const NvmlInfo& nvml, int count,
                  SystemReport* report) {
  for (int device = 0; device < count; ++device) {
    GpuInfo gpu;
    gpu.index = device;
    cudaDeviceProp properties{};
    if (cudaGetDeviceProperties(&properties, device) == cudaSuccess) {
      gpu.name = properties.name;
      gpu.total_memory_bytes = static_cast<int64_t>(properties.totalGlobalMem);
      gpu.compute_capability_major = properties.major;
      gpu.compute_capability_minor = properties.minor;
    }
    char bus_id[32] = {};
    if (cudaDeviceGetPCIBusId(bus_id, sizeof(bus_id), device) == cudaSuccess) {
      gpu.pci_bus_id = NormalizePciBusId(bus_id);
    }
    size_t free_bytes = 0;
    size_t total_bytes = 0;
    if (cudaSetDevice(device) == cudaSuccess &&
        cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess) {
      // Taken after this process's own context was created (a few hundred
      // MiB); close enough for "is someone else using it".
      gpu.free_memory_bytes = static_cast<int64_t>(free_bytes);
    }
    for (const NvmlGpu& found : nvml.gpus) {
      if (!gpu.pci_bus_id.empty() && found.pci_bus_id == gpu.pci_bus_id) {
        gpu.nvlink_active_links = found.nvlink_active_links;
      }
    }
    gpu.pcie_idle = ReadPcieLink(options.sysfs_root, gpu.pci_bus_id);
    report->gpus.push_back(std::move(gpu));
  }
}

void ProbePeers(const GpuProbeOptions& options, SystemReport* report, bool* hung) {
  const int pairs[2][2] = {{0, 1}, {1, 0}};
  for (const auto& ends : pairs) {
    P2pPair pair;
    pair.src = ends[0];
    pair.dst = ends[1];
    int can_access = 0;
    const cudaError_t error = cudaDeviceCanAccessPeer(&can_access, pair.src, pair.dst);
    if (error != cudaSuccess)
      pair.error = StrCat("cudaDeviceCanAccessPeer: ", CudaErrorText(error));
    pair.can_access_peer = can_access != 0;
    report->p2p.push_back(pair);
  }
  for (P2pPair& pair : report->p2p) {
    if (!pair.can_access_peer) continue;
    cudaSetDevice(pair.src);
    const cudaError_t error = cudaDeviceEnablePeerAccess(pair.dst, 0);
    if (error != cudaSuccess && error != cudaErrorPeerAccessAlreadyEnabled) {
      pair.copy_tested = true;
      pair.error = StrCat("cudaDeviceEnablePeerAccess: ", CudaErrorText(error));
      cudaGetLastError();  // clear the sticky-free error so later calls report their own
    }
  }
  for (P2pPair& pair : report->p2p) {
    if (*hung || !pair.can_access_peer || pair.copy_tested) continue;
    VerifyPeerCopy(options, &pair, hung);
  }
}

}  // namespace

SystemReport ProbeGpus(const GpuProbeOptions& options) {
  SystemReport report;
  report.cuda_build = true;
  report.cuda_architectures = DUET_DOCTOR_CUDA_ARCHITECTURES;
  const char* p2p_disable = std::getenv("NCCL_P2P_DISABLE");
  if (p2p_disable != nullptr) report.nccl_p2p_disable = p2p_disable;
  report.bandwidth_skipped = !options.measure_bandwidth;

  const NvmlInfo nvml = ProbeNvml();  // no CUDA context
  report.nvml_loaded = nvml.loaded;
  report.nvml_error = nvml.error;
  report.driver_version = nvml.driver_version;
  // Before this process touches CUDA: the child initialises it on its own.
  report.nccl = RunNcclAllReduceCheck(options.nccl_timeout);

  int runtime_version = 0;
  if (cudaRuntimeGetVersion(&runtime_version) == cudaSuccess) {
    report.cuda_runtime_version = runtime_version;
  }
  int driver_version = 0;
  if (cudaDriverGetVersion(&driver_version) == cudaSuccess && driver_version > 0) {
    report.cuda_driver_version = driver_version;
  } else {
    report.cuda_driver_version = nvml.cuda_driver_version;
  }
  int count = 0;
  const cudaError_t count_error = cudaGetDeviceCount(&count);
  if (count_error == cudaErrorNoDevice || (count_error == cudaSuccess && count == 0)) return report;
  if (count_error != cudaSuccess) {
    // No driver at all reads as "no GPU"; anything else is worth a failure.
    if (count_error != cudaErrorInsufficientDriver || !nvml.gpus.empty() || nvml.loaded) {
      report.cuda_error = CudaErrorText(count_error);
    }
    return report;
  }
  ProbeDevices(options, nvml, count, &report);
  if (count < 2) return report;

  bool hung = false;
  ProbePeers(options, &report, &hung);
  report.copy_hung = hung;
  if (!options.measure_bandwidth) return report;
  for (const auto& ends : {std::pair<int, int>{0, 1}, std::pair<int, int>{1, 0}}) {
    Bandwidth copy;
    copy.src = ends.first;
    copy.dst = ends.second;
    if (hung) {
      copy.error = "skipped: an earlier copy never finished";
    } else {
      MeasureBandwidth(options, &report, &copy, &hung);
    }
    report.bandwidth.push_back(copy);
  }
  report.copy_hung = hung;
  return report;
}

}  // namespace duet::doctor
