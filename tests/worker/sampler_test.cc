// worker/sampler on the reference and the CPU backend, checked against plain
// whole-vocabulary loops written here: each logit-processing step alone and
// combined, logprobs of the raw logits, seeding, batch invariance, the sampled
// distribution, the all -inf row, and ValidateSampling.
#include "worker/sampler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kernels/ops.h"

namespace duet::worker {
namespace {

using ::testing::HasSubstr;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct BackendCase {
  std::string name;
  std::function<std::unique_ptr<kernels::Backend>()> make;
};
void PrintTo(const BackendCase& c, std::ostream* os) { *os << c.name; }

// One sequence as a test states it: parameters, prompt and output so far.
struct Seq {
  SequenceSampling sampling;
  std::vector<int32_t> prompt;
  std::vector<int32_t> output;
  std::string allowed_token_mask;  // empty: any token
};

// A bitmask (bit i % 8 of byte i / 8) of `ids`, `bytes` long.
std::string MaskOf(const std::vector<int32_t>& ids, size_t bytes) {
  std::string mask(bytes, '\0');
  for (int32_t id : ids) mask[id / 8] = static_cast<char>(mask[id / 8] | (1 << (id % 8)));
  return mask;
}

bool Contains(const std::vector<int32_t>& ids, int32_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

// Steps 2-5 of sampler.h, one plain pass over every id of the vocabulary.
std::vector<float> ReferenceProcess(const std::vector<float>& raw, const Seq& seq) {
  const SequenceSampling& s = seq.sampling;
  std::vector<float> out(raw.size());
  for (int32_t id = 0; id < static_cast<int32_t>(raw.size()); ++id) {
    float x = raw[id];
    for (const auto& [bias_id, bias] : s.logit_bias) {
      if (bias_id == id) x += bias;
    }
    if (seq.output.size() < s.min_tokens && Contains(s.min_tokens_banned_ids, id)) x = kNegInf;
    const int count = std::count(seq.output.begin(), seq.output.end(), id);
    if (s.repetition_penalty != 1.0f && (count > 0 || Contains(seq.prompt, id))) {
      x = x > 0 ? x / s.repetition_penalty : x * s.repetition_penalty;
    }
    if (count > 0) x -= s.presence_penalty + s.frequency_penalty * count;
    out[id] = x;
  }
  return out;
}

int32_t ReferenceArgmax(const std::vector<float>& row) {
  int32_t best = 0;
  for (int32_t i = 1; i < static_cast<int32_t>(row.size()); ++i) {
    if (row[i] > row[best]) best = i;
  }
  return best;
}

std::vector<double> ReferenceLogSoftmax(const std::vector<float>& raw) {
  const double max = *std::max_element(raw.begin(), raw.end());
  double sum = 0;
  for (float x : raw) sum += std::exp(x - max);
  std::vector<double> out;
  for (float x : raw) out.push_back(x - max - std::log(sum));
  return out;
}

std::vector<int32_t> ReferenceTopIds(const std::vector<float>& raw, size_t count) {
  std::vector<int32_t> ids(raw.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::sort(ids.begin(), ids.end(),
            [&](int32_t a, int32_t b) { return raw[a] > raw[b] || (raw[a] == raw[b] && a < b); });
  ids.resize(std::min(count, ids.size()));
  return ids;
}

std::vector<float> RandomLogits(int64_t count, uint32_t seed, float lo = -4, float hi = 4) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> out(count);
  for (float& x : out) x = dist(rng);
  return out;
}

// Processed logits agree to a few ulps (the compiler may order the float
// operations differently); -inf must match exactly.
void ExpectLogitsMatch(const std::vector<float>& actual, const std::vector<float>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    if (std::isinf(expected[i])) {
      EXPECT_EQ(actual[i], expected[i]) << "id " << i;
    } else {
      EXPECT_FLOAT_EQ(actual[i], expected[i]) << "id " << i;
    }
  }
}

class SamplerTest : public ::testing::TestWithParam<BackendCase> {
 protected:
  void SetUp() override { backend_ = GetParam().make(); }

