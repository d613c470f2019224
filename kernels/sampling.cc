#include "kernels/sampling.h"

#include <algorithm>
#include <cmath>

#include "kernels/random.h"

namespace duet::kernels {
namespace {

using Candidate = SamplingScratch::Candidate;

// Step 3's order: e descending, then id ascending. A strict total order, so
// every partial sort below yields exactly the prefix a full sort would. A
// function object rather than a function so the sorts inline it.
struct Before {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.e > b.e || (a.e == b.e && a.id < b.id);
  }
};

// Candidates [0, num_sorted) are in order and [0, pool) hold the top-k set;
// grows the ordered prefix, at most to `limit` <= pool: the next candidates
// are selected from the unordered rest in linear time, then sorted.
void SortMore(std::vector<Candidate>* candidates, int64_t pool, int64_t limit,
              int64_t* num_sorted) {
  const auto begin = candidates->begin();
  const int64_t target = std::min(std::max<int64_t>(64, *num_sorted * 8), limit);
  if (target < pool) std::nth_element(begin + *num_sorted, begin + target, begin + pool, Before());
  std::sort(begin + *num_sorted, begin + target, Before());
  *num_sorted = target;
}

// The length of the kept prefix after steps 4-6, or 0 when it reaches past
// the `num_sorted` candidates already in order.
int64_t KeptPrefix(const std::vector<Candidate>& sorted, int64_t num_sorted, int64_t top_k_count,
                   double top_p_mass, const SamplingParams& params) {
  const bool use_top_p = params.top_p < 1.0f;
  const bool use_min_p = params.min_p > 0.0f;
  double running = 0;
  for (int64_t j = 0; j < num_sorted; ++j) {
    if (j > 0 && use_min_p && sorted[j].e < params.min_p) return j;
    running += sorted[j].e;
    if (use_top_p && running >= top_p_mass) return j + 1;
    if (j + 1 == top_k_count) return j + 1;
  }
  return 0;
}

}  // namespace

int32_t ArgmaxRow(const float* values, int64_t count) {
  int64_t best = 0;
  for (int64_t i = 1; i < count; ++i) {
    if (values[i] > values[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

int32_t SampleRow(const float* logits, int64_t vocab, const SamplingParams& params,
                  SamplingScratch* scratch) {
  if (params.temperature == 0.0f) return ArgmaxRow(logits, vocab);

  std::vector<Candidate>& candidates = scratch->candidates;
  candidates.resize(vocab);
  float max_z = logits[0] / params.temperature;
  for (int64_t i = 1; i < vocab; ++i) max_z = std::max(max_z, logits[i] / params.temperature);
  for (int64_t i = 0; i < vocab; ++i) {
    candidates[i] = {std::exp(logits[i] / params.temperature - max_z), static_cast<int32_t>(i)};
  }

  // Most rows need only the few hundred most likely tokens in order, not
  // the whole vocabulary, so the sorted prefix grows only as far as needed.
  const int64_t top_k_count = params.top_k > 0 ? std::min<int64_t>(params.top_k, vocab) : vocab;
  if (top_k_count < vocab) {
    std::nth_element(candidates.begin(), candidates.begin() + top_k_count, candidates.end(),
                     Before());
  }
  double top_k_mass = 0;  // T of step 5
  for (int64_t i = 0; i < top_k_count; ++i) top_k_mass += candidates[i].e;

  int64_t num_sorted = 0;
  int64_t kept = top_k_count;
  double kept_mass = top_k_mass;
  if (params.top_p < 1.0f || params.min_p > 0.0f) {
    const double top_p_mass = static_cast<double>(params.top_p) * top_k_mass;
    kept = 0;
    while (kept == 0) {
      SortMore(&candidates, top_k_count, top_k_count, &num_sorted);
      kept = KeptPrefix(candidates, num_sorted, top_k_count, top_p_mass, params);
    }
    kept_mass = 0;
    for (int64_t j = 0; j < kept; ++j) kept_mass += candidates[j].e;
  }

  const double target = static_cast<double>(Uniform(params.seed, params.offset)) * kept_mass;
  double running = 0;
  for (int64_t j = 0; j < kept; ++j) {
    if (j == num_sorted) SortMore(&candidates, top_k_count, kept, &num_sorted);
    running += candidates[j].e;
    if (running > target) return candidates[j].id;
  }
  return candidates[kept - 1].id;
}

}  // namespace duet::kernels
