// RMSNorm on the GPU. Launch functions take device pointers, shapes and a
// stream; they enqueue work and return without synchronising.
#ifndef DUET_KERNELS_CUDA_RMSNORM_CUH_
#define DUET_KERNELS_CUDA_RMSNORM_CUH_

#include <cuda_runtime.h>

#include <cstdint>

namespace duet::kernels::cuda {

// y = x / sqrt(mean(x²) + eps) * weight, per row, accumulated in fp32.
// x, y: [rows, dim] device memory (y may alias x); weight: [dim].
void LaunchRmsNorm(const float* x, const float* weight, float* y, int64_t rows,
                   int64_t dim, float eps, cudaStream_t stream);

}  // namespace duet::kernels::cuda

#endif  // DUET_KERNELS_CUDA_RMSNORM_CUH_