  // Samples `seqs` (one row each) from `logits` [seqs.size(), vocab], which
  // are processed in place.
  std::vector<SampledToken> Run(std::vector<float>* logits, const std::vector<Seq>& seqs) {
    const int64_t vocab = logits->size() / seqs.size();
    std::vector<TokenHistory> histories;
    histories.reserve(seqs.size());
    std::vector<SampleRow> rows;
    for (const Seq& seq : seqs) {
      histories.emplace_back(seq.prompt);
      for (int32_t id : seq.output) histories.back().AddOutputToken(id);
    }
    for (size_t i = 0; i < seqs.size(); ++i) {
      rows.push_back({&seqs[i].sampling, &histories[i], seqs[i].allowed_token_mask});
    }
    return SampleTokens(*backend_, logits->data(), vocab, rows);
  }

  SampledToken RunOne(std::vector<float>* logits, const Seq& seq) { return Run(logits, {seq})[0]; }

  std::unique_ptr<kernels::Backend> backend_;
};

Seq Greedy() {
  Seq seq;
  seq.sampling.temperature = 0;
  return seq;
}

TEST_P(SamplerTest, LogitBiasIsAddedAndSteersGreedy) {
  const std::vector<float> raw = {1, 3, 2, 0.5f, -1, 2.5f};
  Seq seq = Greedy();
  std::vector<float> logits = raw;
  EXPECT_EQ(RunOne(&logits, seq).token_id, 1);
  EXPECT_EQ(logits, raw);  // nothing to process: the row is untouched

  seq.sampling.logit_bias = {{4, 10}, {1, -5}};
  logits = raw;
  EXPECT_EQ(RunOne(&logits, seq).token_id, 4);
  EXPECT_EQ(logits, (std::vector<float>{1, -2, 2, 0.5f, 9, 2.5f}));
  ExpectLogitsMatch(logits, ReferenceProcess(raw, seq));
}

TEST_P(SamplerTest, MinTokensBansUntilEnoughOutputThenLifts) {
  const std::vector<float> raw = {1, 0, 5, 2, -1, 4};
  Seq seq = Greedy();
  seq.sampling.min_tokens = 3;
  seq.sampling.min_tokens_banned_ids = {2, 5};
  for (int num_output = 0; num_output <= 4; ++num_output) {
    SCOPED_TRACE(num_output);
    seq.output.assign(num_output, 0);
    std::vector<float> logits = raw;
    const int32_t token = RunOne(&logits, seq).token_id;
    ExpectLogitsMatch(logits, ReferenceProcess(raw, seq));
    if (num_output < 3) {
      EXPECT_EQ(logits[2], kNegInf);
      EXPECT_EQ(logits[5], kNegInf);
      EXPECT_EQ(token, 3);
    } else {
      EXPECT_EQ(logits[2], 5);
      EXPECT_EQ(logits[5], 4);
      EXPECT_EQ(token, 2);
    }
  }
}

TEST_P(SamplerTest, RepetitionPenaltyOnPromptAndOutputIdsOnce) {
  const std::vector<float> raw = {2, -2, 3, -1, 4, 1};
  Seq seq = Greedy();
  seq.prompt = {0, 1};
  seq.output = {0, 2, 3, 2};  // 0 is in both: penalised once
  seq.sampling.repetition_penalty = 2;
  std::vector<float> logits = raw;
  EXPECT_EQ(RunOne(&logits, seq).token_id, 4);
  EXPECT_EQ(logits, (std::vector<float>{1, -4, 1.5f, -2, 4, 1}));
  ExpectLogitsMatch(logits, ReferenceProcess(raw, seq));

  // A penalty below 1 favours seen tokens: 3 / 0.5 = 6 beats the unseen 4.
  seq.sampling.repetition_penalty = 0.5f;
  logits = raw;
  EXPECT_EQ(RunOne(&logits, seq).token_id, 2);
  EXPECT_EQ(logits, (std::vector<float>{4, -1, 6, -0.5f, 4, 1}));
}

TEST_P(SamplerTest, PresenceAndFrequencyUseOutputCountsOnly) {
  const std::vector<float> raw = {0, 2, 0, 2.5f, 0, 0.5f};
  Seq seq = Greedy();
  seq.prompt = {5};  // the prompt does not count for these two
  seq.output = {1, 3, 3, 3};
  seq.sampling.presence_penalty = 0.5f;
  seq.sampling.frequency_penalty = 0.5f;
  std::vector<float> logits = raw;
  EXPECT_EQ(RunOne(&logits, seq).token_id, 1);
  EXPECT_EQ(logits, (std::vector<float>{0, 1, 0, 0.5f, 0, 0.5f}));
  ExpectLogitsMatch(logits, ReferenceProcess(raw, seq));

  seq.sampling.presence_penalty = -1;  // negative: encourages repeats
  logits = raw;
  RunOne(&logits, seq);
  EXPECT_EQ(logits, (std::vector<float>{0, 2.5f, 0, 2, 0, 0.5f}));

  seq.sampling.presence_penalty = 0;  // frequency alone
  seq.sampling.frequency_penalty = 1;
  logits = raw;
  EXPECT_EQ(RunOne(&logits, seq).token_id, 1);
  EXPECT_EQ(logits, (std::vector<float>{0, 1, 0, -0.5f, 0, 0.5f}));
}

TEST_P(SamplerTest, AllStepsCombinedMatchReferenceAndGreedyFollowsThem) {
  constexpr int64_t kVocab = 64;
  constexpr int kRows = 24;
  std::mt19937 rng(1234);
  const auto uniform = [&rng](float lo, float hi) {
    return std::uniform_real_distribution<float>(lo, hi)(rng);
  };
  const auto id = [&rng](int32_t limit) {
    return std::uniform_int_distribution<int32_t>(0, limit - 1)(rng);
  };
  std::vector<Seq> seqs(kRows);
  for (Seq& seq : seqs) {
    SequenceSampling& s = seq.sampling;
    s.temperature = 0;
    // Distinct bias ids, so the order of additions cannot matter.
    std::vector<int32_t> ids(kVocab);
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng);
    for (int i = 0; i < 3; ++i) s.logit_bias.emplace_back(ids[i], uniform(-3, 3));
    s.min_tokens = id(5);
    for (int i = 0; i < 4; ++i) s.min_tokens_banned_ids.push_back(id(kVocab));
    s.repetition_penalty = std::vector<float>{1, 0.7f, 1.3f, 2}[id(4)];
    s.presence_penalty = uniform(-1.5f, 1.5f);
    s.frequency_penalty = uniform(-1.5f, 1.5f);
    for (int i = 0; i < 6; ++i) seq.prompt.push_back(id(kVocab));
    // Outputs from a small range so ids repeat.
    const int num_output = id(7);
    for (int i = 0; i < num_output; ++i) seq.output.push_back(id(12));
  }
  const std::vector<float> raw = RandomLogits(kRows * kVocab, 99);
  std::vector<float> logits = raw;
  const std::vector<SampledToken> results = Run(&logits, seqs);
  int argmax_changed = 0;
  for (int r = 0; r < kRows; ++r) {
    SCOPED_TRACE(r);
    const std::vector<float> raw_row(raw.begin() + r * kVocab, raw.begin() + (r + 1) * kVocab);
    const std::vector<float> row(logits.begin() + r * kVocab, logits.begin() + (r + 1) * kVocab);
    const std::vector<float> expected = ReferenceProcess(raw_row, seqs[r]);
    ExpectLogitsMatch(row, expected);
    EXPECT_EQ(results[r].token_id, ReferenceArgmax(expected));
    argmax_changed += ReferenceArgmax(expected) != ReferenceArgmax(raw_row);
  }
  EXPECT_GT(argmax_changed, kRows / 4);  // the case exercises the processing
}

TEST_P(SamplerTest, LogprobsAreLogSoftmaxOfRawLogits) {
  constexpr int64_t kVocab = 100;
  // Offset far above where exp overflows, so only a stable softmax passes.
  std::vector<float> raw = RandomLogits(kVocab, 7, 995, 1005);
  Seq seq = Greedy();
  seq.sampling.top_logprobs = 5;
  // The processing moves the sampled token away from the raw argmax; its
  // logprob is still that of the raw logits.
  seq.sampling.logit_bias = {{17, 50}};
  seq.prompt = {ReferenceArgmax(raw)};
  seq.sampling.repetition_penalty = 1.5f;
  std::vector<float> logits = raw;
  const SampledToken result = RunOne(&logits, seq);
  const std::vector<double> expected = ReferenceLogSoftmax(raw);
  EXPECT_EQ(result.token_id, 17);
  ASSERT_TRUE(result.logprob.has_value());
  EXPECT_NEAR(*result.logprob, expected[17], 1e-5);

  const std::vector<int32_t> top = ReferenceTopIds(raw, 5);
  ASSERT_EQ(result.top_logprobs.size(), 5u);
  for (size_t i = 0; i < top.size(); ++i) {
    EXPECT_EQ(result.top_logprobs[i].first, top[i]) << i;
    EXPECT_NEAR(result.top_logprobs[i].second, expected[top[i]], 1e-5) << i;
  }

  // Sampled (not greedy) rows get the same treatment.
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Seq sampled;
    sampled.sampling.seed = seed;
    sampled.sampling.top_logprobs = 0;
    std::vector<float> small = RandomLogits(8, seed, -2, 2);
    const std::vector<double> small_expected = ReferenceLogSoftmax(small);
    const SampledToken token = RunOne(&small, sampled);
    ASSERT_TRUE(token.logprob.has_value());
    EXPECT_NEAR(*token.logprob, small_expected[token.token_id], 1e-5) << seed;
  }
}

