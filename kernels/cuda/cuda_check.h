// Error checking for CUDA runtime and NCCL calls. A failing call inside duet's
// own kernels launch code is a bug or a dead device, so it aborts with the
// call, file and line (glog CHECK semantics).
#ifndef DUET_KERNELS_CUDA_CUDA_CHECK_H_
#define DUET_KERNELS_CUDA_CUDA_CHECK_H_

#include <cuda_runtime.h>
#include <glog/logging.h>

#define DUET_CUDA_CHECK(call)                                              \
  do {                                                                     \
    const cudaError_t duet_cuda_status_ = (call);                          \
    CHECK(duet_cuda_status_ == cudaSuccess)                                \
        << #call << ": " << cudaGetErrorString(duet_cuda_status_);         \
  } while (0)

#endif  // DUET_KERNELS_CUDA_CUDA_CHECK_H_
