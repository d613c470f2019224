// CPU kernel benchmarks on a 2-thread pool. Decode GEMVs report the weight
// bytes streamed per second next to the streaming read bandwidth measured
// right after them (kernels_bench_memory.h), and weights per second (the
// quantized formats read fewer bytes per weight); the prefill GEMM reports
// GFLOP/s.
// docs/performance.md has the command line and recorded results.
#include <benchmark/benchmark.h>
#include <glog/logging.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "common/half.h"
#include "kernels/group_quant.h"
#include "kernels/ops.h"
#include "tools/bench/kernels_bench_memory.h"

namespace duet::bench {
namespace {

using kernels::Backend;
using kernels::Weight;
using kernels::WeightType;
using kernels::QuantizedMatmul;

constexpr int kThreads = 2;
constexpr size_t kMiB = size_t{1} << 20;

// The CPU backend on 1 or kThreads threads, quantized weights multiplied
// against int8 activations (the default) or in fp32.
Backend& SharedBackend(int num_threads = kThreads, QuantizedMatmul mode = QuantizedMatmul::kInt8) {
  static const std::unique_ptr<Backend> two_threads = kernels::MakeCpuBackend(kThreads);
  static const std::unique_ptr<Backend> one_thread = kernels::MakeCpuBackend(1);
  static const std::unique_ptr<Backend> two_threads_fp32 = kernels::MakeCpuBackend(kThreads, QuantizedMatmul::kFloat);
  if (mode == QuantizedMatmul::kFloat) {
    CHECK_EQ(num_threads, kThreads);
    return *two_threads_fp32;
  }
  return num_threads == 1 ? *one_thread : *two_threads;
}

std::vector<float> RandomFloats(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> values(count);
  for (float& v : values) v = dist(rng);
  return values;
}

// Copies of one random weight matrix that together exceed `min_total_bytes`.
// Cycling through them keeps the last-level cache (32 MiB here) from holding
// the weights between iterations: every GEMV streams from DRAM, as each layer
// of a real forward pass does.
class WeightCopies {
 public:
  WeightCopies(WeightType type, int64_t rows, int64_t cols, size_t min_total_bytes)
      : type_(type), rows_(rows), cols_(cols) {
    const size_t bytes = size_t(rows) * cols * kernels::WeightTypeSize(type);
    const std::vector<float> values = RandomFloats(size_t(rows) * cols, 7);
    const size_t num_copies = std::max<size_t>(1, (min_total_bytes + bytes - 1) / bytes);
    for (size_t c = 0; c < num_copies; ++c) {
      copies_.push_back(std::make_unique<LargeBuffer>(bytes));
      auto* bits = static_cast<uint16_t*>(copies_.back()->data());
      for (size_t i = 0; i < values.size(); ++i) {
        if (type == WeightType::kF32) {
          static_cast<float*>(copies_.back()->data())[i] = values[i];
        } else {
          bits[i] = type == WeightType::kBF16 ? FloatToBf16(values[i]) : FloatToF16(values[i]);
        }
      }
    }
  }

  Weight Next() {
    const Weight w{copies_[next_]->data(), type_, rows_, cols_};
    next_ = (next_ + 1) % copies_.size();
    return w;
  }
  double bytes_each() const { return double(rows_) * cols_ * kernels::WeightTypeSize(type_); }

