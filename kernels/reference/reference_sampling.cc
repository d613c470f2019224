#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/random.h"
#include "kernels/reference/reference_ops.h"

namespace duet::kernels::reference {

int32_t SampleRow(const float* logits, int64_t vocab, const SamplingParams& params) {
  if (params.temperature == 0.0f) {
    int64_t best = 0;
    for (int64_t i = 1; i < vocab; ++i) {
      if (logits[i] > logits[best]) best = i;
    }
    return static_cast<int32_t>(best);
  }

  // Step 2.
  std::vector<float> z(vocab);
  for (int64_t i = 0; i < vocab; ++i) z[i] = logits[i] / params.temperature;
  const float max_z = *std::max_element(z.begin(), z.end());
  std::vector<float> e(vocab);
  for (int64_t i = 0; i < vocab; ++i) e[i] = std::exp(z[i] - max_z);

  // Step 3.
  std::vector<int32_t> order(vocab);
  for (int64_t i = 0; i < vocab; ++i) order[i] = static_cast<int32_t>(i);
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return e[a] > e[b] || (e[a] == e[b] && a < b); });

  // Step 4.
  if (params.top_k > 0 && params.top_k < vocab) order.resize(params.top_k);
  // Step 5.
  if (params.top_p < 1.0f) {
    double total = 0;
    for (int32_t id : order) total += e[id];
    double running = 0;
    size_t keep = 0;
    while (keep < order.size()) {
      running += e[order[keep]];
      ++keep;
      if (running >= static_cast<double>(params.top_p) * total) break;
    }
    order.resize(keep);
  }
  // Step 6.
  if (params.min_p > 0.0f) {
    size_t keep = 1;
    while (keep < order.size() && !(e[order[keep]] < params.min_p)) ++keep;
    order.resize(keep);
  }
  // Step 7.
  double kept_mass = 0;
  for (int32_t id : order) kept_mass += e[id];
  const double target = static_cast<double>(Uniform(params.seed, params.offset)) * kept_mass;
  double running = 0;
  for (int32_t id : order) {
    running += e[id];
    if (running > target) return id;
  }
  return order.back();
}

}  // namespace duet::kernels::reference