TEST_P(SamplerTest, TopLogprobsOrderTiesAndCounts) {
  const std::vector<float> raw = {1, 3, 3, 2, 3, 0};
  const std::vector<double> expected = ReferenceLogSoftmax(raw);
  const auto top_ids = [&](std::optional<uint32_t> count) {
    Seq seq = Greedy();
    seq.sampling.top_logprobs = count;
    std::vector<float> logits = raw;
    const SampledToken result = RunOne(&logits, seq);
    std::vector<int32_t> ids;
    for (const auto& [id, logprob] : result.top_logprobs) {
      EXPECT_NEAR(logprob, expected[id], 1e-5);
      ids.push_back(id);
    }
    EXPECT_EQ(result.logprob.has_value(), count.has_value());
    return ids;
  };
  EXPECT_EQ(top_ids(3), (std::vector<int32_t>{1, 2, 4}));
  EXPECT_EQ(top_ids(4), (std::vector<int32_t>{1, 2, 4, 3}));
  EXPECT_EQ(top_ids(kMaxTopLogprobs), (std::vector<int32_t>{1, 2, 4, 3, 0, 5}));  // > vocab
  EXPECT_EQ(top_ids(0), (std::vector<int32_t>{}));  // the sampled token's logprob only
  EXPECT_EQ(top_ids(std::nullopt), (std::vector<int32_t>{}));
}