 private:
  WeightType type_;
  int64_t rows_, cols_;
  std::vector<std::unique_ptr<LargeBuffer>> copies_;
  size_t next_ = 0;
};

void BM_ReadBandwidth(benchmark::State& state) {
  LargeBuffer buffer(512 * kMiB);
  for (auto _ : state) benchmark::DoNotOptimize(StreamRead(buffer, kThreads));
  state.counters["GB/s"] =
      benchmark::Counter(buffer.bytes() / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_ReadBandwidth)->UseRealTime()->Unit(benchmark::kMillisecond);

// y[1, n] = x[1, k] · W[n, k]ᵀ on `num_threads` threads over `weights`
// (WeightCopies or GroupWeightCopies).
template <typename Copies>
void DecodeGemv(benchmark::State& state, Copies& weights, int64_t k, int64_t n, int num_threads,
                QuantizedMatmul mode = QuantizedMatmul::kInt8) {
  const std::vector<float> x = RandomFloats(k, 1);
  std::vector<float> y(n);
  Backend& backend = SharedBackend(num_threads, mode);
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    backend.Matmul(x.data(), weights.Next(), y.data(), 1);
    benchmark::DoNotOptimize(y.data());
  }
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  const double weight_gbps = weights.bytes_each() * state.iterations() / elapsed.count() / 1e9;
  // Measured right after the GEMV: on a shared machine the bandwidth
  // available varies from minute to minute.
  const double read_gbps = MeasureReadBandwidthGBps(num_threads);
  state.counters["weight_GB/s"] = weight_gbps;
  state.counters["read_bw_GB/s"] = read_gbps;
  state.counters["pct_of_read_bw"] = 100 * weight_gbps / read_gbps;
  state.counters["Gweights/s"] = double(n) * k * state.iterations() / elapsed.count() / 1e9;
}

void BM_DecodeGemv(benchmark::State& state, WeightType type, int64_t k, int64_t n, int num_threads) {
  WeightCopies weights(type, n, k, 256 * kMiB);
  DecodeGemv(state, weights, k, n, num_threads);
}

BENCHMARK_CAPTURE(BM_DecodeGemv, bf16_k4096_n4096, WeightType::kBF16, 4096, 4096, kThreads)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_DecodeGemv, bf16_k2048_n6144, WeightType::kBF16, 2048, 6144, kThreads)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_DecodeGemv, f16_k4096_n4096, WeightType::kF16, 4096, 4096, kThreads)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_DecodeGemv, f32_k4096_n4096, WeightType::kF32, 4096, 4096, kThreads)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_DecodeGemv, f32_k2048_n6144, WeightType::kF32, 2048, 6144, kThreads)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
// One thread against one thread's read bandwidth: how much of the machine's
// bandwidth a single core can draw.
BENCHMARK_CAPTURE(BM_DecodeGemv, bf16_k4096_n4096_1thread, WeightType::kBF16, 4096, 4096, 1)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// Copies of one random group-quantized matrix as a checkpoint stores it
// (group_quant.h): random codes, scales near 0.01, zero points of 8; data,
// scales and zeros of a copy in one buffer, each 64-byte aligned.
class GroupWeightCopies {
 public:
  // group: inputs per scale (kAwqInt4, kInt4) or, for kF8E4M3, the block
  // columns (block rows = group too; 0: one scale per output row).
  GroupWeightCopies(WeightType type, int64_t rows, int64_t cols, int64_t group, size_t min_total_bytes) {
    Weight w{.type = type, .rows = rows, .cols = cols, .group_size = group};
    if (type == WeightType::kAwqInt4) {
      w.scale_type = WeightType::kF16;
    } else if (type == WeightType::kInt4) {
      w.scale_type = WeightType::kBF16;
    } else {
      w.scale_type = WeightType::kF32;
      w.group_size = group == 0 ? cols : group;
      w.scale_rows = group == 0 ? 1 : group;
    }
    // Sizes from placeholders: GroupQuant*Bytes read only the shape fields.
    w.data = w.scales = this;
    if (type == WeightType::kAwqInt4) w.zeros = this;
    data_bytes_ = kernels::GroupQuantDataBytes(w);
    scale_bytes_ = kernels::GroupQuantScaleBytes(w);
    zero_bytes_ = kernels::GroupQuantZeroBytes(w);
    const size_t total = Align(data_bytes_) + Align(scale_bytes_) + zero_bytes_;
    const size_t num_copies = std::max<size_t>(1, (min_total_bytes + total - 1) / total);
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> scale(0.005f, 0.015f);
    for (size_t c = 0; c < num_copies; ++c) {
      copies_.push_back(std::make_unique<LargeBuffer>(total));
      auto* base = static_cast<std::byte*>(copies_.back()->data());
      auto* words = reinterpret_cast<uint32_t*>(base);
      for (size_t i = 0; i < data_bytes_ / 4; ++i) words[i] = static_cast<uint32_t>(rng());
      if (type == WeightType::kF8E4M3) {
        // Random bytes, NaN codes (0x7f, 0xff) replaced by the largest finite value.
        auto* bytes = reinterpret_cast<uint8_t*>(base);
        for (size_t i = 0; i < data_bytes_; ++i) {
          if ((bytes[i] & 0x7f) == 0x7f) bytes[i] = static_cast<uint8_t>(bytes[i] - 1);
        }
      }
      std::byte* scales = base + Align(data_bytes_);
      const size_t scale_count = scale_bytes_ / kernels::WeightTypeSize(w.scale_type);
      for (size_t i = 0; i < scale_count; ++i) {
        const float s = scale(rng);
        if (w.scale_type == WeightType::kF32) {
          reinterpret_cast<float*>(scales)[i] = s;
        } else {
          reinterpret_cast<uint16_t*>(scales)[i] = w.scale_type == WeightType::kF16 ? FloatToF16(s) : FloatToBf16(s);
        }
      }
      std::memset(scales + Align(scale_bytes_), 0x88, zero_bytes_);
      Weight copy = w;
      copy.data = base;
      copy.scales = scales;
      copy.zeros = zero_bytes_ ? scales + Align(scale_bytes_) : nullptr;
      weights_.push_back(copy);
    }
  }

