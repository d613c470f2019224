// Token sampling, specified precisely so that every backend (the reference,
// the CPU backend, later CUDA) picks the same token for the same logits and
// SamplingParams. For one row of logits [vocab] (no NaNs):
//
//  1. temperature == 0: the argmax, lowest id on ties. Nothing below applies.
//  2. z_i = logit_i / temperature (one fp32 division); m = max z;
//     e_i = expf(z_i - m) in fp32. e_i is the unnormalised probability; the
//     most likely token has e = 1 exactly.
//  3. Order the tokens by e descending, ties by lower id first: t_0, t_1, ...
//     Every filter below keeps a prefix of this order, and t_0 always.
//  4. top-k (top_k > 0): keep t_0 .. t_{min(top_k, vocab) - 1}.
//  5. top-p (top_p < 1): with T = Σ e over the tokens top-k kept, keep the
//     shortest prefix t_0 .. t_j whose running Σ e >= top_p * T.
//  6. min-p (min_p > 0): drop kept tokens with e < min_p, i.e. with
//     p < min_p * p_max.
//  7. u = Uniform(seed, offset) (random.h); K = Σ e over the kept tokens.
//     Walking the kept tokens in order, return the first t_j whose running
//     Σ e > u * K (the last kept token if rounding leaves none).
//
// Sums are accumulated in double; their order is not part of the contract:
// summing at most 2^31 fp32 values in double moves the result by ~1e-16
// relative, so two backends disagree only when u (or a top-p boundary) lands
// within that distance of a boundary. expf may differ by an ulp between math
// libraries, with the same consequence.
#ifndef DUET_KERNELS_SAMPLING_H_
#define DUET_KERNELS_SAMPLING_H_

#include <cstdint>
#include <vector>

#include "kernels/ops.h"

namespace duet::kernels {

// Index of the largest value, the lowest index on ties. values: [count],
// count >= 1.
int32_t ArgmaxRow(const float* values, int64_t count);

// Reusable buffers for SampleRow; one per thread.
struct SamplingScratch {
  struct Candidate {
    float e;  // unnormalised probability, step 2
    int32_t id;
  };
  std::vector<Candidate> candidates;  // [vocab]
};

// The procedure above for one row. Sorts only as much of the vocabulary as
// the filters need. logits: [vocab], vocab >= 1.
int32_t SampleRow(const float* logits, int64_t vocab, const SamplingParams& params,
                  SamplingScratch* scratch);

}  // namespace duet::kernels

#endif  // DUET_KERNELS_SAMPLING_H_
