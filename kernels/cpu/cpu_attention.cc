#include "kernels/cpu/cpu_attention.h"

#include <glog/logging.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace duet::kernels::cpu {
namespace {

// One head's K or V rows of consecutive tokens are a whole token (all KV
// heads) apart, or in another block altogether: strides the hardware
// prefetchers do not follow, so rows are requested a few tokens ahead.
constexpr int32_t kPrefetchTokens = 8;

inline void PrefetchRow(const float* row, int64_t head_dim) {
  for (int64_t d = 0; d < head_dim; d += 16) __builtin_prefetch(row + d);
}

}  // namespace

void PagedAttention(const float* q, const float* k_cache, const float* v_cache,
                    const KvCacheLayout& layout, const AttentionBatch& batch, int32_t num_q_heads,
                    float scale, float* out, const VectorKernels& vec, ThreadPool& pool) {
  CHECK_GT(layout.num_kv_heads, 0);
  CHECK_EQ(num_q_heads % layout.num_kv_heads, 0);
  const int32_t num_kv_heads = layout.num_kv_heads;
  const int32_t group_size = num_q_heads / num_kv_heads;
  const int64_t head_dim = layout.head_dim;
  const int64_t token_stride = int64_t{num_kv_heads} * head_dim;  // floats per cached token

  const int32_t total_queries = batch.query_start[batch.num_seqs];
  // Task t covers query row t / num_kv_heads and KV head t % num_kv_heads;
  // the sequence of a row is found by binary search in query_start.
  const int64_t num_tasks = int64_t{total_queries} * num_kv_heads;
  pool.ParallelFor(num_tasks, [&](int64_t task) {
    const int32_t row = static_cast<int32_t>(task / num_kv_heads);
    const int32_t kv_head = static_cast<int32_t>(task % num_kv_heads);
    const int32_t seq = static_cast<int32_t>(
        std::upper_bound(batch.query_start, batch.query_start + batch.num_seqs + 1, row) -
        batch.query_start - 1);
    const int32_t num_queries = batch.query_start[seq + 1] - batch.query_start[seq];
    const int32_t context_len = batch.context_len[seq];
    CHECK_LE(num_queries, context_len) << "sequence " << seq;
    const int32_t position = context_len - num_queries + (row - batch.query_start[seq]);
    const int32_t num_keys = position + 1;
    const int32_t* block_table = batch.block_tables + int64_t{seq} * batch.max_blocks_per_seq;

    // scores: [group_size, num_keys]; reused across tasks on this thread.
    thread_local std::vector<float> scores;
    scores.resize(static_cast<size_t>(group_size) * num_keys);
    const float* q_group =
        q + (int64_t{row} * num_q_heads + int64_t{kv_head} * group_size) * head_dim;
    float* out_group =
        out + (int64_t{row} * num_q_heads + int64_t{kv_head} * group_size) * head_dim;

    // Row of token t for this KV head in `cache`.
    auto cached_row = [&](const float* cache, int32_t t) {
      const int64_t slot =
          int64_t{block_table[t / layout.block_size]} * layout.block_size + t % layout.block_size;
      return cache + slot * token_stride + int64_t{kv_head} * head_dim;
    };

    for (int32_t t = 0; t < num_keys; ++t) {
      if (t + kPrefetchTokens < num_keys)
        PrefetchRow(cached_row(k_cache, t + kPrefetchTokens), head_dim);
      vec.dots(q_group, group_size, cached_row(k_cache, t), head_dim, scores.data() + t, num_keys);
    }
    thread_local std::vector<float> inv_denominators;
    inv_denominators.resize(group_size);
    for (int32_t g = 0; g < group_size; ++g) {
      float* head_scores = scores.data() + int64_t{g} * num_keys;
      vec.scale(head_scores, scale, num_keys);
      const float max_score = vec.max(head_scores, num_keys);
      inv_denominators[g] = 1.0f / vec.exp_shift_sum(head_scores, max_score, num_keys);
      std::memset(out_group + g * head_dim, 0, head_dim * sizeof(float));
    }
    for (int32_t t = 0; t < num_keys; ++t) {
      if (t + kPrefetchTokens < num_keys)
        PrefetchRow(cached_row(v_cache, t + kPrefetchTokens), head_dim);
      const float* v = cached_row(v_cache, t);
      for (int32_t g = 0; g < group_size; ++g) {
        vec.axpy(scores[int64_t{g} * num_keys + t], v, out_group + g * head_dim, head_dim);
      }
    }
    for (int32_t g = 0; g < group_size; ++g) {
      vec.scale(out_group + g * head_dim, inv_denominators[g], head_dim);
    }
  });
}

}  // namespace duet::kernels::cpu
