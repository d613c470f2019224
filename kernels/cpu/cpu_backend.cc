// The optimised CPU backend: a thread pool created once, ops split into
// independent tasks (output-column bands for matmul, rows, tokens or heads
// for the rest), and per-instruction-set inner kernels chosen at construction.
#include "kernels/cpu/cpu_backend.h"

#include <glog/logging.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/half.h"
#include "kernels/block_quant.h"
#include "kernels/group_quant.h"
#include "kernels/cpu/cpu_attention.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/cpu/vector_kernels.h"
#include "kernels/sampling.h"

namespace duet::kernels::cpu {
namespace {

// Elementwise work is cut into tasks of at least this many elements so a task
// outweighs the cost of handing it to another thread.
constexpr int64_t kMinElementsPerTask = 16 * 1024;

MatmulColumnsFn MatmulFor(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return MatmulColumnsScalar;
    case Isa::kAvx2:
      return MatmulColumnsAvx2;
    case Isa::kAvx512:
      return MatmulColumnsAvx512;
  }
  LOG(FATAL) << "unknown Isa " << static_cast<int>(isa);
  std::abort();  // LOG(FATAL) does not return
}

// The kernel for block-quantized weights at few rows; null for the scalar ISA,
// which dequantises panels for every m.
MatmulColumnsFn QuantMatmulFor(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return nullptr;
    case Isa::kAvx2:
      return MatmulQuantColumnsAvx2;
    case Isa::kAvx512:
      return MatmulQuantColumnsAvx512;
  }
  return nullptr;
}

// Rows of a block-quantized matrix as fp32, with block_quant.h's scalar code.
void DequantizeRowsScalar(const Weight& w, int64_t first, int64_t rows, float* out) {
  const int64_t row_bytes = WeightRowBytes(w.type, w.cols);
  const std::byte* source = static_cast<const std::byte*>(w.data) + first * row_bytes;
  for (int64_t r = 0; r < rows; ++r) {
    DequantizeRow(w.type, source + r * row_bytes, w.cols, out + r * w.cols);
  }
}

// The panel dequantiser: the ISA's SIMD one (bit for bit the scalar one).
DequantizeRowsFn DequantizeRowsFor(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return DequantizeRowsScalar;
    case Isa::kAvx2:
      return DequantizeRowsAvx2;
    case Isa::kAvx512:
      return DequantizeRowsAvx512;
  }
  return DequantizeRowsScalar;
}

// The group-quantized kernels of an ISA: the fused row-type kernel (null for
// the scalar ISA, which dequantises panels for every m), the row dequantiser
// and the AWQ kernel.
MatmulColumnsFn GroupMatmulFor(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return nullptr;
    case Isa::kAvx2:
      return MatmulGroupColumnsAvx2;
    case Isa::kAvx512:
      return MatmulGroupColumnsAvx512;
  }
  return nullptr;
}

class CpuBackend final : public Backend {
 public:
  CpuBackend(Isa isa, int num_threads, QuantizedMatmul quantized)
      : name_("cpu-" + std::string(IsaName(isa)) + "-" + std::to_string(num_threads) + "t" +
              (quantized == QuantizedMatmul::kFloat ? "-fp32" : "")),
        quantized_(quantized),
        matmul_(MatmulFor(isa)),
        quant_matmul_(QuantMatmulFor(isa)),
        dequantize_rows_(DequantizeRowsFor(isa)),
        quantize_int8_(isa == Isa::kScalar ? QuantizeInt8RowsScalar : QuantizeInt8RowsAvx2),
        matmul_int8_(isa == Isa::kScalar ? MatmulInt8ColumnsScalar : MatmulInt8ColumnsAvx2),
        matmul_group_int8_(isa == Isa::kScalar ? MatmulGroupInt8ColumnsScalar : MatmulGroupInt8ColumnsAvx2),
        group_matmul_(GroupMatmulFor(isa)),
        dequantize_group_rows_(isa == Isa::kScalar ? DequantizeGroupRows : DequantizeGroupRowsAvx2),
        matmul_awq_(isa == Isa::kScalar  ? MatmulAwqScalar
                    : isa == Isa::kAvx2 ? MatmulAwqAvx2
                                        : MatmulAwqAvx512),
        vec_(isa == Isa::kScalar ? ScalarVectorKernels() : Avx2VectorKernels()),
        pool_(num_threads) {}