TEST_P(SamplerTest, SeedAndOutputCountFixTheDraw) {
  constexpr int64_t kVocab = 32;
  const std::vector<float> raw = RandomLogits(kVocab, 5, -1, 1);
  int offset_mattered = 0;
  int seed_mattered = 0;
  for (uint64_t seed = 0; seed < 64; ++seed) {
    SCOPED_TRACE(seed);
    Seq seq;
    seq.sampling.seed = seed;
    seq.output.assign(1 + seed % 5, 3);  // no penalties: only the offset sees it
    std::vector<float> first = raw, second = raw;
    const int32_t token = RunOne(&first, seq).token_id;
    EXPECT_EQ(RunOne(&second, seq).token_id, token);

    // The same draw as the backend given (seed, offset = num_output_tokens).
    const auto direct = [&](uint64_t draw_seed, uint64_t offset) {
      kernels::SamplingParams params;
      params.seed = draw_seed;
      params.offset = offset;
      int32_t out = -1;
      backend_->Sample(raw.data(), 1, kVocab, &params, &out);
      return out;
    };
    EXPECT_EQ(token, direct(seed, seq.output.size()));
    offset_mattered += direct(seed, 0) != token;
    seed_mattered += direct(seed + 1000, seq.output.size()) != token;
  }
  // Guards that the comparison above can tell a wrong seed or offset apart.
  EXPECT_GT(offset_mattered, 10);
  EXPECT_GT(seed_mattered, 10);
}

