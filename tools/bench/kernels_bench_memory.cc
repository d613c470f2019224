#include "tools/bench/kernels_bench_memory.h"

#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace duet::bench {
namespace {

constexpr size_t kHugePageBytes = size_t{2} << 20;

__attribute__((target("avx2"))) float SumAvx2(const float* data, size_t count) {
  // Four independent accumulators keep the loads, not the adds, the limit.
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  for (size_t i = 0; i + 32 <= count; i += 32) {
    acc0 = _mm256_add_ps(acc0, _mm256_load_ps(data + i));
    acc1 = _mm256_add_ps(acc1, _mm256_load_ps(data + i + 8));
    acc2 = _mm256_add_ps(acc2, _mm256_load_ps(data + i + 16));
    acc3 = _mm256_add_ps(acc3, _mm256_load_ps(data + i + 24));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  float sum = 0;
  for (float lane : lanes) sum += lane;
  return sum;
}

// kIterations × 12 fused multiply-adds into 12 independent accumulators:
// enough chains to cover the FMA latency on both FMA ports.
constexpr int64_t kFmaIterations = 50'000'000;

__attribute__((target("avx512f"))) float FmaLoopAvx512() {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < kFmaIterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm512_add_ps(sum, acc[i]);
  return _mm512_reduce_add_ps(sum);
}

__attribute__((target("avx2,fma"))) float FmaLoopAvx2() {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < kFmaIterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  alignas(32) float lanes[8];
  __m256 sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm256_add_ps(sum, acc[i]);
  _mm256_store_ps(lanes, sum);
  float total = 0;
  for (float lane : lanes) total += lane;
  return total;
}

float SumScalar(const float* data, size_t count) {
  float sum = 0;
  for (size_t i = 0; i < count; ++i) sum += data[i];
  return sum;
}

}  // namespace

LargeBuffer::LargeBuffer(size_t bytes) : bytes_(bytes) {
  const size_t rounded = (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  data_ = std::aligned_alloc(kHugePageBytes, rounded);
  if (data_ == nullptr) std::abort();
  madvise(data_, rounded, MADV_HUGEPAGE);  // best effort; plain pages otherwise
  std::memset(data_, 0, rounded);
}

LargeBuffer::~LargeBuffer() { std::free(data_); }

float StreamRead(const LargeBuffer& buffer, int num_threads) {
  static const bool has_avx2 = __builtin_cpu_supports("avx2");
  const float* data = static_cast<const float*>(buffer.data());
  const size_t count = buffer.bytes() / sizeof(float);
  std::vector<float> sums(num_threads);
  std::vector<std::thread> threads;
  for (int t = 0; t < num_threads; ++t) {
    threads.emplace_back([&, t] {
      // Shares start on 64-float (256-byte) boundaries for the aligned loads.
      const size_t begin = count * t / num_threads / 64 * 64;
      const size_t end = t + 1 == num_threads ? count : count * (t + 1) / num_threads / 64 * 64;
      sums[t] =
          has_avx2 ? SumAvx2(data + begin, end - begin) : SumScalar(data + begin, end - begin);
    });
  }
  for (std::thread& thread : threads) thread.join();
  float total = 0;
  for (float s : sums) total += s;
  return total;
}

double MeasureReadBandwidthGBps(int num_threads) {
  static const LargeBuffer buffer(size_t{512} << 20);
  double best_seconds = 1e30;
  volatile float sink = 0;
  for (int pass = 0; pass < 4; ++pass) {
    const auto start = std::chrono::steady_clock::now();
    sink = sink + StreamRead(buffer, num_threads);
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    best_seconds = std::min(best_seconds, elapsed.count());
  }
  return buffer.bytes() / best_seconds / 1e9;
}

double MeasureFmaPeakGflops(int num_threads) {
  static const bool has_avx512 = __builtin_cpu_supports("avx512f");
  static const bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (!has_avx512 && !has_avx2) return 0;
  const int lanes = has_avx512 ? 16 : 8;
  double best_seconds = 1e30;
  volatile float sink = 0;
  for (int pass = 0; pass < 3; ++pass) {
    std::vector<float> sums(num_threads);
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < num_threads; ++t) {
      threads.emplace_back([&, t] { sums[t] = has_avx512 ? FmaLoopAvx512() : FmaLoopAvx2(); });
    }
    for (std::thread& thread : threads) thread.join();
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    best_seconds = std::min(best_seconds, elapsed.count());
    for (float sum : sums) sink = sink + sum;
  }
  return 2.0 * lanes * 12 * kFmaIterations * num_threads / best_seconds / 1e9;
}

}  // namespace duet::bench
