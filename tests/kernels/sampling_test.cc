// The counter-based RNG and the sampling procedure of sampling.h, on the
// reference and every registered backend: known-answer vectors, determinism,
// sample frequencies against the filtered distribution (computed here
// independently), and filter edge cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "kernels/ops.h"
#include "kernels/random.h"
#include "tests/kernels/test_backends.h"
#include "tests/kernels/test_util.h"

namespace duet::kernels::testing {
namespace {

TEST(PhiloxTest, MatchesRandom123KnownAnswers) {
  using Block = std::array<uint32_t, 4>;
  EXPECT_EQ(Philox4x32x10({0, 0, 0, 0}, {0, 0}),
            (Block{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(
      Philox4x32x10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}),
      (Block{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(
      Philox4x32x10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
      (Block{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(UniformTest, IsAPureFunctionOfSeedAndOffsetInUnitInterval) {
  double sum = 0, sum_squares = 0;
  constexpr int kDraws = 100000;
  for (int i = 0; i < kDraws; ++i) {
    const float u = Uniform(7, i);
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    EXPECT_EQ(u, Uniform(7, i));
    sum += u;
    sum_squares += double{u} * u;
  }
  // Mean 1/2 and variance 1/12, each within ~5 standard errors.
  EXPECT_NEAR(sum / kDraws, 0.5, 0.005);
  EXPECT_NEAR(sum_squares / kDraws - (sum / kDraws) * (sum / kDraws), 1.0 / 12, 0.002);
  EXPECT_NE(Uniform(7, 0), Uniform(8, 0));
  EXPECT_NE(Uniform(7, 0), Uniform(7, 1));
  EXPECT_NE(Uniform(0, uint64_t{1} << 32), Uniform(0, 0));  // high offset bits count
  EXPECT_NE(Uniform(uint64_t{1} << 32, 0), Uniform(0, 0));  // high seed bits count
}

struct NamedFactory {
  std::string name;
  std::function<std::unique_ptr<Backend>()> make;
};
void PrintTo(const NamedFactory& f, std::ostream* os) { *os << f.name; }

std::vector<NamedFactory> HostBackends() {
  std::vector<NamedFactory> all = {{"reference", MakeReferenceBackend}};
  for (const BackendUnderTest& b : BackendsUnderTest()) {
    if (b.name.rfind("cpu_", 0) == 0) all.push_back({b.name, b.make_backend});
  }
  return all;
}

class SamplingTest : public ::testing::TestWithParam<NamedFactory> {
 protected:
  void SetUp() override { backend_ = GetParam().make(); }

  // One row of `logits` sampled `num_draws` times with offsets 0, 1, ....
  std::vector<int32_t> Draw(const std::vector<float>& logits, SamplingParams params,
                            int num_draws) {
    const int64_t vocab = logits.size();
    std::vector<float> rows(num_draws * vocab);
    std::vector<SamplingParams> row_params(num_draws, params);
    for (int i = 0; i < num_draws; ++i) {
      std::copy(logits.begin(), logits.end(), rows.begin() + i * vocab);
      row_params[i].offset = i;
    }
    std::vector<int32_t> tokens(num_draws, -1);
    backend_->Sample(rows.data(), num_draws, vocab, row_params.data(), tokens.data());
    return tokens;
  }

  std::unique_ptr<Backend> backend_;
};

// The filtered distribution of sampling.h computed independently: plain
// softmax in double, sort, then the three filters.
std::vector<double> FilteredDistribution(const std::vector<float>& logits,
                                         const SamplingParams& p) {
  const int n = logits.size();
  std::vector<double> prob(n);
  const double max_logit = *std::max_element(logits.begin(), logits.end());
  for (int i = 0; i < n; ++i) prob[i] = std::exp((logits[i] - max_logit) / p.temperature);
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return prob[a] > prob[b]; });
  int kept = p.top_k > 0 ? std::min(p.top_k, n) : n;
  double top_k_mass = 0;
  for (int j = 0; j < kept; ++j) top_k_mass += prob[order[j]];
  double running = 0;
  for (int j = 0; j < kept; ++j) {
    running += prob[order[j]];
    if (j > 0 && prob[order[j]] < p.min_p * prob[order[0]]) {
      kept = j;
      break;
    }
    if (running >= p.top_p * top_k_mass) {
      kept = j + 1;
      break;
    }
  }
  std::vector<double> filtered(n, 0.0);
  double total = 0;
  for (int j = 0; j < kept; ++j) total += prob[order[j]];
  for (int j = 0; j < kept; ++j) filtered[order[j]] = prob[order[j]] / total;
  return filtered;
}

// Pearson's chi-square of `tokens` against `expected` over tokens with
// expected > 0; any token with expected 0 fails the test outright.
double ChiSquare(const std::vector<int32_t>& tokens, const std::vector<double>& expected) {
  std::vector<int> counts(expected.size(), 0);
  for (int32_t t : tokens) ++counts.at(t);
  double chi_square = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    if (expected[i] == 0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " was filtered out but sampled";
      continue;
    }
    const double want = expected[i] * tokens.size();
    chi_square += (counts[i] - want) * (counts[i] - want) / want;
  }
  return chi_square;
}

TEST_P(SamplingTest, SameSeedAndOffsetGiveTheSameToken) {
  const std::vector<float> logits = RandomFloats(1000, 3, -2, 2);
  const SamplingParams params{0.9f, 50, 0.95f, 0.01f, 123, 0};
  const std::vector<int32_t> first = Draw(logits, params, 200);
  EXPECT_EQ(Draw(logits, params, 200), first);
  EXPECT_EQ(std::set<int32_t>(first.begin(), first.end()).size() > 10, true)
      << "200 draws from a flat-ish distribution should vary";
}

TEST_P(SamplingTest, FrequenciesFollowTheFilteredDistribution) {
  const std::vector<float> logits = {2.0f, 1.5f,  1.4f,  1.0f,  0.5f,  0.3f,
                                     0.0f, -0.5f, -1.0f, -3.0f, 1.45f, 0.9f};
  struct Case {
    SamplingParams params;
    double max_chi_square;  // P(χ² above it) < 1e-4 at the case's degrees of freedom
  };
  const std::vector<Case> cases = {
      {{1.0f, 0, 1.0f, 0.0f, 11}, 40.0},   // 11 degrees of freedom
      {{0.7f, 6, 1.0f, 0.0f, 12}, 30.0},   // 5
      {{1.2f, 0, 0.8f, 0.0f, 13}, 40.0},   // <= 11
      {{1.0f, 0, 1.0f, 0.25f, 14}, 40.0},  // <= 11
      {{0.8f, 8, 0.9f, 0.1f, 15}, 35.0},   // <= 7
  };
  for (const Case& c : cases) {
    const std::vector<double> expected = FilteredDistribution(logits, c.params);
    const double chi_square = ChiSquare(Draw(logits, c.params, 40000), expected);
    EXPECT_LT(chi_square, c.max_chi_square)
        << "temperature " << c.params.temperature << " top_k " << c.params.top_k << " top_p "
        << c.params.top_p << " min_p " << c.params.min_p;
  }
}

TEST_P(SamplingTest, InverseCdfWalksTokensInDescendingProbabilityLowerIdFirst) {
  // Two equally likely tokens: token 0 exactly when u < 1/2 (running mass 1
  // > u·2), so the chosen token is fixed by Uniform alone.
  const std::vector<int32_t> tokens = Draw({0.5f, 0.5f}, {1.0f, 0, 1.0f, 0.0f, 99}, 500);
  for (int i = 0; i < 500; ++i) {
    EXPECT_EQ(tokens[i], Uniform(99, i) < 0.5f ? 0 : 1) << "offset " << i;
  }
}

TEST_P(SamplingTest, TemperatureZeroIsArgmaxWithLowestIdOnTies) {
  const std::vector<float> logits = {0.0f, 3.0f, -1.0f, 3.0f};
  for (int32_t t : Draw(logits, {0.0f, 0, 1.0f, 0.0f, 5}, 20)) EXPECT_EQ(t, 1);
}

TEST_P(SamplingTest, TopKAtOrAboveVocabularyChangesNothing) {
  const std::vector<float> logits = RandomFloats(30, 8, -1, 1);
  const std::vector<int32_t> off = Draw(logits, {1.0f, 0, 1.0f, 0.0f, 21}, 300);
  EXPECT_EQ(Draw(logits, {1.0f, 30, 1.0f, 0.0f, 21}, 300), off);
  EXPECT_EQ(Draw(logits, {1.0f, 1000, 1.0f, 0.0f, 21}, 300), off);
}

TEST_P(SamplingTest, TinyTopPKeepsOnlyTheMostLikelyToken) {
  const std::vector<float> logits = {0.1f, 0.3f, 0.29f, -1.0f};
  for (int32_t t : Draw(logits, {1.0f, 0, 1e-6f, 0.0f, 4}, 300)) EXPECT_EQ(t, 1);
  for (int32_t t : Draw(logits, {1.0f, 0, 0.0f, 0.0f, 4}, 50)) EXPECT_EQ(t, 1);
}

TEST_P(SamplingTest, EqualLogitsBreakTiesByLowerId) {
  const std::vector<float> logits(10, 1.5f);
  // Unfiltered: every token possible.
  const std::vector<int32_t> all = Draw(logits, {1.0f, 0, 1.0f, 0.0f, 6}, 2000);
  EXPECT_EQ(std::set<int32_t>(all.begin(), all.end()).size(), 10u);
  // top-k 3 keeps ids 0, 1, 2.
  const std::vector<int32_t> top3 = Draw(logits, {1.0f, 3, 1.0f, 0.0f, 6}, 2000);
  EXPECT_EQ(std::set<int32_t>(top3.begin(), top3.end()), (std::set<int32_t>{0, 1, 2}));
  // top-p 0.5 over ten equal tokens keeps exactly the first five.
  const std::vector<int32_t> half = Draw(logits, {1.0f, 0, 0.5f, 0.0f, 6}, 2000);
  EXPECT_EQ(std::set<int32_t>(half.begin(), half.end()), (std::set<int32_t>{0, 1, 2, 3, 4}));
  // min-p 1 keeps every token tied for the maximum.
  const std::vector<int32_t> min_p = Draw(logits, {1.0f, 0, 1.0f, 1.0f, 6}, 2000);
  EXPECT_EQ(std::set<int32_t>(min_p.begin(), min_p.end()).size(), 10u);
}

TEST_P(SamplingTest, MinPDropsTokensBelowTheFractionOfTheMaximum) {
  // Probabilities proportional to 1, 0.5, 0.25, 0.125 (logits ln of them).
  const std::vector<float> logits = {0.0f, std::log(0.5f), std::log(0.25f), std::log(0.125f)};
  const std::vector<int32_t> tokens = Draw(logits, {1.0f, 0, 1.0f, 0.3f, 8}, 3000);
  EXPECT_EQ(std::set<int32_t>(tokens.begin(), tokens.end()), (std::set<int32_t>{0, 1}));
}

TEST_P(SamplingTest, SingleTokenVocabulary) {
  for (int32_t t : Draw({-4.0f}, {1.0f, 5, 0.5f, 0.5f, 1}, 10)) EXPECT_EQ(t, 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, SamplingTest, ::testing::ValuesIn(HostBackends()),
                         [](const ::testing::TestParamInfo<NamedFactory>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace duet::kernels::testing