  std::string_view name() const override { return name_; }

  void Matmul(const float* x, const Weight& w, float* y, int64_t m) override {
    if (m <= 0 || w.rows <= 0) return;
    if (IsGroupQuantized(w.type)) {
      if (quantized_ == QuantizedMatmul::kInt8 && GroupInt8ActivationBlock(w) > 0) {
        return MatmulInt8(x, w, y, m);
      }
      return MatmulGroupQuantized(x, w, y, m);
    }
    if (IsBlockQuantized(w.type)) {
      return quantized_ == QuantizedMatmul::kInt8 ? MatmulInt8(x, w, y, m)
                                                  : MatmulBlockQuantized(x, w, y, m);
    }
    // Decode streams the weights once, so each thread gets one contiguous band
    // of rows; prefill is compute-bound, so smaller bands balance better.
    // Bands are multiples of 12 columns, whole tiles for every variant.
    const int64_t num_bands = m == 1 ? pool_.num_threads() : 4 * pool_.num_threads();
    pool_.ParallelFor(num_bands, [&](int64_t band) {
      const Range columns = ChunkRange(w.rows, num_bands, band, 12);
      if (columns.begin < columns.end) matmul_(x, m, w, y, columns.begin, columns.end);
    });
  }

  void RmsNorm(const float* x, const float* weight, float* y, int64_t rows, int64_t dim,
               float eps) override {
    pool_.ParallelFor(rows, [&](int64_t r) {
      const float mean_square = vec_.sum_squares(x + r * dim, dim) / static_cast<float>(dim);
      const float inv_rms = 1.0f / std::sqrt(mean_square + eps);
      vec_.rms_apply(x + r * dim, inv_rms, weight, y + r * dim, dim);
    });
  }

  void Rope(float* x, const int32_t* positions, int64_t num_tokens, int32_t num_heads,
            int32_t head_dim, const float* inv_freq, int32_t rotary_dim) override {
    const int32_t half = rotary_dim / 2;
    pool_.ParallelFor(num_tokens, [&](int64_t t) {
      // cos/sin once per token, shared by its heads; the same fp32 values the
      // reference computes.
      thread_local std::vector<float> cos_sin;
      cos_sin.resize(2 * static_cast<size_t>(half));
      for (int32_t i = 0; i < half; ++i) {
        const float angle = static_cast<float>(positions[t]) * inv_freq[i];
        cos_sin[i] = std::cos(angle);
        cos_sin[half + i] = std::sin(angle);
      }
      for (int32_t h = 0; h < num_heads; ++h) {
        vec_.rotate_half(x + (t * num_heads + h) * head_dim, cos_sin.data(), cos_sin.data() + half,
                         half);
      }
    });
  }

  // Both as axpy with alpha 1, which rounds exactly like a plain add.
  void Add(const float* a, const float* b, float* out, int64_t count) override {
    const int64_t num_tasks = std::max<int64_t>(1, count / kMinElementsPerTask);
    pool_.ParallelFor(num_tasks, [&](int64_t task) {
      const Range range = ChunkRange(count, num_tasks, task, 8);
      const int64_t n = range.end - range.begin;
      if (out == b) {
        vec_.axpy(1.0f, a + range.begin, out + range.begin, n);
        return;
      }
      if (out != a) std::copy_n(a + range.begin, n, out + range.begin);
      vec_.axpy(1.0f, b + range.begin, out + range.begin, n);
    });
  }

