// Helpers for tests that need a GPU: they skip (GTEST_SKIP) where none is
// present, so a CPU-only machine reports them as skipped.
#ifndef DUET_TESTS_KERNELS_CUDA_CUDA_TEST_UTIL_H_
#define DUET_TESTS_KERNELS_CUDA_CUDA_TEST_UTIL_H_

#include <cuda_runtime.h>

#include <vector>

#include "kernels/cuda/cuda_check.h"

namespace duet::testing {

inline bool HasCudaDevice() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

#define DUET_SKIP_WITHOUT_GPU()                                  \
  do {                                                           \
    if (!::duet::testing::HasCudaDevice()) {                     \
      GTEST_SKIP() << "no CUDA device on this machine";          \
    }                                                            \
  } while (0)

// Owns a device buffer of T; copies to and from host vectors.
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t count) : count_(count) {
    DUET_CUDA_CHECK(cudaMalloc(&data_, count_ * sizeof(T) + 1));
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) {
    DUET_CUDA_CHECK(cudaMemcpy(data_, host.data(), count_ * sizeof(T),
                               cudaMemcpyHostToDevice));
  }
  ~DeviceBuffer() { cudaFree(data_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return data_; }
  std::vector<T> ToHost() const {
    std::vector<T> host(count_);
    DUET_CUDA_CHECK(cudaMemcpy(host.data(), data_, count_ * sizeof(T),
                               cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  size_t count_;
  T* data_ = nullptr;
};

}  // namespace duet::testing

#endif  // DUET_TESTS_KERNELS_CUDA_CUDA_TEST_UTIL_H_
