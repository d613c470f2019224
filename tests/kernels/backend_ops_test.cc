// Every op of every registered backend (test_backends.h) against the
// reference backend, over random shapes including odd sizes — duet's
// test-backend-ops. Tolerances are worst-case bounds for fp32 arithmetic in
// the backend's stated accumulation order against the double-accumulating
// reference (whose own error is one final fp32 rounding):
//   a sum of n products accumulated in L >= 8 lanes, a 3-level tree and up
//   to 7 sequential leftovers is off by at most (n/8 + 16)·u·Σ|terms|, with
//   u = 2^-24 fp32's unit roundoff.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/half.h"
#include "kernels/ops.h"
#include "kernels/quant_dot.h"
#include "kernels/rope.h"
#include "tests/kernels/attention_case.h"
#include "tests/kernels/test_backends.h"
#include "tests/kernels/test_util.h"

namespace duet::kernels::testing {
namespace {

double SumBound(int64_t n) { return (static_cast<double>(n) / 8 + 16) * kUnitRoundoff; }

constexpr WeightType kAllWeightTypes[] = {
    WeightType::kF32,  WeightType::kF16,  WeightType::kBF16, WeightType::kQ8_0, WeightType::kQ4_0,
    WeightType::kQ4_1, WeightType::kQ4_K, WeightType::kQ5_K, WeightType::kQ6_K};

// `float_sizes` for the float types; for block-quantized ones (whose rows are
// whole blocks) one, three and seventeen blocks.
std::vector<int64_t> SizesFor(WeightType type, std::vector<int64_t> float_sizes) {
  if (!IsBlockQuantized(type)) return float_sizes;
  const int64_t block = WeightTypeBlockElements(type);
  return {block, 3 * block, 17 * block};
}

class BackendOpsTest : public ::testing::TestWithParam<BackendUnderTest> {
 protected:
  void SetUp() override {
    backend_ = GetParam().make_backend();
    memory_ = GetParam().make_memory();
    reference_ = MakeReferenceBackend();
  }

  template <typename T>
  std::unique_ptr<BackendArray<T>> Upload(const std::vector<T>& host) {
    return std::make_unique<BackendArray<T>>(*memory_, host);
  }