  void AddBias(float* x, const float* bias, int64_t rows, int64_t cols) override {
    pool_.ParallelFor(rows, [&](int64_t r) { vec_.axpy(1.0f, bias, x + r * cols, cols); });
  }

  void SiluMul(const float* gate, const float* up, float* out, int64_t count) override {
    const int64_t num_tasks = std::max<int64_t>(1, count / kMinElementsPerTask);
    pool_.ParallelFor(num_tasks, [&](int64_t task) {
      const Range range = ChunkRange(count, num_tasks, task, 8);
      vec_.silu_mul(gate + range.begin, up + range.begin, out + range.begin,
                    range.end - range.begin);
    });
  }

  void Embedding(const int32_t* ids, int64_t num_ids, const Weight& table, float* out) override {
    pool_.ParallelFor(num_ids, [&](int64_t i) {
      CHECK(ids[i] >= 0 && ids[i] < table.rows) << "token id " << ids[i];
      const int64_t cols = table.cols;
      float* row_out = out + i * cols;
      const int64_t offset = int64_t{ids[i]} * cols;
      switch (table.type) {
        case WeightType::kQ8_0:
        case WeightType::kQ4_0:
        case WeightType::kQ4_1:
        case WeightType::kQ4_K:
        case WeightType::kQ5_K:
        case WeightType::kQ6_K:
        case WeightType::kAwqInt4:
        case WeightType::kInt4:
        case WeightType::kF8E4M3:
          DequantizeWeightRows(table, ids[i], 1, row_out);
          break;
        case WeightType::kF32:
          std::memcpy(row_out, static_cast<const float*>(table.data) + offset,
                      cols * sizeof(float));
          break;
        case WeightType::kF16: {
          const uint16_t* row = static_cast<const uint16_t*>(table.data) + offset;
          for (int64_t c = 0; c < cols; ++c) row_out[c] = F16ToFloat(row[c]);
          break;
        }
        case WeightType::kBF16: {
          const uint16_t* row = static_cast<const uint16_t*>(table.data) + offset;
          for (int64_t c = 0; c < cols; ++c) row_out[c] = Bf16ToFloat(row[c]);
          break;
        }
      }
    });
  }

  void Softmax(float* x, int64_t rows, int64_t cols) override {
    pool_.ParallelFor(rows, [&](int64_t r) {
      float* row = x + r * cols;
      const float sum = vec_.exp_shift_sum(row, vec_.max(row, cols), cols);
      vec_.scale(row, 1.0f / sum, cols);
    });
  }

  void WriteKv(const float* k, const float* v, const int32_t* slots, int64_t num_tokens,
               const KvCacheLayout& layout, void* k_cache, void* v_cache) override {
    const int64_t token_values = int64_t{layout.num_kv_heads} * layout.head_dim;
    const int64_t num_tasks =
        std::clamp<int64_t>(num_tokens * token_values / kMinElementsPerTask, 1, num_tokens);
    auto store = [&](const float* from, void* cache, int64_t slot) {
      if (layout.dtype == KvDtype::kBfloat16) {
        uint16_t* to = static_cast<uint16_t*>(cache) + slot * token_values;
        for (int64_t i = 0; i < token_values; ++i) to[i] = FloatToBf16(from[i]);
      } else {
        std::memcpy(static_cast<float*>(cache) + slot * token_values, from, token_values * sizeof(float));
      }
    };
    pool_.ParallelFor(num_tasks, [&](int64_t task) {
      const Range tokens = ChunkRange(num_tokens, num_tasks, task, 1);
      for (int64_t t = tokens.begin; t < tokens.end; ++t) {
        CHECK(slots[t] >= 0 && slots[t] < int64_t{layout.num_blocks} * layout.block_size)
            << "slot " << slots[t];
        store(k + t * token_values, k_cache, slots[t]);
        store(v + t * token_values, v_cache, slots[t]);
      }
    });
  }

