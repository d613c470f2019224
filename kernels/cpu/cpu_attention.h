// Paged attention on the CPU: the body of CpuBackend::PagedAttention.
#ifndef DUET_KERNELS_CPU_CPU_ATTENTION_H_
#define DUET_KERNELS_CPU_CPU_ATTENTION_H_

#include <cstdint>

#include "kernels/cpu/thread_pool.h"
#include "kernels/cpu/vector_kernels.h"
#include "kernels/ops.h"

namespace duet::kernels::cpu {

// See Backend::PagedAttention. A query row's keys are taken in chunks of 256
// positions (a task each when there are few rows, else a task per row); a
// chunk reads each cached token's K and V rows once for every query head, and
// the chunks are folded in key order. A bf16 cache goes through the same
// steps with its values widened as they are loaded (VectorKernels::dots_bf16,
// weighted_rows_bf16). q, out: [total queries, num_q_heads, head_dim].
void PagedAttention(const float* q, const void* k_cache, const void* v_cache,
                    const KvCacheLayout& layout, const AttentionBatch& batch, int32_t num_q_heads,
                    float scale, float* out, const VectorKernels& vec, ThreadPool& pool);

}  // namespace duet::kernels::cpu

#endif  // DUET_KERNELS_CPU_CPU_ATTENTION_H_