  Weight Next() {
    const Weight w = weights_[next_];
    next_ = (next_ + 1) % weights_.size();
    return w;
  }
  double bytes_each() const { return double(data_bytes_ + scale_bytes_ + zero_bytes_); }

 private:
  static size_t Align(size_t bytes) { return (bytes + 63) / 64 * 64; }
  size_t data_bytes_ = 0, scale_bytes_ = 0, zero_bytes_ = 0;
  std::vector<std::unique_ptr<LargeBuffer>> copies_;
  std::vector<Weight> weights_;
  size_t next_ = 0;
};

// The decode GEMV over weights as a quantized checkpoint stores them: bytes
// are the packed codes with their scales and zero points. The 4-bit types
// run with int8 activations (the default) and in fp32 (_fp32).
void BM_DecodeGemvQuantized(benchmark::State& state, WeightType type, int64_t group, int64_t k, int64_t n,
                            QuantizedMatmul mode = QuantizedMatmul::kInt8) {
  GroupWeightCopies weights(type, n, k, group, 256 * kMiB);
  DecodeGemv(state, weights, k, n, kThreads, mode);
}
BENCHMARK_CAPTURE(BM_DecodeGemvQuantized, awq_g128_k4096_n4096, WeightType::kAwqInt4, 128, 4096, 4096)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_DecodeGemvQuantized, awq_g128_k4096_n4096_fp32, WeightType::kAwqInt4, 128, 4096, 4096,
                  QuantizedMatmul::kFloat)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_DecodeGemvQuantized, int4_g128_k4096_n4096, WeightType::kInt4, 128, 4096, 4096)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_DecodeGemvQuantized, int4_g128_k4096_n4096_fp32, WeightType::kInt4, 128, 4096, 4096,
                  QuantizedMatmul::kFloat)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_DecodeGemvQuantized, fp8_block128_k4096_n4096, WeightType::kF8E4M3, 128, 4096, 4096)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_DecodeGemvQuantized, fp8_channel_k4096_n4096, WeightType::kF8E4M3, 0, 4096, 4096)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// y[m, n] = x[m, k] · W[n, k]ᵀ, compute-bound.
template <typename Copies>
void PrefillGemm(benchmark::State& state, Copies& weights, int64_t m, int64_t k, int64_t n,
                 QuantizedMatmul mode = QuantizedMatmul::kInt8) {
  const std::vector<float> x = RandomFloats(m * k, 1);
  std::vector<float> y(m * n);
  Backend& backend = SharedBackend(kThreads, mode);
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    backend.Matmul(x.data(), weights.Next(), y.data(), m);
    benchmark::DoNotOptimize(y.data());
  }
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  const double gflops = 2.0 * m * k * n * state.iterations() / elapsed.count() / 1e9;
  static const double peak = MeasureFmaPeakGflops(kThreads);
  state.counters["GFLOP/s"] = gflops;
  state.counters["fma_peak_GFLOP/s"] = peak;
  state.counters["pct_of_fma_peak"] = peak > 0 ? 100 * gflops / peak : 0;
}

void BM_PrefillGemm(benchmark::State& state, WeightType type, int64_t m, int64_t k, int64_t n) {
  WeightCopies weights(type, n, k, 0);
  PrefillGemm(state, weights, m, k, n);
}
BENCHMARK_CAPTURE(BM_PrefillGemm, bf16_m64_k4096_n4096, WeightType::kBF16, 64, 4096, 4096)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_PrefillGemm, f32_m64_k4096_n4096, WeightType::kF32, 64, 4096, 4096)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_PrefillGemmQuantized(benchmark::State& state, WeightType type, int64_t group, int64_t m, int64_t k,
                             int64_t n, QuantizedMatmul mode = QuantizedMatmul::kInt8) {
  GroupWeightCopies weights(type, n, k, group, 0);
  PrefillGemm(state, weights, m, k, n, mode);
}
BENCHMARK_CAPTURE(BM_PrefillGemmQuantized, awq_g128_m64_k4096_n4096, WeightType::kAwqInt4, 128, 64, 4096, 4096)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_PrefillGemmQuantized, awq_g128_m64_k4096_n4096_fp32, WeightType::kAwqInt4, 128, 64, 4096, 4096,
                  QuantizedMatmul::kFloat)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_PrefillGemmQuantized, int4_g128_m64_k4096_n4096, WeightType::kInt4, 128, 64, 4096, 4096)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_PrefillGemmQuantized, fp8_block128_m64_k4096_n4096, WeightType::kF8E4M3, 128, 64, 4096,
                  4096)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// Decode attention for a batch of sequences: Llama-3-8B-like heads (32 query