  std::unique_ptr<Backend> backend_;
  std::unique_ptr<BackendMemory> memory_;
  std::unique_ptr<Backend> reference_;
};

TEST_P(BackendOpsTest, Matmul) {
  uint32_t seed = 1;
  for (WeightType type : kAllWeightTypes) {
    for (int64_t m : {1, 3, 17}) {
      for (int64_t k : SizesFor(type, {1, 7, 33, 256, 4097})) {
        for (int64_t n : {1, 13, 37}) {
          const std::string what = absl::StrCat(std::string(WeightTypeName(type)), " m ", m, " k ", k, " n ", n);
          const TestWeight w = MakeTestWeight(type, n, k, ++seed);
          const std::vector<float> x = RandomFloats(m * k, ++seed);
          std::vector<float> expected(m * n), abs_products(m * n);
          reference_->Matmul(x.data(), w.view(), expected.data(), m);
          std::vector<float> abs_x(x.size());
          std::transform(x.begin(), x.end(), abs_x.begin(), [](float v) { return std::fabs(v); });
          const TestWeight abs_w = w.AbsF32();
          reference_->Matmul(abs_x.data(), abs_w.view(), abs_products.data(), m);

          auto x_dev = Upload(x);
          auto w_dev = Upload(w.bytes);
          auto y_dev = Upload(std::vector<float>(m * n, NAN));
          backend_->Matmul(x_dev->get(), {w_dev->get(), type, n, k}, y_dev->get(), m);
          if (IsBlockQuantized(type) && GetParam().quantized_matmul == QuantizedMatmul::kInt8) {
            // 8-bit activations: exactly the definition (its own distance from
            // the exact product is quant_dot_test's).
            Int8Rows rows;
            rows.Resize(m, k, Int8ActivationBlock(type));
            for (int64_t r = 0; r < m; ++r) QuantizeInt8Row(x.data(), r, &rows);
            std::vector<float> int8_expected(m * n);
            for (int64_t r = 0; r < m; ++r) {
              for (int64_t c = 0; c < n; ++c) {
                int8_expected[r * n + c] =
                    Int8Dot(type, w.bytes.data() + c * WeightRowBytes(type, k), rows, r);
              }
            }
            EXPECT_EQ(y_dev->ToHost(), int8_expected) << what;
            continue;
          }
          std::vector<double> bound(m * n);
          for (int64_t i = 0; i < m * n; ++i) bound[i] = SumBound(k) * abs_products[i] + 1e-30;
          ExpectWithin(y_dev->ToHost(), expected, bound, what);
        }
      }
    }
  }
}

TEST_P(BackendOpsTest, RmsNorm) {
  uint32_t seed = 100;
  for (int64_t rows : {1, 3, 17}) {
    for (int64_t dim : {1, 7, 33, 4096, 4097}) {
      for (bool in_place : {false, true}) {
        const std::string what = absl::StrCat("rows ", rows, " dim ", dim, " in_place ", in_place);
        const std::vector<float> x = RandomFloats(rows * dim, ++seed, -3, 3);
        const std::vector<float> weight = RandomFloats(dim, ++seed, 0.5, 2);
        const float eps = dim == 1 ? 1e-6f : 1e-5f;
        std::vector<float> expected(x.size());
        reference_->RmsNorm(x.data(), weight.data(), expected.data(), rows, dim, eps);

        auto x_dev = Upload(x);
        auto w_dev = Upload(weight);
        auto y_dev = Upload(std::vector<float>(x.size(), NAN));
        float* y = in_place ? x_dev->get() : y_dev->get();
        backend_->RmsNorm(x_dev->get(), w_dev->get(), y, rows, dim, eps);
        // Sum of squares (all terms positive, so the bound is relative),
        // then ~8 more roundings: sqrt, divide, two multiplies.
        ExpectClose(in_place ? x_dev->ToHost() : y_dev->ToHost(), expected, SumBound(dim), 1e-37,
                    what);
      }
    }
  }
}

TEST_P(BackendOpsTest, Rope) {
  uint32_t seed = 200;
  const Llama3RopeScaling llama3;  // Llama 3.1's factors
  struct Shape {
    int32_t num_heads, head_dim, rotary_dim;
  };
  for (const Shape& shape : {Shape{1, 64, 64}, Shape{4, 128, 128}, Shape{8, 128, 64},
                             Shape{3, 6, 6}, Shape{2, 48, 40}}) {
    for (int64_t num_tokens : {1, 5, 17}) {
      const std::string what =
          absl::StrCat("tokens ", num_tokens, " heads ", shape.num_heads, " head_dim ",
                       shape.head_dim, " rotary ", shape.rotary_dim);
      absl::StatusOr<std::vector<float>> inv_freq =
          RopeInvFreq({500000.0, shape.rotary_dim, llama3});
      ASSERT_TRUE(inv_freq.ok()) << inv_freq.status();
      std::vector<float> x =
          RandomFloats(num_tokens * shape.num_heads * shape.head_dim, ++seed, -2, 2);
      std::mt19937 rng(++seed);
      std::vector<int32_t> positions(num_tokens);
      for (int32_t& p : positions) p = std::uniform_int_distribution<int32_t>(0, 131071)(rng);
      positions[0] = 0;

      std::vector<float> expected = x;
      reference_->Rope(expected.data(), positions.data(), num_tokens, shape.num_heads,
                       shape.head_dim, inv_freq->data(), shape.rotary_dim);
      auto x_dev = Upload(x);
      auto pos_dev = Upload(positions);
      auto freq_dev = Upload(*inv_freq);
      backend_->Rope(x_dev->get(), pos_dev->get(), num_tokens, shape.num_heads, shape.head_dim,
                     freq_dev->get(), shape.rotary_dim);
      // Both compute a·cos − b·sin from the same fp32 cos/sin: two rounded
      // products and a rounded sum, so they differ by at most
      // 4u·(|a| + |b|) (|cos|, |sin| <= 1). Dims past rotary_dim: untouched.
      std::vector<double> bound(x.size(), 0.0);
      const int32_t half = shape.rotary_dim / 2;
      for (size_t head = 0; head < x.size() / shape.head_dim; ++head) {
        for (int32_t i = 0; i < half; ++i) {
          const size_t a = head * shape.head_dim + i;
          const double pair = std::fabs(x[a]) + std::fabs(x[a + half]);
          bound[a] = bound[a + half] = 4 * kUnitRoundoff * pair;
        }
      }
      ExpectWithin(x_dev->ToHost(), expected, bound, what);
    }
  }
}

TEST_P(BackendOpsTest, SiluMul) {
  uint32_t seed = 300;
  for (int64_t count : {1, 7, 33, 4097, 70001}) {
    for (bool in_place : {false, true}) {
      const std::string what = absl::StrCat("count ", count, " in_place ", in_place);
      const std::vector<float> gate = RandomFloats(count, ++seed, -20, 20);
      const std::vector<float> up = RandomFloats(count, ++seed, -2, 2);
      std::vector<float> expected(count);
      reference_->SiluMul(gate.data(), up.data(), expected.data(), count);
      auto gate_dev = Upload(gate);
      auto up_dev = Upload(up);
      auto out_dev = Upload(std::vector<float>(count, NAN));
      float* out = in_place ? gate_dev->get() : out_dev->get();
      backend_->SiluMul(gate_dev->get(), up_dev->get(), out, count);
      // exp to a few ulp, then an add, a divide and a multiply.
      ExpectClose(in_place ? gate_dev->ToHost() : out_dev->ToHost(), expected, 16 * kUnitRoundoff,
                  1e-37, what);
    }
  }
}

// One fp32 add per element: every backend must match the reference exactly.
TEST_P(BackendOpsTest, Add) {
  uint32_t seed = 350;
  for (int64_t count : {1, 7, 33, 4097, 70001}) {
    for (int alias : {0, 1, 2}) {  // out separate, out == a, out == b
      const std::string what = absl::StrCat("count ", count, " alias ", alias);
      const std::vector<float> a = RandomFloats(count, ++seed, -3, 3);
      const std::vector<float> b = RandomFloats(count, ++seed, -3, 3);
      std::vector<float> expected(count);
      reference_->Add(a.data(), b.data(), expected.data(), count);
      auto a_dev = Upload(a);
      auto b_dev = Upload(b);
      auto out_dev = Upload(std::vector<float>(count, NAN));
      auto& target = alias == 1 ? a_dev : alias == 2 ? b_dev : out_dev;
      backend_->Add(a_dev->get(), b_dev->get(), target->get(), count);
      EXPECT_EQ(target->ToHost(), expected) << what;
    }
  }
}

TEST_P(BackendOpsTest, AddBias) {
  uint32_t seed = 370;
  for (int64_t rows : {1, 3, 17}) {
    for (int64_t cols : {1, 7, 4097}) {
      const std::string what = absl::StrCat("rows ", rows, " cols ", cols);
      std::vector<float> expected = RandomFloats(rows * cols, ++seed, -3, 3);
      const std::vector<float> bias = RandomFloats(cols, ++seed, -1, 1);
      auto x_dev = Upload(expected);
      auto bias_dev = Upload(bias);
      reference_->AddBias(expected.data(), bias.data(), rows, cols);
      backend_->AddBias(x_dev->get(), bias_dev->get(), rows, cols);
      EXPECT_EQ(x_dev->ToHost(), expected) << what;
    }
  }
}

TEST_P(BackendOpsTest, Embedding) {
  uint32_t seed = 400;
  for (WeightType type : kAllWeightTypes) {
    for (int64_t cols : SizesFor(type, {1, 7, 4097})) {
      for (int64_t num_ids : {1, 3, 17}) {
        const std::string what =
            absl::StrCat(std::string(WeightTypeName(type)), " cols ", cols, " ids ", num_ids);
        const TestWeight table = MakeTestWeight(type, 50, cols, ++seed);
        std::mt19937 rng(++seed);
        std::vector<int32_t> ids(num_ids);
        for (int32_t& id : ids) id = std::uniform_int_distribution<int32_t>(0, 49)(rng);
        ids.back() = ids.front();  // a repeated id
        std::vector<float> expected(num_ids * cols);
        reference_->Embedding(ids.data(), num_ids, table.view(), expected.data());
        auto ids_dev = Upload(ids);
        auto table_dev = Upload(table.bytes);
        auto out_dev = Upload(std::vector<float>(expected.size(), NAN));
        backend_->Embedding(ids_dev->get(), num_ids, {table_dev->get(), type, 50, cols},
                            out_dev->get());
        EXPECT_EQ(out_dev->ToHost(), expected) << what;  // dequantisation is exact
      }
    }
  }
}

TEST_P(BackendOpsTest, Softmax) {
  uint32_t seed = 500;
  for (int64_t rows : {1, 3, 17}) {
    for (int64_t cols : {1, 7, 33, 4097}) {
      const std::string what = absl::StrCat("rows ", rows, " cols ", cols);
      const std::vector<float> x = RandomFloats(rows * cols, ++seed, -30, 30);
      std::vector<float> expected = x;
      reference_->Softmax(expected.data(), rows, cols);
      auto x_dev = Upload(x);
      backend_->Softmax(x_dev->get(), rows, cols);
      // x - max rounded in fp32 moves exp(x - max) by up to |x - max|·u
      // relative (<= 60u here); exp itself a few ulp; then a positive sum, a
      // reciprocal and a multiply.
      ExpectClose(x_dev->ToHost(), expected, SumBound(cols) + 64 * kUnitRoundoff, 1e-37, what);
    }
  }
}

TEST_P(BackendOpsTest, WriteKv) {
  uint32_t seed = 600;
  for (int64_t num_tokens : {1, 5, 40}) {
    for (int32_t head_dim : {64, 128}) {
      const KvCacheLayout layout{8, 16, 2, head_dim};
      const std::string what = absl::StrCat("tokens ", num_tokens, " head_dim ", head_dim);
      const int64_t token_floats = int64_t{layout.num_kv_heads} * head_dim;
      const int64_t cache_floats = int64_t{layout.num_blocks} * layout.block_size * token_floats;
      std::vector<int32_t> slots(layout.num_blocks * layout.block_size);
      std::iota(slots.begin(), slots.end(), 0);
      std::shuffle(slots.begin(), slots.end(), std::mt19937(++seed));
      slots.resize(num_tokens);
      const std::vector<float> k = RandomFloats(num_tokens * token_floats, ++seed);
      const std::vector<float> v = RandomFloats(num_tokens * token_floats, ++seed);
      std::vector<float> k_expected = RandomFloats(cache_floats, ++seed);
      std::vector<float> v_expected = RandomFloats(cache_floats, ++seed);
      auto k_cache_dev = Upload(k_expected);
      auto v_cache_dev = Upload(v_expected);
      reference_->WriteKv(k.data(), v.data(), slots.data(), num_tokens, layout, k_expected.data(),
                          v_expected.data());
      auto k_dev = Upload(k);
      auto v_dev = Upload(v);
      auto slots_dev = Upload(slots);
      backend_->WriteKv(k_dev->get(), v_dev->get(), slots_dev->get(), num_tokens, layout,
                        k_cache_dev->get(), v_cache_dev->get());
      EXPECT_EQ(k_cache_dev->ToHost(), k_expected) << what;
      EXPECT_EQ(v_cache_dev->ToHost(), v_expected) << what;
    }
  }
}

// Runs `backend` on the case's queries and batch over the given caches (fp32
// or bf16 values, as `layout` says), in its memory.
template <typename T>
std::vector<float> RunPagedAttention(Backend& backend, BackendMemory& memory, const AttentionCase& c,
                                     const KvCacheLayout& layout, const std::vector<T>& k_values,
                                     const std::vector<T>& v_values) {
  BackendArray<float> q(memory, c.q);
  BackendArray<T> k_cache(memory, k_values), v_cache(memory, v_values);
  BackendArray<int32_t> query_start(memory, c.query_start), context_len(memory, c.context_len),
      block_tables(memory, c.block_tables);
  BackendArray<float> out(memory, std::vector<float>(c.q.size(), NAN));
  AttentionBatch batch = c.batch();
  batch.query_start = query_start.get();
  batch.context_len = context_len.get();
  batch.block_tables = block_tables.get();
  backend.PagedAttention(q.get(), k_cache.get(), v_cache.get(), layout, batch, c.num_q_heads, c.scale, out.get());
  return out.ToHost();
}

// The case's own fp32 caches.
std::vector<float> RunPagedAttention(Backend& backend, BackendMemory& memory, const AttentionCase& c) {
  return RunPagedAttention(backend, memory, c, c.layout, c.k_cache, c.v_cache);
}

// Sequence mixes: decodes of different lengths, a whole prompt, and prefill
// chunks with earlier context already cached, side by side.
std::vector<std::vector<SequenceSpec>> AttentionMixes() {
  return {{{1, 1}, {17, 1}, {40, 1}}, {{33, 33}}, {{50, 20}, {7, 1}, {5, 5}, {64, 3}}};
}

TEST_P(BackendOpsTest, PagedAttention) {
  uint32_t seed = 700;
  for (const std::vector<SequenceSpec>& seqs : AttentionMixes()) {
    for (int32_t head_dim : {64, 128}) {
      for (int32_t group : {1, 4, 8}) {
        const AttentionCase c = MakeAttentionCase(seqs, 2, 2 * group, head_dim, 16, ++seed);
        std::vector<float> expected(c.q.size());
        reference_->PagedAttention(c.q.data(), c.k_cache.data(), c.v_cache.data(), c.layout,
                                   c.batch(), c.num_q_heads, c.scale, expected.data());
        // Scores (|q|,|k| <= 1, scale 1/sqrt(d)) are off by at most
        // (d/8 + 16)·u·d/sqrt(d) <= 2.2e-5 absolute, so the softmax weights by
        // that relative error (plus a few ulp of exp), and the output
        // (|v| <= 1, a convex combination) by that plus the rounding of the
        // weighted sum: 5e-5 absolute covers both.
        ExpectClose(RunPagedAttention(*backend_, *memory_, c), expected, 0, 5e-5, c.Describe());
      }
    }
  }
}

// Over a bf16 cache every backend computes, to the bit, its own result over
// the fp32 cache of the widened values (and the reference's to the same
// bound as above).
TEST_P(BackendOpsTest, PagedAttentionBf16) {
  uint32_t seed = 750;
  for (const std::vector<SequenceSpec>& seqs : AttentionMixes()) {
    for (int32_t group : {1, 4}) {
      AttentionCase c = MakeAttentionCase(seqs, 2, 2 * group, 128, 16, ++seed);
      const Bf16Caches caches = RoundCachesToBf16(c);
      std::vector<float> expected(c.q.size()), widened(c.q.size());
      reference_->PagedAttention(c.q.data(), caches.k_cache.data(), caches.v_cache.data(), caches.layout,
                                 c.batch(), c.num_q_heads, c.scale, expected.data());
      reference_->PagedAttention(c.q.data(), c.k_cache.data(), c.v_cache.data(), c.layout, c.batch(),
                                 c.num_q_heads, c.scale, widened.data());
      ASSERT_EQ(expected, widened) << c.Describe();
      const std::vector<float> got =
          RunPagedAttention(*backend_, *memory_, c, caches.layout, caches.k_cache, caches.v_cache);
      EXPECT_EQ(got, RunPagedAttention(*backend_, *memory_, c)) << c.Describe();
      ExpectClose(got, expected, 0, 5e-5, c.Describe());
    }
  }
}

TEST_P(BackendOpsTest, Argmax) {
  uint32_t seed = 800;
  for (int64_t rows : {1, 3, 17}) {
    for (int64_t vocab : {1, 7, 33, 4097, 128256}) {
      std::vector<float> logits = RandomFloats(rows * vocab, ++seed, -10, 10);
      // A tie for the maximum in every row: the lower index must win.
      for (int64_t r = 0; r < rows && vocab > 2; ++r) {
        logits[r * vocab + vocab / 2] = logits[r * vocab + vocab - 1] = 11.0f;
      }
      std::vector<int32_t> expected(rows);
      reference_->Argmax(logits.data(), rows, vocab, expected.data());
      auto logits_dev = Upload(logits);
      auto out_dev = Upload(std::vector<int32_t>(rows, -1));
      backend_->Argmax(logits_dev->get(), rows, vocab, out_dev->get());
      EXPECT_EQ(out_dev->ToHost(), expected) << "rows " << rows << " vocab " << vocab;
    }
  }
}

TEST_P(BackendOpsTest, Sample) {
  uint32_t seed = 900;
  // Rows with different filters, so one call mixes them.
  const std::vector<SamplingParams> kinds = {{1.0f, 0, 1.0f, 0.0f},      {0.7f, 40, 1.0f, 0.0f},
                                             {1.3f, 0, 0.9f, 0.0f},      {1.0f, 0, 1.0f, 0.05f},
                                             {0.8f, 50, 0.95f, 0.02f},   {0.0f, 0, 1.0f, 0.0f},
                                             {1.0f, 100000, 0.5f, 0.0f}, {2.0f, 1, 1.0f, 0.0f}};
  for (int64_t vocab : {1, 7, 4097, 32000}) {
    const int64_t rows = 24;
    const std::vector<float> logits = RandomFloats(rows * vocab, ++seed, -8, 8);
    std::vector<SamplingParams> params(rows);
    for (int64_t r = 0; r < rows; ++r) {
      params[r] = kinds[r % kinds.size()];
      params[r].seed = 1234 + r / kinds.size();
      params[r].offset = 77 * r;
    }
    std::vector<int32_t> expected(rows);
    reference_->Sample(logits.data(), rows, vocab, params.data(), expected.data());
    auto logits_dev = Upload(logits);
    auto params_dev = Upload(params);
    auto out_dev = Upload(std::vector<int32_t>(rows, -1));
    backend_->Sample(logits_dev->get(), rows, vocab, params_dev->get(), out_dev->get());
    // sampling.h fixes the procedure, so the tokens are equal (barring a draw
    // within ~1e-16 of a boundary, which these fixed seeds do not hit).
    EXPECT_EQ(out_dev->ToHost(), expected) << "vocab " << vocab;
  }
}

INSTANTIATE_TEST_SUITE_P(AllBackends, BackendOpsTest, ::testing::ValuesIn(BackendsUnderTest()),
                         [](const ::testing::TestParamInfo<BackendUnderTest>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace duet::kernels::testing