// A batch mixing every feature, including a dead (all-banned) row.
std::vector<Seq> MixedBatch(int64_t vocab) {
  std::vector<Seq> seqs;
  for (int i = 0; i < 12; ++i) {
    Seq seq;
    SequenceSampling& s = seq.sampling;
    s.seed = 100 + i;
    s.temperature = i % 4 == 0 ? 0.0f : 0.5f + 0.25f * (i % 3);
    s.top_k = i % 3 == 1 ? 5 : 0;
    s.top_p = i % 5 == 2 ? 0.8f : 1.0f;
    s.min_p = i % 6 == 3 ? 0.05f : 0.0f;
    if (i % 2 == 0) s.logit_bias = {{i, 1.5f}};
    if (i % 3 == 0) {
      s.min_tokens = 4;
      s.min_tokens_banned_ids = {0, 1, 2};
    }
    s.repetition_penalty = i % 4 == 1 ? 1.2f : 1.0f;
    s.presence_penalty = i % 5 == 0 ? 0.5f : 0.0f;
    s.frequency_penalty = i % 7 == 3 ? 0.3f : 0.0f;
    if (i % 2 == 1) s.top_logprobs = i % 4;
    seq.prompt = {i, i + 1, 7};
    seq.output.assign(i % 6, (i * 5) % vocab);
    seqs.push_back(seq);
  }
  Seq dead;
  dead.sampling.min_tokens = 1;
  for (int32_t id = 0; id < vocab; ++id) dead.sampling.min_tokens_banned_ids.push_back(id);
  dead.sampling.top_logprobs = 2;
  seqs.insert(seqs.begin() + 5, dead);
  return seqs;
}

TEST_P(SamplerTest, RowResultsDoNotDependOnTheOtherRows) {
  constexpr int64_t kVocab = 40;
  const std::vector<Seq> seqs = MixedBatch(kVocab);
  const int64_t rows = seqs.size();
  const std::vector<float> raw = RandomLogits(rows * kVocab, 11);
  std::vector<float> together = raw;
  const std::vector<SampledToken> batch = Run(&together, seqs);
  ASSERT_EQ(static_cast<int64_t>(batch.size()), rows);

  std::vector<Seq> reversed(seqs.rbegin(), seqs.rend());
  std::vector<float> reversed_logits(rows * kVocab);
  for (int64_t r = 0; r < rows; ++r) {
    std::copy_n(raw.begin() + r * kVocab, kVocab,
                reversed_logits.begin() + (rows - 1 - r) * kVocab);
  }
  const std::vector<SampledToken> reversed_batch = Run(&reversed_logits, reversed);

  for (int64_t r = 0; r < rows; ++r) {
    SCOPED_TRACE(r);
    std::vector<float> alone(raw.begin() + r * kVocab, raw.begin() + (r + 1) * kVocab);
    const SampledToken single = RunOne(&alone, seqs[r]);
    const SampledToken& other_order = reversed_batch[rows - 1 - r];
    for (const SampledToken* in_batch : {&batch[r], &other_order}) {
      EXPECT_EQ(in_batch->token_id, single.token_id);
      EXPECT_EQ(in_batch->logprob, single.logprob);  // bitwise
      EXPECT_EQ(in_batch->top_logprobs, single.top_logprobs);
    }
    EXPECT_TRUE(std::equal(alone.begin(), alone.end(), together.begin() + r * kVocab));
  }
}