// heads, 8 KV heads, head_dim 128), blocks of 16 tokens.
// range(0): context length; range(1): 0 for an fp32 cache, 1 for bf16.
void BM_DecodeAttention(benchmark::State& state) {
  const int32_t num_seqs = 8, context_len = static_cast<int32_t>(state.range(0));
  const kernels::KvDtype dtype = state.range(1) == 1 ? kernels::KvDtype::kBfloat16 : kernels::KvDtype::kFloat32;
  const kernels::KvCacheLayout layout{num_seqs * ((context_len + 15) / 16), 16, 8, 128, dtype};
  const size_t cache_values = size_t(layout.num_blocks) * 16 * 8 * 128;
  const size_t value_bytes = static_cast<size_t>(kernels::KvDtypeBytes(dtype));
  // Huge pages, as the worker's KV cache has.
  LargeBuffer k_buffer(cache_values * value_bytes), v_buffer(cache_values * value_bytes);
  // The cache written as the worker writes it: token rows through WriteKv.
  Backend& backend = SharedBackend();
  {
    const std::vector<float> k_values = RandomFloats(cache_values, 2), v_values = RandomFloats(cache_values, 3);
    std::vector<int32_t> slots(cache_values / (8 * 128));
    for (size_t i = 0; i < slots.size(); ++i) slots[i] = static_cast<int32_t>(i);
    backend.WriteKv(k_values.data(), v_values.data(), slots.data(), static_cast<int64_t>(slots.size()), layout,
                    k_buffer.data(), v_buffer.data());
  }
  const int32_t blocks_per_seq = layout.num_blocks / num_seqs;
  std::vector<int32_t> block_tables(layout.num_blocks), query_start(num_seqs + 1);
  std::vector<int32_t> context_lens(num_seqs, context_len);
  for (int32_t b = 0; b < layout.num_blocks; ++b) block_tables[b] = b;
  for (int32_t s = 0; s <= num_seqs; ++s) query_start[s] = s;
  const kernels::AttentionBatch batch{num_seqs, query_start.data(), context_lens.data(),
                                      block_tables.data(), blocks_per_seq};
  const std::vector<float> q = RandomFloats(size_t(num_seqs) * 32 * 128, 4);
  std::vector<float> out(q.size());
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    backend.PagedAttention(q.data(), k_buffer.data(), v_buffer.data(), layout, batch, 32, 0.088388f, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  const double positions = double(num_seqs) * context_len * state.iterations() / elapsed.count();
  const double kv_gbps = 2.0 * positions * 8 * 128 * double(value_bytes) / 1e9;
  // Against the read bandwidth of the same moment, as for the GEMVs.
  const double read_gbps = MeasureReadBandwidthGBps(kThreads);
  state.counters["kv_GB/s"] = kv_gbps;
  state.counters["cached_tokens/s"] = positions;  // K/V positions attended per second, over all sequences
  state.counters["read_bw_GB/s"] = read_gbps;
  state.counters["pct_of_read_bw"] = 100 * kv_gbps / read_gbps;
}
BENCHMARK(BM_DecodeAttention)
    ->ArgNames({"context", "bf16"})
    ->ArgsProduct({{512, 4096}, {0, 1}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// One row over a Llama 3 vocabulary with typical chat sampling settings.
void BM_Sample(benchmark::State& state) {
  const int64_t vocab = 128256;
  std::vector<float> logits = RandomFloats(vocab, 5);
  for (float& l : logits) l *= 8;
  kernels::SamplingParams params{0.7f, 0, 0.9f, 0.0f, 1, 0};
  int32_t token = 0;
  Backend& backend = SharedBackend();
  for (auto _ : state) {
    ++params.offset;
    backend.Sample(logits.data(), 1, vocab, &params, &token);
    benchmark::DoNotOptimize(token);
  }
}
BENCHMARK(BM_Sample)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace duet::bench

BENCHMARK_MAIN();
