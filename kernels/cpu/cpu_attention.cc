#include "kernels/cpu/cpu_attention.h"

#include <glog/logging.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace duet::kernels::cpu {
namespace {

// Keys are taken in chunks of this many positions, a fixed number whatever
// the batch: a query's result depends on its own context only.
constexpr int32_t kChunkKeys = 256;

// What one query row's attention over one chunk of its keys leaves, for
// every query head: the largest scaled score, the sum of exp(score - max),
// and the exp-weighted sum of the V rows.
struct ChunkResult {
  float* max;  // [num_q_heads]
  float* sum;  // [num_q_heads]
  float* acc;  // [num_q_heads, head_dim]
};

struct Geometry {
  int32_t num_q_heads;
  int32_t num_kv_heads;
  int32_t group_size;
  int64_t head_dim;
  int64_t token_stride;  // values per cached token: every KV head
  int32_t block_size;
};

// The kernels that read cached rows of T (float or bf16 bits).
template <typename T>
struct RowKernels;
template <>
struct RowKernels<float> {
  static auto dots(const VectorKernels& vec) { return vec.dots; }
  static auto weighted_rows(const VectorKernels& vec) { return vec.weighted_rows; }
};
template <>
struct RowKernels<uint16_t> {
  static auto dots(const VectorKernels& vec) { return vec.dots_bf16; }
  static auto weighted_rows(const VectorKernels& vec) { return vec.weighted_rows_bf16; }
};

// Keys [key_begin, key_end) of one query row. q_row: [num_q_heads, head_dim].
// scores: scratch of num_q_heads × kChunkKeys floats.
template <typename T>
void AttendChunk(const Geometry& g, const float* q_row, const T* k_cache, const T* v_cache,
                 const int32_t* block_table, int32_t key_begin, int32_t key_end, float scale,
                 const VectorKernels& vec, float* scores, const ChunkResult& out) {
  const int32_t n = key_end - key_begin;
  auto token_row = [&](const T* cache, int32_t t) {
    const int64_t slot = int64_t{block_table[t / g.block_size]} * g.block_size + t % g.block_size;
    return cache + slot * g.token_stride;
  };
  const auto dots = RowKernels<T>::dots(vec);
  const auto weighted_rows = RowKernels<T>::weighted_rows(vec);
  for (int32_t t = key_begin; t < key_end; ++t) {
    const T* k = token_row(k_cache, t);
    for (int32_t h = 0; h < g.num_kv_heads; ++h) {
      dots(q_row + int64_t{h} * g.group_size * g.head_dim, g.group_size, k + h * g.head_dim, g.head_dim,
               scores + int64_t{h} * g.group_size * kChunkKeys + (t - key_begin), kChunkKeys);
    }
  }
  for (int32_t head = 0; head < g.num_q_heads; ++head) {
    float* head_scores = scores + int64_t{head} * kChunkKeys;
    vec.scale(head_scores, scale, n);
    out.max[head] = vec.max(head_scores, n);
    out.sum[head] = vec.exp_shift_sum(head_scores, out.max[head], n);
  }
  std::memset(out.acc, 0, sizeof(float) * g.num_q_heads * g.head_dim);
  // V: a KV block's tokens at a time (their rows are contiguous), each KV
  // head's query heads summed in registers across those tokens.
  const T* v_rows[kChunkKeys];
  for (int32_t t = key_begin; t < key_end; ++t) v_rows[t - key_begin] = token_row(v_cache, t);
  for (int32_t t0 = key_begin; t0 < key_end;) {
    const int32_t t1 = std::min(key_end, (t0 / g.block_size + 1) * g.block_size);
    for (int32_t h = 0; h < g.num_kv_heads; ++h) {
      const int64_t first_head = int64_t{h} * g.group_size;
      weighted_rows(scores + first_head * kChunkKeys + (t0 - key_begin), g.group_size, kChunkKeys,
                        v_rows + (t0 - key_begin), h * g.head_dim, t1 - t0, out.acc + first_head * g.head_dim,
                        g.head_dim);
    }
    t0 = t1;
  }
}

// Folds chunk result `next` into `state`, chunk after chunk in key order.
void Fold(const Geometry& g, const ChunkResult& next, const VectorKernels& vec, const ChunkResult& state) {
  for (int32_t head = 0; head < g.num_q_heads; ++head) {
    const float merged = std::max(state.max[head], next.max[head]);
    const float keep = std::exp(state.max[head] - merged);
    const float add = std::exp(next.max[head] - merged);
    state.max[head] = merged;
    state.sum[head] = keep * state.sum[head] + add * next.sum[head];
    float* acc = state.acc + head * g.head_dim;
    vec.scale(acc, keep, g.head_dim);
    vec.axpy(add, next.acc + head * g.head_dim, acc, g.head_dim);
  }
}

// A ChunkResult over `floats` (num_q_heads × (head_dim + 2)).
ChunkResult ResultAt(const Geometry& g, float* floats) {
  return ChunkResult{floats, floats + g.num_q_heads, floats + 2 * g.num_q_heads};
}

void Normalise(const Geometry& g, const ChunkResult& state, const VectorKernels& vec, float* out_row) {
  for (int32_t head = 0; head < g.num_q_heads; ++head) {
    std::memcpy(out_row + head * g.head_dim, state.acc + head * g.head_dim, sizeof(float) * g.head_dim);
    vec.scale(out_row + head * g.head_dim, 1.0f / state.sum[head], g.head_dim);
  }
}

template <typename T>
void PagedAttentionOf(const float* q, const T* k_cache, const T* v_cache, const KvCacheLayout& layout,
                      const AttentionBatch& batch, int32_t num_q_heads, float scale, float* out,
                      const VectorKernels& vec, ThreadPool& pool) {
  CHECK_GT(layout.num_kv_heads, 0);
  CHECK_EQ(num_q_heads % layout.num_kv_heads, 0);
  const Geometry g{num_q_heads,
                   layout.num_kv_heads,
                   num_q_heads / layout.num_kv_heads,
                   layout.head_dim,
                   int64_t{layout.num_kv_heads} * layout.head_dim,
                   layout.block_size};
  const int64_t row_floats = int64_t{num_q_heads} * g.head_dim;
  const int64_t result_floats = int64_t{num_q_heads} * (g.head_dim + 2);
  const int32_t total_queries = batch.query_start[batch.num_seqs];

  // Query row -> its sequence's block table and its number of keys.
  std::vector<int32_t> seq_of(total_queries);
  std::vector<int32_t> keys_of(total_queries);
  std::vector<int32_t> first_chunk(total_queries + 1, 0);  // chunk index of each row's first chunk
  for (int32_t s = 0; s < batch.num_seqs; ++s) {
    const int32_t num_queries = batch.query_start[s + 1] - batch.query_start[s];
    CHECK_LE(num_queries, batch.context_len[s]) << "sequence " << s;
    for (int32_t i = 0; i < num_queries; ++i) {
      const int32_t row = batch.query_start[s] + i;
      seq_of[row] = s;
      keys_of[row] = batch.context_len[s] - num_queries + i + 1;
    }
  }
  for (int32_t row = 0; row < total_queries; ++row) {
    first_chunk[row + 1] = first_chunk[row] + (keys_of[row] + kChunkKeys - 1) / kChunkKeys;
  }
  const int32_t total_chunks = first_chunk[total_queries];
  auto table_of = [&](int32_t row) { return batch.block_tables + int64_t{seq_of[row]} * batch.max_blocks_per_seq; };
  auto attend = [&](int32_t row, int32_t chunk, const ChunkResult& result) {
    thread_local std::vector<float> scores;
    scores.resize(static_cast<size_t>(num_q_heads) * kChunkKeys);
    const int32_t begin = chunk * kChunkKeys;
    AttendChunk(g, q + row * row_floats, k_cache, v_cache, table_of(row), begin,
                std::min(keys_of[row], begin + kChunkKeys), scale, vec, scores.data(), result);
  };

  if (total_queries >= 2 * pool.num_threads() || total_chunks == total_queries) {
    // Enough rows to go round: each task folds its row's chunks in order.
    pool.ParallelFor(total_queries, [&](int64_t task) {
      const int32_t row = static_cast<int32_t>(task);
      thread_local std::vector<float> buffers;
      buffers.resize(2 * result_floats);
      const ChunkResult state = ResultAt(g, buffers.data());
      const ChunkResult next = ResultAt(g, buffers.data() + result_floats);
      const int32_t num_chunks = first_chunk[row + 1] - first_chunk[row];
      attend(row, 0, state);
      for (int32_t c = 1; c < num_chunks; ++c) {
        attend(row, c, next);
        Fold(g, next, vec, state);
      }
      Normalise(g, state, vec, out + row * row_floats);
    });
    return;
  }
  // Few rows with long contexts (decode of one or two sequences): every
  // chunk is a task of its own, then each row folds its chunks in the same
  // order as above, so the result is the same to the bit.
  std::vector<float> results(static_cast<size_t>(total_chunks) * result_floats);
  pool.ParallelFor(total_chunks, [&](int64_t task) {
    const int32_t chunk = static_cast<int32_t>(task);
    const int32_t row =
        static_cast<int32_t>(std::upper_bound(first_chunk.begin(), first_chunk.end(), chunk) - first_chunk.begin() - 1);
    attend(row, chunk - first_chunk[row], ResultAt(g, results.data() + task * result_floats));
  });
  for (int32_t row = 0; row < total_queries; ++row) {
    const ChunkResult state = ResultAt(g, results.data() + int64_t{first_chunk[row]} * result_floats);
    for (int32_t c = first_chunk[row] + 1; c < first_chunk[row + 1]; ++c) {
      Fold(g, ResultAt(g, results.data() + int64_t{c} * result_floats), vec, state);
    }
    Normalise(g, state, vec, out + row * row_floats);
  }
}

}  // namespace

void PagedAttention(const float* q, const void* k_cache, const void* v_cache,
                    const KvCacheLayout& layout, const AttentionBatch& batch, int32_t num_q_heads,
                    float scale, float* out, const VectorKernels& vec, ThreadPool& pool) {
  if (layout.dtype == KvDtype::kBfloat16) {
    PagedAttentionOf(q, static_cast<const uint16_t*>(k_cache), static_cast<const uint16_t*>(v_cache), layout,
                     batch, num_q_heads, scale, out, vec, pool);
  } else {
    PagedAttentionOf(q, static_cast<const float*>(k_cache), static_cast<const float*>(v_cache), layout, batch,
                     num_q_heads, scale, out, vec, pool);
  }
}

}  // namespace duet::kernels::cpu
