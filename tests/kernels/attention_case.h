// Random paged-attention inputs for tests: several sequences, each with its
// own context length and number of new queries, whose K/V are scattered over
// shuffled, non-contiguous cache blocks. The dense per-sequence K/V are kept
// so a test can compute attention without the cache.
#ifndef DUET_TESTS_KERNELS_ATTENTION_CASE_H_
#define DUET_TESTS_KERNELS_ATTENTION_CASE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/ops.h"

namespace duet::kernels::testing {

struct SequenceSpec {
  int32_t context_len;  // tokens in the cache, including the new ones
  int32_t num_queries;  // new tokens (the last num_queries of the context)
};

struct AttentionCase {
  KvCacheLayout layout;
  int32_t num_q_heads = 0;
  float scale = 0;
  std::vector<int32_t> query_start;   // [num_seqs + 1]
  std::vector<int32_t> context_len;   // [num_seqs]
  std::vector<int32_t> block_tables;  // [num_seqs, max_blocks_per_seq]
  int32_t max_blocks_per_seq = 0;
  std::vector<float> q;                     // [total queries, num_q_heads, head_dim]
  std::vector<float> k_cache;               // [num_blocks, block_size, num_kv_heads, head_dim]
  std::vector<float> v_cache;               // same
  std::vector<std::vector<float>> dense_k;  // per sequence [context_len, num_kv_heads, head_dim]
  std::vector<std::vector<float>> dense_v;  // same

  int32_t total_queries() const { return query_start.back(); }
  // The batch view; points into this object's vectors.
  AttentionBatch batch() const;
  std::string Describe() const;
};

// Unused cache blocks hold random values too, so reading a wrong block shows.
AttentionCase MakeAttentionCase(const std::vector<SequenceSpec>& seqs, int32_t num_kv_heads,
                                int32_t num_q_heads, int32_t head_dim, int32_t block_size,
                                uint32_t seed);

// A case's caches as bf16 bits (KvDtype::kBfloat16).
struct Bf16Caches {
  KvCacheLayout layout;  // the case's, with dtype kBfloat16
  std::vector<uint16_t> k_cache;
  std::vector<uint16_t> v_cache;
};

// Rounds every cached (and dense) K/V value of `c` to bf16 in place, so its
// fp32 caches hold exactly the widened bf16 values, and returns the bits.
Bf16Caches RoundCachesToBf16(AttentionCase& c);

// Causal attention in double straight from the dense K/V (no cache):
// out: [total queries, num_q_heads, head_dim].
std::vector<float> DenseCausalAttention(const AttentionCase& c);

}  // namespace duet::kernels::testing

#endif  // DUET_TESTS_KERNELS_ATTENTION_CASE_H_
