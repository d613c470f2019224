#include "kernels/cuda/rmsnorm.cuh"

#include "kernels/cuda/cuda_check.h"

namespace duet::kernels::cuda {
namespace {

constexpr int kThreadsPerBlock = 256;
constexpr int kWarpSize = 32;

__device__ float WarpSum(float value) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    value += __shfl_xor_sync(0xffffffffu, value, offset);
  }
  return value;
}

// Sum over the block; every thread receives the total.
__device__ float BlockSum(float value) {
  __shared__ float warp_sums[kThreadsPerBlock / kWarpSize];
  __shared__ float total;
  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  value = WarpSum(value);
  if (lane == 0) warp_sums[warp] = value;
  __syncthreads();
  if (warp == 0) {
    value = lane < kThreadsPerBlock / kWarpSize ? warp_sums[lane] : 0.0f;
    value = WarpSum(value);
    if (lane == 0) total = value;
  }
  __syncthreads();
  return total;
}

// One block per row.
__global__ void RmsNormKernel(const float* __restrict__ x,
                              const float* __restrict__ weight,
                              float* y, int64_t dim, float eps) {
  const int64_t row = blockIdx.x;
  const float* x_row = x + row * dim;
  float* y_row = y + row * dim;
  float sum_squares = 0.0f;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    sum_squares += x_row[i] * x_row[i];
  }
  const float inv_rms = rsqrtf(BlockSum(sum_squares) / static_cast<float>(dim) + eps);
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    y_row[i] = x_row[i] * inv_rms * weight[i];
  }
}

}  // namespace

void LaunchRmsNorm(const float* x, const float* weight, float* y, int64_t rows,
                   int64_t dim, float eps, cudaStream_t stream) {
  if (rows == 0 || dim == 0) return;
  RmsNormKernel<<<static_cast<unsigned>(rows), kThreadsPerBlock, 0, stream>>>(
      x, weight, y, dim, eps);
  DUET_CUDA_CHECK(cudaGetLastError());
}

}  // namespace duet::kernels::cuda
