// The reference implementations of the ops that take more than a few lines,
// as free functions so reference_backend.cc stays a readable table. Plain,
// single-threaded, accumulating in double where a sum is involved.
#ifndef DUET_KERNELS_REFERENCE_REFERENCE_OPS_H_
#define DUET_KERNELS_REFERENCE_REFERENCE_OPS_H_

#include <cstdint>

#include "kernels/ops.h"

namespace duet::kernels::reference {

// See Backend::PagedAttention. Scores, softmax and the weighted sum of V are
// computed in double from the fp32 inputs (bf16 cache values widened), then
// rounded once.
void PagedAttention(const float* q, const void* k_cache, const void* v_cache,
                    const KvCacheLayout& layout, const AttentionBatch& batch, int32_t num_q_heads,
                    float scale, float* out);

// sampling.h's procedure for one row, written as literally as possible: a
// full sort of the vocabulary, then each filter in turn. logits: [vocab].
int32_t SampleRow(const float* logits, int64_t vocab, const SamplingParams& params);

}  // namespace duet::kernels::reference

#endif  // DUET_KERNELS_REFERENCE_REFERENCE_OPS_H_