TEST_P(SamplerTest, SampledFrequenciesFollowTheProcessedSoftmax) {
  // Raw probabilities 0.1 .. 0.4; bias lifts id 0 and presence lowers id 3,
  // so the processed distribution differs from the raw one by > 0.1 per id.
  const std::vector<float> raw = {std::log(0.1f), std::log(0.2f), std::log(0.3f),
                                  std::log(0.4f)};
  for (float temperature : {1.0f, 0.7f}) {
    SCOPED_TRACE(temperature);
    Seq base;
    base.sampling.temperature = temperature;
    base.sampling.logit_bias = {{0, 1}};
    base.sampling.presence_penalty = 1;
    base.output = {3};
    const std::vector<float> processed = ReferenceProcess(raw, base);
    std::vector<double> expected(raw.size());
    double total = 0;
    for (size_t i = 0; i < raw.size(); ++i) {
      total += expected[i] = std::exp(processed[i] / temperature);
    }
    for (double& p : expected) p /= total;

    // Fixed seeds: deterministic, and 4000 draws put each frequency within
    // ~0.008 (one standard error) of its probability; 0.03 is loose.
    constexpr int kDraws = 4000;
    std::vector<Seq> seqs(kDraws, base);
    for (int i = 0; i < kDraws; ++i) seqs[i].sampling.seed = 1000 + i;
    std::vector<float> logits;
    for (int i = 0; i < kDraws; ++i) logits.insert(logits.end(), raw.begin(), raw.end());
    std::vector<int> counts(raw.size(), 0);
    for (const SampledToken& t : Run(&logits, seqs)) ++counts.at(t.token_id);
    for (size_t i = 0; i < raw.size(); ++i) {
      EXPECT_NEAR(static_cast<double>(counts[i]) / kDraws, expected[i], 0.03) << "id " << i;
    }
  }
}

TEST_P(SamplerTest, AllBannedRowFallsBackToRawArgmax) {
  const std::vector<float> raw = {0.5f, 2, 1, 3, -1, 0};
  for (float temperature : {0.0f, 1.0f}) {
    SCOPED_TRACE(temperature);
    Seq dead;
    dead.sampling.temperature = temperature;
    dead.sampling.min_tokens = 2;
    dead.sampling.min_tokens_banned_ids = {5, 4, 3, 2, 1, 0};
    dead.sampling.logit_bias = {{1, 5}};  // the raw argmax counts, not the biased one
    dead.sampling.top_logprobs = 1;
    Seq alive = Greedy();
    std::vector<float> logits = raw;
    logits.insert(logits.end(), raw.begin(), raw.end());
    const std::vector<SampledToken> results = Run(&logits, {dead, alive});
    EXPECT_EQ(results[0].token_id, 3);
    ASSERT_TRUE(results[0].logprob.has_value());
    EXPECT_NEAR(*results[0].logprob, ReferenceLogSoftmax(raw)[3], 1e-5);
    EXPECT_EQ(results[1].token_id, 3);  // the other row is unaffected
  }

  // Raw -inf entries plus bans covering the rest.
  Seq dead;
  dead.sampling.min_tokens = 1;
  dead.sampling.min_tokens_banned_ids = {1, 3};
  std::vector<float> logits = {kNegInf, 1, kNegInf, 2};
  EXPECT_EQ(RunOne(&logits, dead).token_id, 3);

  // Raw logits all -inf: a defined answer (the lowest id), no crash.
  Seq plain;
  logits.assign(5, kNegInf);
  EXPECT_EQ(RunOne(&logits, plain).token_id, 0);
}

