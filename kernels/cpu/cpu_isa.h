// Which instruction-set variant of the CPU kernels runs. Detected once at run
// time; the AVX2 and AVX-512 kernels live in translation units compiled with
// those instruction sets and are only ever called when the CPU has them.
#ifndef DUET_KERNELS_CPU_CPU_ISA_H_
#define DUET_KERNELS_CPU_CPU_ISA_H_

#include <string_view>

namespace duet::kernels::cpu {

enum class Isa {
  kScalar,  // portable C++
  kAvx2,    // AVX2 + FMA + F16C
  kAvx512,  // the above + AVX-512 F/BW/VL (matmul only; other ops use AVX2)
};

// The best variant this CPU runs.
Isa DetectIsa();

// Whether this CPU can run `isa`.
bool IsaSupported(Isa isa);

std::string_view IsaName(Isa isa);

}  // namespace duet::kernels::cpu

#endif  // DUET_KERNELS_CPU_CPU_ISA_H_
