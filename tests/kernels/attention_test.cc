// Paged attention against attention computed straight from dense,
// per-sequence K/V (no cache, no block tables) — an independent check of the
// paging, the causal mask, GQA head mapping and prefill-with-context, for the
// reference backend and every registered backend.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "kernels/ops.h"
#include "tests/kernels/attention_case.h"
#include "tests/kernels/test_backends.h"
#include "tests/kernels/test_util.h"

namespace duet::kernels::testing {
namespace {

struct NamedFactory {
  std::string name;
  std::function<std::unique_ptr<Backend>()> make;
};

std::vector<NamedFactory> AllBackends() {
  std::vector<NamedFactory> all = {{"reference", MakeReferenceBackend}};
  for (const BackendUnderTest& b : BackendsUnderTest()) {
    // These tests pass host pointers; backends on other memory are covered by
    // backend_ops_test against the reference, which this test checks.
    if (b.name.rfind("cpu_", 0) == 0) all.push_back({b.name, b.make_backend});
  }
  return all;
}

class DenseAttentionTest : public ::testing::TestWithParam<NamedFactory> {};

void PrintTo(const NamedFactory& f, std::ostream* os) { *os << f.name; }

TEST_P(DenseAttentionTest, MatchesDenseCausalAttention) {
  std::unique_ptr<Backend> backend = GetParam().make();
  const std::vector<std::vector<SequenceSpec>> mixes = {
      {{1, 1}},                      // first token
      {{37, 1}, {16, 1}, {100, 1}},  // decodes, one exactly a full block
      {{48, 48}},                    // whole prompt
      {{90, 30}, {3, 1}, {33, 2}},   // chunk with cached context, mixed
      {{600, 1}},                    // a long decode: keys in several chunks, split into tasks
      {{530, 3}, {257, 1}, {256, 1}, {9, 1}}};  // several chunks per row, folded in one task
  uint32_t seed = 5;
  for (const auto& seqs : mixes) {
    for (int32_t head_dim : {64, 128}) {
      for (int32_t group : {1, 4, 8}) {
        for (int32_t block_size : {16, 5}) {
          const AttentionCase c =
              MakeAttentionCase(seqs, 2, 2 * group, head_dim, block_size, ++seed);
          std::vector<float> out(c.q.size());
          backend->PagedAttention(c.q.data(), c.k_cache.data(), c.v_cache.data(), c.layout,
                                  c.batch(), c.num_q_heads, c.scale, out.data());
          // See backend_ops_test's PagedAttention for the 5e-5 bound.
          ExpectClose(out, DenseCausalAttention(c), 0, 5e-5, c.Describe());
        }
      }
    }
  }
}

// The causal mask: changing K/V of a position after a query's must not
// change that query's output.
TEST_P(DenseAttentionTest, QueriesIgnoreLaterPositions) {
  std::unique_ptr<Backend> backend = GetParam().make();
  AttentionCase c = MakeAttentionCase({{20, 20}}, 1, 4, 64, 16, 99);
  std::vector<float> before(c.q.size()), after(c.q.size());
  backend->PagedAttention(c.q.data(), c.k_cache.data(), c.v_cache.data(), c.layout, c.batch(),
                          c.num_q_heads, c.scale, before.data());
  // Overwrite the last position (token 19: block table entry 1, slot 3).
  const int64_t slot = int64_t{c.block_tables[1]} * 16 + 3;
  for (int32_t d = 0; d < 64; ++d) {
    c.k_cache[slot * 64 + d] = 5.0f;
    c.v_cache[slot * 64 + d] = -7.0f;
  }
  backend->PagedAttention(c.q.data(), c.k_cache.data(), c.v_cache.data(), c.layout, c.batch(),
                          c.num_q_heads, c.scale, after.data());
  const size_t last_row_start = 19 * 4 * 64;
  EXPECT_EQ(std::vector<float>(before.begin(), before.begin() + last_row_start),
            std::vector<float>(after.begin(), after.begin() + last_row_start));
  EXPECT_NE(std::vector<float>(before.begin() + last_row_start, before.end()),
            std::vector<float>(after.begin() + last_row_start, after.end()));
}

INSTANTIATE_TEST_SUITE_P(Backends, DenseAttentionTest, ::testing::ValuesIn(AllBackends()),
                         [](const ::testing::TestParamInfo<NamedFactory>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace duet::kernels::testing