TEST_P(SamplerTest, AllowedTokenMaskComesBeforeEveryOtherRule) {
  // 20 ids, so the mask spans three bytes and ids past its end are cut.
  std::vector<float> raw(20);
  for (int32_t i = 0; i < 20; ++i) raw[i] = static_cast<float>(i % 7);
  Seq seq = Greedy();
  seq.allowed_token_mask = MaskOf({2, 9, 12}, 2);  // ids 16..19 are past its end
  seq.sampling.logit_bias = {{19, 50}, {2, 3}};  // a bias cannot bring back a masked id
  seq.sampling.top_logprobs = 2;
  std::vector<float> logits = raw;
  const SampledToken token = RunOne(&logits, seq);
  EXPECT_EQ(token.token_id, 2);  // 2 + bias 3 = 5 beats 9 % 7 = 2 and 12 % 7 = 5 by the lower id
  for (int32_t i = 0; i < 20; ++i) {
    if (i != 2 && i != 9 && i != 12) EXPECT_EQ(logits[i], kNegInf) << i;
  }
  // Logprobs stay those of the raw logits, the masked ids included.
  ASSERT_TRUE(token.logprob.has_value());
  EXPECT_NEAR(*token.logprob, ReferenceLogSoftmax(raw)[2], 1e-5);
  EXPECT_EQ(token.top_logprobs[0].first, 6);  // the raw argmax, although masked

  // Sampled at temperature 1, only allowed ids ever come out.
  Seq hot;
  hot.allowed_token_mask = MaskOf({0, 7, 15}, 3);
  for (uint64_t draw = 0; draw < 200; ++draw) {
    hot.sampling.seed = draw;
    logits = raw;
    const int32_t id = RunOne(&logits, hot).token_id;
    EXPECT_TRUE(id == 0 || id == 7 || id == 15) << id;
  }

  // The min_tokens ban on the only allowed id: the fallback stays inside the
  // mask (the grammar wins over min_tokens), taking the best allowed raw logit.
  Seq banned = Greedy();
  banned.allowed_token_mask = MaskOf({3, 4}, 3);
  banned.sampling.min_tokens = 1;
  banned.sampling.min_tokens_banned_ids = {3, 4};
  logits = raw;
  EXPECT_EQ(RunOne(&logits, banned).token_id, 4);
}

std::vector<BackendCase> Backends() {
  return {{"reference", [] { return kernels::MakeReferenceBackend(); }},
          {"cpu", [] { return kernels::MakeCpuBackend(2); }}};
}

INSTANTIATE_TEST_SUITE_P(Backends, SamplerTest, ::testing::ValuesIn(Backends()),
                         [](const auto& info) { return info.param.name; });

TEST(TokenHistoryTest, CountsOutputAndKnowsThePrompt) {
  const std::vector<int32_t> prompt = {4, 9, 4};
  TokenHistory history(prompt);
  EXPECT_TRUE(history.InPrompt(4));
  EXPECT_TRUE(history.InPrompt(9));
  EXPECT_FALSE(history.InPrompt(5));
  EXPECT_EQ(history.prompt_ids().size(), 2u);
  EXPECT_EQ(history.num_output_tokens(), 0);
  for (int32_t id : {7, 2, 7, 7}) history.AddOutputToken(id);
  EXPECT_EQ(history.num_output_tokens(), 4);
  EXPECT_EQ(history.OutputCount(7), 3);
  EXPECT_EQ(history.OutputCount(2), 1);
  EXPECT_EQ(history.OutputCount(4), 0);
  EXPECT_EQ(history.output_counts().size(), 2u);
}

TEST(HasLogitProcessingTest, TrueExactlyWhenAStepChangesSomething) {
  EXPECT_FALSE(SequenceSampling{}.HasLogitProcessing());
  SequenceSampling s;
  s.top_logprobs = 3;
  s.temperature = 0.5f;
  s.min_tokens = 4;  // nothing banned: no-op
  EXPECT_FALSE(s.HasLogitProcessing());
  const std::vector<std::function<void(SequenceSampling&)>> each_step = {
      [](SequenceSampling& x) { x.logit_bias = {{1, 0.5f}}; },
      [](SequenceSampling& x) {
        x.min_tokens = 1;
        x.min_tokens_banned_ids = {2};
      },
      [](SequenceSampling& x) { x.repetition_penalty = 1.1f; },
      [](SequenceSampling& x) { x.presence_penalty = -0.5f; },
      [](SequenceSampling& x) { x.frequency_penalty = 0.5f; },
  };
  for (size_t i = 0; i < each_step.size(); ++i) {
    SequenceSampling changed;
    each_step[i](changed);
    EXPECT_TRUE(changed.HasLogitProcessing()) << i;
  }
}

