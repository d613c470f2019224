// Paged attention on the CPU: the body of CpuBackend::PagedAttention.
#ifndef DUET_KERNELS_CPU_CPU_ATTENTION_H_
#define DUET_KERNELS_CPU_CPU_ATTENTION_H_

#include <cstdint>

#include "kernels/cpu/thread_pool.h"
#include "kernels/cpu/vector_kernels.h"
#include "kernels/ops.h"

namespace duet::kernels::cpu {

// See Backend::PagedAttention. One task per (sequence, query, KV head): the
// task reads each cached K and V row once for all query heads of its group,
// computes exact softmax scores (two passes over the scores), and writes
// those heads' outputs. q, out: [total queries, num_q_heads, head_dim].
void PagedAttention(const float* q, const float* k_cache, const float* v_cache,
                    const KvCacheLayout& layout, const AttentionBatch& batch, int32_t num_q_heads,
                    float scale, float* out, const VectorKernels& vec, ThreadPool& pool);

}  // namespace duet::kernels::cpu

#endif  // DUET_KERNELS_CPU_CPU_ATTENTION_H_