  void PagedAttention(const float* q, const void* k_cache, const void* v_cache,
                      const KvCacheLayout& layout, const AttentionBatch& batch, int32_t num_q_heads,
                      float scale, float* out) override {
    cpu::PagedAttention(q, k_cache, v_cache, layout, batch, num_q_heads, scale, out, vec_, pool_);
  }

  void Argmax(const float* logits, int64_t rows, int64_t vocab, int32_t* out) override {
    pool_.ParallelFor(rows, [&](int64_t r) { out[r] = ArgmaxRow(logits + r * vocab, vocab); });
  }

  void Sample(const float* logits, int64_t rows, int64_t vocab, const SamplingParams* params,
              int32_t* out) override {
    pool_.ParallelFor(rows, [&](int64_t r) {
      thread_local SamplingScratch scratch;
      out[r] = SampleRow(logits + r * vocab, vocab, params[r], &scratch);
    });
  }

 private:
  // Block-quantized and 4-bit group-quantized weights with 8-bit activations
  // (kernels/quant_dot.h): the rows of x rounded once (by the calling thread
  // for a few rows, else in parallel), then output-column bands as for the
  // fp32 path (whole 64-output tiles for AWQ), the same kernel for every m
  // (so batch-invariant).
  void MatmulInt8(const float* x, const Weight& w, float* y, int64_t m) {
    // The calling thread's buffer, named by pointer: inside the tasks the
    // thread_local itself would be each pool thread's own.
    thread_local Int8Rows calling_thread_rows;
    Int8Rows& rows = calling_thread_rows;
    const bool group = IsGroupQuantized(w.type);
    rows.Resize(m, w.cols, group ? GroupInt8ActivationBlock(w) : Int8ActivationBlock(w.type));
    if (m < 8) {
      quantize_int8_(x, 0, m, &rows);
    } else {
      pool_.ParallelFor(m, [&](int64_t r) { quantize_int8_(x, r, r + 1, &rows); });
    }
    const int64_t num_bands = m == 1 ? pool_.num_threads() : 4 * pool_.num_threads();
    const int64_t alignment = !group ? 4 : w.type == WeightType::kAwqInt4 ? 64 : 8;
    const MatmulInt8ColumnsFn kernel = group ? matmul_group_int8_ : matmul_int8_;
    pool_.ParallelFor(num_bands, [&](int64_t band) {
      const Range columns = ChunkRange(w.rows, num_bands, band, alignment);
      if (columns.begin < columns.end) kernel(rows, w, y, columns.begin, columns.end);
    });
  }

  // Block-quantized weights, fp32 activations. Up to kMaxFusedRows activation rows (decode),
  // the SIMD kernels dequantise each block in L1 right before its FMAs, so
  // the weights stream at their stored size. Beyond that (prefill), and for
  // the scalar ISA, each task dequantises a panel of weight rows into fp32
  // scratch once and runs the fp32 kernel over every row of x. Either way the
  // result is exactly the fp32 matmul of the dequantised weights (the same
  // order per element, see matmul_kernels.h), so the two paths mix and stay
  // batch-invariant. A panel is a multiple of 12 rows and about 128 KiB, so
  // it stays in L2 while every row of x passes over it.
  static constexpr int64_t kMaxFusedRows = 8;

  void MatmulBlockQuantized(const float* x, const Weight& w, float* y, int64_t m) {
    if (quant_matmul_ != nullptr && m <= kMaxFusedRows) return MatmulBands(quant_matmul_, x, w, y, m, 4);
    MatmulPanels(dequantize_rows_, x, w, y, m);
  }