constexpr int32_t kVocab = 10;  // for ValidateSampling

struct InvalidCase {
  std::string field;
  std::function<void(SequenceSampling&)> mutate;
};

TEST(ValidateSamplingTest, AcceptsDefaultsAndBoundaries) {
  EXPECT_TRUE(ValidateSampling(SequenceSampling{}, kVocab).ok());
  SequenceSampling s;
  s.temperature = 0;
  s.top_p = 1;
  s.min_p = 1;
  s.top_k = 0;
  s.presence_penalty = -2;
  s.frequency_penalty = 2;
  s.repetition_penalty = 0.01f;
  s.logit_bias = {{0, -100}, {9, 100}};
  s.min_tokens_banned_ids = {0, 9};
  s.top_logprobs = kMaxTopLogprobs;
  EXPECT_TRUE(ValidateSampling(s, kVocab).ok());
}

TEST(ValidateSamplingTest, RejectsEachFieldOutOfRangeNamingIt) {
  constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const std::vector<InvalidCase> cases = {
      {"temperature", [](SequenceSampling& s) { s.temperature = -0.1f; }},
      {"temperature", [=](SequenceSampling& s) { s.temperature = kInf; }},
      {"temperature", [=](SequenceSampling& s) { s.temperature = kNaN; }},
      {"top_k", [](SequenceSampling& s) { s.top_k = -1; }},
      {"top_p", [](SequenceSampling& s) { s.top_p = 0; }},
      {"top_p", [](SequenceSampling& s) { s.top_p = 1.01f; }},
      {"top_p", [=](SequenceSampling& s) { s.top_p = kNaN; }},
      {"min_p", [](SequenceSampling& s) { s.min_p = -0.01f; }},
      {"min_p", [](SequenceSampling& s) { s.min_p = 1.5f; }},
      {"presence_penalty", [](SequenceSampling& s) { s.presence_penalty = 2.5f; }},
      {"presence_penalty", [](SequenceSampling& s) { s.presence_penalty = -2.01f; }},
      {"frequency_penalty", [](SequenceSampling& s) { s.frequency_penalty = -3; }},
      {"frequency_penalty", [=](SequenceSampling& s) { s.frequency_penalty = kNaN; }},
      {"repetition_penalty", [](SequenceSampling& s) { s.repetition_penalty = 0; }},
      {"repetition_penalty", [](SequenceSampling& s) { s.repetition_penalty = -1; }},
      {"repetition_penalty", [=](SequenceSampling& s) { s.repetition_penalty = kInf; }},
      {"logit_bias", [](SequenceSampling& s) { s.logit_bias = {{-1, 1}}; }},
      {"logit_bias", [](SequenceSampling& s) { s.logit_bias = {{3, 1}, {kVocab, 1}}; }},
      {"logit_bias", [](SequenceSampling& s) { s.logit_bias = {{3, 100.5f}}; }},
      {"logit_bias", [=](SequenceSampling& s) { s.logit_bias = {{3, -kInf}}; }},
      {"min_tokens_banned_ids", [](SequenceSampling& s) { s.min_tokens_banned_ids = {kVocab}; }},
      {"min_tokens_banned_ids",
       [](SequenceSampling& s) { s.min_tokens_banned_ids = {1, -2}; }},
      {"top_logprobs", [](SequenceSampling& s) { s.top_logprobs = kMaxTopLogprobs + 1; }},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    SequenceSampling s;
    cases[i].mutate(s);
    const absl::Status status = ValidateSampling(s, kVocab);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(status.message()), HasSubstr(cases[i].field));
  }
}

TEST(ValidateSamplingTest, MessageGivesRangeAndValue) {
  SequenceSampling s;
  s.top_p = 0;
  EXPECT_EQ(std::string(ValidateSampling(s, 10).message()), "top_p must be in (0, 1], got 0");
}

}  // namespace
}  // namespace duet::worker
