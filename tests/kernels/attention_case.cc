#include "tests/kernels/attention_case.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/half.h"
#include "tests/kernels/test_util.h"

namespace duet::kernels::testing {

AttentionBatch AttentionCase::batch() const {
  return {static_cast<int32_t>(context_len.size()), query_start.data(), context_len.data(),
          block_tables.data(), max_blocks_per_seq};
}

std::string AttentionCase::Describe() const {
  std::string seqs;
  for (size_t s = 0; s < context_len.size(); ++s) {
    absl::StrAppend(&seqs, s ? "," : "", "(ctx ", context_len[s], " q ",
                    query_start[s + 1] - query_start[s], ")");
  }
  return absl::StrCat("seqs ", seqs, " kv_heads ", layout.num_kv_heads, " q_heads ", num_q_heads,
                      " head_dim ", layout.head_dim, " block_size ", layout.block_size);
}

AttentionCase MakeAttentionCase(const std::vector<SequenceSpec>& seqs, int32_t num_kv_heads,
                                int32_t num_q_heads, int32_t head_dim, int32_t block_size,
                                uint32_t seed) {
  AttentionCase c;
  c.num_q_heads = num_q_heads;
  c.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  int32_t blocks_needed = 0;
  c.query_start.push_back(0);
  for (const SequenceSpec& spec : seqs) {
    const int32_t blocks = (spec.context_len + block_size - 1) / block_size;
    c.max_blocks_per_seq = std::max(c.max_blocks_per_seq, blocks);
    blocks_needed += blocks;
    c.query_start.push_back(c.query_start.back() + spec.num_queries);
    c.context_len.push_back(spec.context_len);
  }
  c.layout = {blocks_needed + 5, block_size, num_kv_heads, head_dim};

  std::mt19937 rng(seed);
  std::vector<int32_t> free_blocks(c.layout.num_blocks);
  std::iota(free_blocks.begin(), free_blocks.end(), 0);
  std::shuffle(free_blocks.begin(), free_blocks.end(), rng);

  const int64_t token_floats = int64_t{num_kv_heads} * head_dim;
  const size_t cache_floats = size_t(c.layout.num_blocks) * block_size * token_floats;
  c.k_cache = RandomFloats(cache_floats, seed + 1);
  c.v_cache = RandomFloats(cache_floats, seed + 2);
  c.block_tables.assign(seqs.size() * c.max_blocks_per_seq, -1);  // unused entries poisoned
  size_t next_free = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const int32_t context = seqs[s].context_len;
    c.dense_k.push_back(RandomFloats(size_t(context) * token_floats, seed + 10 + 2 * s));
    c.dense_v.push_back(RandomFloats(size_t(context) * token_floats, seed + 11 + 2 * s));
    int32_t* table = c.block_tables.data() + s * c.max_blocks_per_seq;
    for (int32_t b = 0; b * block_size < context; ++b) table[b] = free_blocks[next_free++];
    for (int32_t t = 0; t < context; ++t) {
      const int64_t slot = int64_t{table[t / block_size]} * block_size + t % block_size;
      std::copy_n(c.dense_k[s].begin() + t * token_floats, token_floats,
                  c.k_cache.begin() + slot * token_floats);
      std::copy_n(c.dense_v[s].begin() + t * token_floats, token_floats,
                  c.v_cache.begin() + slot * token_floats);
    }
  }
  c.q = RandomFloats(size_t(c.total_queries()) * num_q_heads * head_dim, seed + 3);
  return c;
}

std::vector<float> DenseCausalAttention(const AttentionCase& c) {
  const int32_t head_dim = c.layout.head_dim;
  const int32_t num_kv_heads = c.layout.num_kv_heads;
  const int32_t group = c.num_q_heads / num_kv_heads;
  std::vector<float> out(c.q.size());
  for (size_t s = 0; s < c.context_len.size(); ++s) {
    const int32_t num_queries = c.query_start[s + 1] - c.query_start[s];
    for (int32_t i = 0; i < num_queries; ++i) {
      const int32_t row = c.query_start[s] + i;
      const int32_t position = c.context_len[s] - num_queries + i;
      for (int32_t h = 0; h < c.num_q_heads; ++h) {
        const float* q = c.q.data() + (size_t(row) * c.num_q_heads + h) * head_dim;
        const int32_t kv_head = h / group;
        std::vector<double> weights(position + 1);
        for (int32_t t = 0; t <= position; ++t) {
          const float* k = c.dense_k[s].data() + (size_t(t) * num_kv_heads + kv_head) * head_dim;
          double dot = 0;
          for (int32_t d = 0; d < head_dim; ++d) dot += double{q[d]} * k[d];
          weights[t] = dot * c.scale;
        }
        const double max_weight = *std::max_element(weights.begin(), weights.end());
        double total = 0;
        for (double& w : weights) total += (w = std::exp(w - max_weight));
        for (int32_t d = 0; d < head_dim; ++d) {
          double acc = 0;
          for (int32_t t = 0; t <= position; ++t) {
            acc += weights[t] * c.dense_v[s][(size_t(t) * num_kv_heads + kv_head) * head_dim + d];
          }
          out[(size_t(row) * c.num_q_heads + h) * head_dim + d] = static_cast<float>(acc / total);
        }
      }
    }
  }
  return out;
}

Bf16Caches RoundCachesToBf16(AttentionCase& c) {
  Bf16Caches bf16;
  bf16.layout = c.layout;
  bf16.layout.dtype = KvDtype::kBfloat16;
  auto round = [](std::vector<float>& values, std::vector<uint16_t>* bits) {
    if (bits != nullptr) bits->resize(values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      const uint16_t rounded = FloatToBf16(values[i]);
      values[i] = Bf16ToFloat(rounded);
      if (bits != nullptr) (*bits)[i] = rounded;
    }
  };
  round(c.k_cache, &bf16.k_cache);
  round(c.v_cache, &bf16.v_cache);
  for (std::vector<float>& k : c.dense_k) round(k, nullptr);
  for (std::vector<float>& v : c.dense_v) round(v, nullptr);
  return bf16;
}

}  // namespace duet::kernels::testing