  // Group-quantized weights (group_quant.h). kInt4 and kF8E4M3 as the block
  // types in fp32 mode: fused up to kMaxFusedRows rows, else fp32 panels,
  // bit for bit the same. kAwqInt4 has its own kernels, in AWQ's order
  // (matmul_kernels.h), in bands of whole 64-output tiles.
  void MatmulGroupQuantized(const float* x, const Weight& w, float* y, int64_t m) {
    if (w.type == WeightType::kAwqInt4) return MatmulBands(matmul_awq_, x, w, y, m, 64);
    if (group_matmul_ != nullptr && m <= kMaxFusedRows) return MatmulBands(group_matmul_, x, w, y, m, 4);
    MatmulPanels(dequantize_group_rows_, x, w, y, m);
  }

  // Output-column bands of `alignment` columns: one per thread for decode
  // (each streams its weights once), four per thread otherwise.
  void MatmulBands(MatmulColumnsFn kernel, const float* x, const Weight& w, float* y, int64_t m,
                   int64_t alignment) {
    const int64_t num_bands = m == 1 ? pool_.num_threads() : 4 * pool_.num_threads();
    pool_.ParallelFor(num_bands, [&](int64_t band) {
      const Range columns = ChunkRange(w.rows, num_bands, band, alignment);
      if (columns.begin < columns.end) kernel(x, m, w, y, columns.begin, columns.end);
    });
  }

  // Panels of weight rows dequantised to fp32 scratch by `dequantize`, then
  // the fp32 kernel over every row of x.
  void MatmulPanels(DequantizeRowsFn dequantize, const float* x, const Weight& w, float* y,
                    int64_t m) {
    const int64_t k = w.cols;
    const int64_t panel_rows = std::max<int64_t>(12, (128 * 1024 / 4) / std::max<int64_t>(k, 1) / 12 * 12);
    const int64_t num_panels = (w.rows + panel_rows - 1) / panel_rows;
    pool_.ParallelFor(num_panels, [&](int64_t panel) {
      thread_local std::vector<float> weights;
      thread_local std::vector<float> out;
      const int64_t n0 = panel * panel_rows;
      const int64_t rows = std::min(panel_rows, w.rows - n0);
      weights.resize(static_cast<size_t>(rows * k));
      out.resize(static_cast<size_t>(rows * m));
      dequantize(w, n0, rows, weights.data());
      const Weight dense{.data = weights.data(), .type = WeightType::kF32, .rows = rows, .cols = k};
      matmul_(x, m, dense, out.data(), 0, rows);
      for (int64_t r = 0; r < m; ++r) {
        std::copy_n(out.data() + r * rows, rows, y + r * w.rows + n0);
      }
    });
  }

  const std::string name_;
  const QuantizedMatmul quantized_;
  const MatmulColumnsFn matmul_;
  const MatmulColumnsFn quant_matmul_;      // null where the ISA has none
  const DequantizeRowsFn dequantize_rows_;
  const QuantizeInt8RowsFn quantize_int8_;
  const MatmulInt8ColumnsFn matmul_int8_;
  const MatmulInt8ColumnsFn matmul_group_int8_;
  const MatmulColumnsFn group_matmul_;  // null where the ISA has none
  const DequantizeRowsFn dequantize_group_rows_;
  const MatmulColumnsFn matmul_awq_;
  const VectorKernels& vec_;
  ThreadPool pool_;
};

int DefaultNumThreads() { return std::max(1u, std::thread::hardware_concurrency()); }

}  // namespace

std::unique_ptr<Backend> MakeCpuBackendForIsa(Isa isa, int num_threads, QuantizedMatmul quantized) {
  CHECK(IsaSupported(isa)) << "this CPU cannot run the " << IsaName(isa) << " kernels";
  return std::make_unique<CpuBackend>(isa, num_threads > 0 ? num_threads : DefaultNumThreads(),
                                      quantized);
}

}  // namespace duet::kernels::cpu

namespace duet::kernels {

std::unique_ptr<Backend> MakeCpuBackend(int num_threads, QuantizedMatmul quantized) {
  return cpu::MakeCpuBackendForIsa(cpu::DetectIsa(), num_threads, quantized);
}

}  // namespace duet::kernels
