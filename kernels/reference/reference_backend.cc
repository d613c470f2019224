// The reference backend: every op written as directly as the math in ops.h,
// single-threaded, with sums accumulated in double and rounded to fp32 once.
#include <glog/logging.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <memory>
#include <vector>

#include "common/half.h"
#include "kernels/block_quant.h"
#include "kernels/group_quant.h"
#include "kernels/ops.h"
#include "kernels/reference/reference_ops.h"

namespace duet::kernels {
namespace {

// Row `row` of `w` as fp32, whatever its storage type.
// Group-quantized types unpacked element by element (group_quant.h).
std::vector<float> WeightRow(const Weight& w, int64_t row) {
  std::vector<float> values(w.cols);
  DequantizeWeightRows(w, row, 1, values.data());
  return values;
}

class ReferenceBackend final : public Backend {
 public:
  std::string_view name() const override { return "reference"; }

  void Matmul(const float* x, const Weight& w, float* y, int64_t m) override {
    for (int64_t n = 0; n < w.rows; ++n) {
      const std::vector<float> weights = WeightRow(w, n);
      for (int64_t r = 0; r < m; ++r) {
        double acc = 0;
        for (int64_t k = 0; k < w.cols; ++k) acc += double{x[r * w.cols + k]} * weights[k];
        y[r * w.rows + n] = static_cast<float>(acc);
      }
    }
  }

  void RmsNorm(const float* x, const float* weight, float* y, int64_t rows, int64_t dim,
               float eps) override {
    for (int64_t r = 0; r < rows; ++r) {
      double sum_squares = 0;
      for (int64_t i = 0; i < dim; ++i) sum_squares += double{x[r * dim + i]} * x[r * dim + i];
      const double inv_rms = 1.0 / std::sqrt(sum_squares / dim + eps);
      for (int64_t i = 0; i < dim; ++i) {
        y[r * dim + i] = static_cast<float>(x[r * dim + i] * inv_rms * weight[i]);
      }
    }
  }

  // fp32 throughout, as transformers computes it: cos/sin of the fp32 angle,
  // then x * cos + rotate_half(x) * sin.
  void Rope(float* x, const int32_t* positions, int64_t num_tokens, int32_t num_heads,
            int32_t head_dim, const float* inv_freq, int32_t rotary_dim) override {
    const int32_t half = rotary_dim / 2;
    for (int64_t t = 0; t < num_tokens; ++t) {
      for (int32_t h = 0; h < num_heads; ++h) {
        float* head = x + (t * num_heads + h) * head_dim;
        for (int32_t i = 0; i < half; ++i) {
          const float angle = static_cast<float>(positions[t]) * inv_freq[i];
          const float cos = std::cos(angle);
          const float sin = std::sin(angle);
          const float x1 = head[i];
          const float x2 = head[i + half];
          head[i] = x1 * cos + (-x2) * sin;
          head[i + half] = x2 * cos + x1 * sin;
        }
      }
    }
  }

  void Add(const float* a, const float* b, float* out, int64_t count) override {
    for (int64_t i = 0; i < count; ++i) out[i] = a[i] + b[i];
  }

  void AddBias(float* x, const float* bias, int64_t rows, int64_t cols) override {
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) x[r * cols + c] += bias[c];
    }
  }

  void SiluMul(const float* gate, const float* up, float* out, int64_t count) override {
    for (int64_t i = 0; i < count; ++i) {
      const double g = gate[i];
      out[i] = static_cast<float>(g / (1.0 + std::exp(-g)) * up[i]);
    }
  }

  void Embedding(const int32_t* ids, int64_t num_ids, const Weight& table, float* out) override {
    for (int64_t i = 0; i < num_ids; ++i) {
      CHECK(ids[i] >= 0 && ids[i] < table.rows) << "token id " << ids[i];
      const std::vector<float> row = WeightRow(table, ids[i]);
      std::copy(row.begin(), row.end(), out + i * table.cols);
    }
  }

  void Softmax(float* x, int64_t rows, int64_t cols) override {
    for (int64_t r = 0; r < rows; ++r) {
      float* row = x + r * cols;
      double max_value = row[0];
      for (int64_t c = 1; c < cols; ++c) max_value = std::max(max_value, double{row[c]});
      double sum = 0;
      for (int64_t c = 0; c < cols; ++c) sum += std::exp(row[c] - max_value);
      for (int64_t c = 0; c < cols; ++c) {
        row[c] = static_cast<float>(std::exp(row[c] - max_value) / sum);
      }
    }
  }

  void WriteKv(const float* k, const float* v, const int32_t* slots, int64_t num_tokens,
               const KvCacheLayout& layout, void* k_cache, void* v_cache) override {
    const int64_t token_values = int64_t{layout.num_kv_heads} * layout.head_dim;
    auto store = [&](const float* from, void* cache, int64_t slot) {
      for (int64_t i = 0; i < token_values; ++i) {
        const int64_t at = slot * token_values + i;
        if (layout.dtype == KvDtype::kBfloat16) {
          static_cast<uint16_t*>(cache)[at] = FloatToBf16(from[i]);
        } else {
          static_cast<float*>(cache)[at] = from[i];
        }
      }
    };
    for (int64_t t = 0; t < num_tokens; ++t) {
      CHECK(slots[t] >= 0 && slots[t] < int64_t{layout.num_blocks} * layout.block_size)
          << "slot " << slots[t];
      store(k + t * token_values, k_cache, slots[t]);
      store(v + t * token_values, v_cache, slots[t]);
    }
  }

  void PagedAttention(const float* q, const void* k_cache, const void* v_cache,
                      const KvCacheLayout& layout, const AttentionBatch& batch, int32_t num_q_heads,
                      float scale, float* out) override {
    reference::PagedAttention(q, k_cache, v_cache, layout, batch, num_q_heads, scale, out);
  }

  void Argmax(const float* logits, int64_t rows, int64_t vocab, int32_t* out) override {
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = logits + r * vocab;
      int64_t best = 0;
      for (int64_t i = 1; i < vocab; ++i) {
        if (row[i] > row[best]) best = i;
      }
      out[r] = static_cast<int32_t>(best);
    }
  }

  void Sample(const float* logits, int64_t rows, int64_t vocab, const SamplingParams* params,
              int32_t* out) override {
    for (int64_t r = 0; r < rows; ++r) {
      out[r] = reference::SampleRow(logits + r * vocab, vocab, params[r]);
    }
  }
};

}  // namespace

std::unique_ptr<Backend> MakeReferenceBackend() { return std::make_unique<ReferenceBackend>(); }

}  // namespace duet::kernels
