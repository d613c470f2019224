#include <glog/logging.h>

#include <cmath>
#include <vector>

#include "common/half.h"
#include "kernels/reference/reference_ops.h"

namespace duet::kernels::reference {

namespace {

// Element i of a cache of `dtype`, as fp32.
float CacheValue(const void* cache, KvDtype dtype, int64_t i) {
  if (dtype == KvDtype::kBfloat16) return Bf16ToFloat(static_cast<const uint16_t*>(cache)[i]);
  return static_cast<const float*>(cache)[i];
}

}  // namespace

void PagedAttention(const float* q, const void* k_cache, const void* v_cache,
                    const KvCacheLayout& layout, const AttentionBatch& batch, int32_t num_q_heads,
                    float scale, float* out) {
  CHECK_GT(layout.num_kv_heads, 0);
  CHECK_EQ(num_q_heads % layout.num_kv_heads, 0);
  const int32_t group_size = num_q_heads / layout.num_kv_heads;
  const int64_t head_dim = layout.head_dim;
  std::vector<double> scores;
  std::vector<double> acc(head_dim);

  for (int32_t s = 0; s < batch.num_seqs; ++s) {
    const int32_t num_queries = batch.query_start[s + 1] - batch.query_start[s];
    const int32_t context_len = batch.context_len[s];
    CHECK_LE(num_queries, context_len) << "sequence " << s;
    const int32_t* block_table = batch.block_tables + int64_t{s} * batch.max_blocks_per_seq;
    for (int32_t qi = 0; qi < num_queries; ++qi) {
      const int64_t row = batch.query_start[s] + qi;
      const int32_t position = context_len - num_queries + qi;
      for (int32_t h = 0; h < num_q_heads; ++h) {
        const int32_t kv_head = h / group_size;
        const float* q_head = q + (row * num_q_heads + h) * head_dim;
        auto cache_offset = [&](int32_t t) {
          const int64_t block = block_table[t / layout.block_size];
          const int64_t slot = block * layout.block_size + t % layout.block_size;
          return (slot * layout.num_kv_heads + kv_head) * head_dim;
        };

        scores.assign(position + 1, 0.0);
        double max_score = -INFINITY;
        for (int32_t t = 0; t <= position; ++t) {
          const int64_t k = cache_offset(t);
          double dot = 0;
          for (int64_t d = 0; d < head_dim; ++d) {
            dot += double{q_head[d]} * CacheValue(k_cache, layout.dtype, k + d);
          }
          scores[t] = dot * scale;
          max_score = std::max(max_score, scores[t]);
        }
        double denominator = 0;
        for (double& score : scores) {
          score = std::exp(score - max_score);
          denominator += score;
        }
        acc.assign(head_dim, 0.0);
        for (int32_t t = 0; t <= position; ++t) {
          const int64_t v = cache_offset(t);
          for (int64_t d = 0; d < head_dim; ++d) acc[d] += scores[t] * CacheValue(v_cache, layout.dtype, v + d);
        }
        float* out_head = out + (row * num_q_heads + h) * head_dim;
        for (int64_t d = 0; d < head_dim; ++d) {
          out_head[d] = static_cast<float>(acc[d] / denominator);
        }
      }
    }
  }
}

}  // namespace duet::kernels::reference
