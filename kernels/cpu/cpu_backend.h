// The optimised CPU backend with its instruction set chosen explicitly, for
// tests and benchmarks that compare variants. Model code uses
// MakeCpuBackend() (ops.h), which picks the best variant the CPU has.
#ifndef DUET_KERNELS_CPU_CPU_BACKEND_H_
#define DUET_KERNELS_CPU_CPU_BACKEND_H_

#include <memory>

#include "kernels/cpu/cpu_isa.h"
#include "kernels/ops.h"

namespace duet::kernels::cpu {

// `isa` must be supported by this CPU (IsaSupported). num_threads <= 0 uses
// every core. The backend owns its thread pool.
std::unique_ptr<Backend> MakeCpuBackendForIsa(
    Isa isa, int num_threads, QuantizedMatmul quantized = QuantizedMatmul::kInt8);

}  // namespace duet::kernels::cpu

#endif  // DUET_KERNELS_CPU_CPU_BACKEND_H_
