// Memory for the kernel benchmarks: large buffers backed by transparent huge
// pages where the kernel allows it, the machine's measured streaming read
// bandwidth that GEMV throughput is compared with, and its FMA peak that the
// prefill GEMMs are compared with.
#ifndef DUET_TOOLS_BENCH_KERNELS_BENCH_MEMORY_H_
#define DUET_TOOLS_BENCH_KERNELS_BENCH_MEMORY_H_

#include <cstddef>
#include <cstdint>

namespace duet::bench {

// A zero-filled, 2 MiB-aligned allocation advised to use huge pages; every
// page is touched once at construction so no benchmark pays for page faults.
class LargeBuffer {
 public:
  explicit LargeBuffer(size_t bytes);
  ~LargeBuffer();
  LargeBuffer(const LargeBuffer&) = delete;
  LargeBuffer& operator=(const LargeBuffer&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  void* data_;
  size_t bytes_;
};

// Reads the whole buffer once on `num_threads` threads (each its contiguous
// share, summed with AVX2 loads where the CPU has AVX2) and returns the sum so
// the reads cannot be optimised away.
float StreamRead(const LargeBuffer& buffer, int num_threads);

// The best of four StreamRead passes over a 512 MiB buffer on `num_threads`
// threads, in GB/s (1e9 bytes). Measured afresh on every call, so a GEMV's
// throughput can be compared with the bandwidth of the same moment on a
// machine whose load varies.
double MeasureReadBandwidthGBps(int num_threads);

// The fp32 fused-multiply-add peak of `num_threads` threads in GFLOP/s: the
// best of three passes of independent FMA chains in the widest vectors the
// CPU has (AVX-512, else AVX2; 0 without either), as the CPU backend's own
// choice of kernels is.
double MeasureFmaPeakGflops(int num_threads);

}  // namespace duet::bench

#endif  // DUET_TOOLS_BENCH_KERNELS_BENCH_MEMORY_H_
