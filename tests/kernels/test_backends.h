// The backends the kernel tests check against the reference: a registry a
// new backend joins with one entry in test_backends.cc (the CUDA backend
// under DUET_WITH_CUDA), plus how tests move data into the memory a backend
// computes on (host memory for CPU backends, device memory for CUDA).
#ifndef DUET_TESTS_KERNELS_TEST_BACKENDS_H_
#define DUET_TESTS_KERNELS_TEST_BACKENDS_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "kernels/ops.h"

namespace duet::kernels::testing {

// Allocation and copies for the memory a backend addresses.
class BackendMemory {
 public:
  virtual ~BackendMemory() = default;
  virtual void* Allocate(size_t bytes) = 0;
  virtual void Free(void* ptr) = 0;
  virtual void CopyIn(void* backend_dst, const void* host_src, size_t bytes) = 0;
  virtual void CopyOut(void* host_dst, const void* backend_src, size_t bytes) = 0;
};

struct BackendUnderTest {
  std::string name;  // unique, used in test names: letters, digits, '_'
  std::function<std::unique_ptr<Backend>()> make_backend;
  std::function<std::unique_ptr<BackendMemory>()> make_memory;
  // How it multiplies block-quantized weights: kInt8 results must equal
  // kernels/quant_dot.h's Int8Dot bit for bit, kFloat ones the exact product
  // within fp32 rounding.
  QuantizedMatmul quantized_matmul = QuantizedMatmul::kFloat;
};

// gtest prints a parameter by its name.
inline void PrintTo(const BackendUnderTest& backend, std::ostream* os) { *os << backend.name; }

// Every non-reference backend this build can run on this machine.
const std::vector<BackendUnderTest>& BackendsUnderTest();

// Plain host memory (new/delete, memcpy).
std::unique_ptr<BackendMemory> MakeHostMemory();

// An array in backend memory, filled from and read back to host vectors.
template <typename T>
class BackendArray {
 public:
  BackendArray(BackendMemory& memory, const std::vector<T>& host)
      : memory_(memory), size_(host.size()) {
    data_ = static_cast<T*>(memory_.Allocate(bytes() + 1));  // never a zero-size allocation
    memory_.CopyIn(data_, host.data(), bytes());
  }
  ~BackendArray() { memory_.Free(data_); }
  BackendArray(const BackendArray&) = delete;
  BackendArray& operator=(const BackendArray&) = delete;

  T* get() { return data_; }
  std::vector<T> ToHost() const {
    std::vector<T> host(size_);
    memory_.CopyOut(host.data(), data_, bytes());
    return host;
  }

 private:
  size_t bytes() const { return size_ * sizeof(T); }

  BackendMemory& memory_;
  size_t size_;
  T* data_;
};

}  // namespace duet::kernels::testing

#endif  // DUET_TESTS_KERNELS_TEST_BACKENDS_H_
