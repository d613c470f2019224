#include "tests/kernels/test_backends.h"

#include <cstring>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_isa.h"

namespace duet::kernels::testing {
namespace {

class HostMemory final : public BackendMemory {
 public:
  void* Allocate(size_t bytes) override { return ::operator new(bytes); }
  void Free(void* ptr) override { ::operator delete(ptr); }
  void CopyIn(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void CopyOut(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
};

std::vector<BackendUnderTest> MakeRegistry() {
  std::vector<BackendUnderTest> backends;
  // Every instruction-set variant this CPU runs, on two threads so the
  // threaded paths are exercised, plus the default factory on three threads
  // (uneven splits).
  for (cpu::Isa isa : {cpu::Isa::kScalar, cpu::Isa::kAvx2, cpu::Isa::kAvx512}) {
    if (!cpu::IsaSupported(isa)) continue;
    backends.push_back({"cpu_" + std::string(cpu::IsaName(isa)) + "_2threads",
                        [isa] { return cpu::MakeCpuBackendForIsa(isa, 2); }, MakeHostMemory,
                        QuantizedMatmul::kInt8});
  }
  backends.push_back({"cpu_default_3threads", [] { return MakeCpuBackend(3); }, MakeHostMemory,
                      QuantizedMatmul::kInt8});
  backends.push_back({"cpu_default_fp32_3threads",
                      [] { return MakeCpuBackend(3, QuantizedMatmul::kFloat); }, MakeHostMemory,
                      QuantizedMatmul::kFloat});
  // A CUDA backend joins here under #ifdef DUET_WITH_CUDA with its factory and
  // a BackendMemory over cudaMalloc/cudaMemcpy.
  return backends;
}

}  // namespace

std::unique_ptr<BackendMemory> MakeHostMemory() { return std::make_unique<HostMemory>(); }

const std::vector<BackendUnderTest>& BackendsUnderTest() {
  static const std::vector<BackendUnderTest> backends = MakeRegistry();
  return backends;
}

}  // namespace duet::kernels::testing
