// Batch invariance (ops.h): a row's result is bit-identical whether it is
// computed alone or inside a batch of any size, and whatever the thread
// count. Checked bitwise for every CPU instruction-set variant.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_isa.h"
#include "tests/kernels/attention_case.h"
#include "tests/kernels/test_util.h"

namespace duet::kernels::testing {
namespace {

using cpu::Isa;

std::vector<Isa> SupportedIsas() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (cpu::IsaSupported(isa)) isas.push_back(isa);
  }
  return isas;
}

class BatchInvarianceTest : public ::testing::TestWithParam<Isa> {};

bool BitwiseEqual(const float* a, const float* b, size_t count) {
  return std::memcmp(a, b, count * sizeof(float)) == 0;
}

TEST_P(BatchInvarianceTest, MatmulRowAloneEqualsRowInAnyBatch) {
  const Isa isa = GetParam();
  constexpr int64_t kMaxRows = 19;
  uint32_t seed = 1;
  // Both ways of multiplying block-quantized weights; the float types only once.
  for (QuantizedMatmul mode : {QuantizedMatmul::kInt8, QuantizedMatmul::kFloat}) {
    std::unique_ptr<Backend> one_thread = cpu::MakeCpuBackendForIsa(isa, 1, mode);
    std::unique_ptr<Backend> two_threads = cpu::MakeCpuBackendForIsa(isa, 2, mode);
    std::unique_ptr<Backend> three_threads = cpu::MakeCpuBackendForIsa(isa, 3, mode);
    for (WeightType type : {WeightType::kF32, WeightType::kF16, WeightType::kBF16,
                            WeightType::kQ8_0, WeightType::kQ4_1, WeightType::kQ4_K,
                            WeightType::kQ6_K}) {
      if (mode == QuantizedMatmul::kFloat && !IsBlockQuantized(type)) continue;
      const std::vector<int64_t> ks = IsBlockQuantized(type) ? std::vector<int64_t>{256, 768}
                                                            : std::vector<int64_t>{1, 7, 33, 4097};
      for (int64_t k : ks) {
        for (int64_t n : {1, 5, 37, 100}) {
          const std::string what = absl::StrCat(std::string(WeightTypeName(type)), " k ", k,
                                                " n ", n, " ", std::string(QuantizedMatmulName(mode)));
          const TestWeight w = MakeTestWeight(type, n, k, ++seed);
          const std::vector<float> x = RandomFloats(kMaxRows * k, ++seed);
          // Each row alone, single-threaded: the values every other way of
          // computing the row must reproduce bit for bit.
          std::vector<float> alone(kMaxRows * n);
          for (int64_t r = 0; r < kMaxRows; ++r) {
            one_thread->Matmul(x.data() + r * k, w.view(), alone.data() + r * n, 1);
          }
          for (Backend* backend : {one_thread.get(), two_threads.get(), three_threads.get()}) {
            for (int64_t m : {1, 2, 3, 4, 5, 8, 13, 19}) {
              // Rows [first, first + m) as one batch, for two offsets.
              for (int64_t first : {int64_t{0}, kMaxRows - m}) {
                std::vector<float> batch(m * n);
                backend->Matmul(x.data() + first * k, w.view(), batch.data(), m);
                EXPECT_TRUE(BitwiseEqual(batch.data(), alone.data() + first * n, m * n))
                    << what << " " << backend->name() << " m " << m << " first row " << first;
              }
            }
          }
        }
      }
    }
  }
}

// Each sequence of `c` alone, on one thread, gets to the bit what it gets in
// the whole batch on two, over the given caches (of `layout`).
void ExpectAttentionBatchInvariant(Isa isa, const AttentionCase& c, const KvCacheLayout& layout,
                                   const void* k_cache, const void* v_cache) {
  std::unique_ptr<Backend> one_thread = cpu::MakeCpuBackendForIsa(isa, 1);
  std::unique_ptr<Backend> two_threads = cpu::MakeCpuBackendForIsa(isa, 2);
  std::vector<float> batched(c.q.size());
  two_threads->PagedAttention(c.q.data(), k_cache, v_cache, layout, c.batch(), c.num_q_heads, c.scale,
                              batched.data());
  const int64_t row_floats = int64_t{c.num_q_heads} * layout.head_dim;
  for (int32_t s = 0; s + 1 < static_cast<int32_t>(c.query_start.size()); ++s) {
    // The same cache, a batch holding only sequence s.
    const int32_t first_row = c.query_start[s];
    const int32_t num_queries = c.query_start[s + 1] - first_row;
    const std::vector<int32_t> query_start = {0, num_queries};
    const AttentionBatch alone_batch{1, query_start.data(), &c.context_len[s],
                                     c.block_tables.data() + s * c.max_blocks_per_seq, c.max_blocks_per_seq};
    std::vector<float> alone(num_queries * row_floats);
    one_thread->PagedAttention(c.q.data() + first_row * row_floats, k_cache, v_cache, layout, alone_batch,
                               c.num_q_heads, c.scale, alone.data());
    EXPECT_TRUE(BitwiseEqual(alone.data(), batched.data() + first_row * row_floats, alone.size()))
        << "sequence " << s << ", " << KvDtypeName(layout.dtype) << " cache";
  }
}

// Long contexts too: their keys are taken in chunks; alone on one thread a
// long decode splits its chunks into tasks of their own, in a batch its row
// folds them in one task, and both must agree to the bit.
const std::vector<SequenceSpec> kInvarianceMix = {{40, 6}, {9, 1}, {700, 1}, {16, 16}, {520, 2}};

TEST_P(BatchInvarianceTest, AttentionOfASequenceDoesNotDependOnItsBatch) {
  const AttentionCase c = MakeAttentionCase(kInvarianceMix, 2, 8, 64, 16, 42);
  ExpectAttentionBatchInvariant(GetParam(), c, c.layout, c.k_cache.data(), c.v_cache.data());
}

TEST_P(BatchInvarianceTest, AttentionOverABf16CacheDoesNotDependOnItsBatch) {
  AttentionCase c = MakeAttentionCase(kInvarianceMix, 2, 8, 64, 16, 43);
  const Bf16Caches caches = RoundCachesToBf16(c);
  ExpectAttentionBatchInvariant(GetParam(), c, caches.layout, caches.k_cache.data(), caches.v_cache.data());
}

INSTANTIATE_TEST_SUITE_P(AllIsas, BatchInvarianceTest, ::testing::ValuesIn(SupportedIsas()),
                         [](const ::testing::TestParamInfo<Isa>& info) {
                           return std::string(cpu::IsaName(info.param));
                         });

}  // namespace
}  // namespace duet::kernels::testing
