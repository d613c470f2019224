// The row-level building blocks of the CPU ops other than matmul (norms,
// activations, softmax, rope, attention), as a table of functions with one
// implementation per instruction set. Each function works on one contiguous
// row; the ops parallelise over rows and heads around them.
#ifndef DUET_KERNELS_CPU_VECTOR_KERNELS_H_
#define DUET_KERNELS_CPU_VECTOR_KERNELS_H_

#include <cstdint>

namespace duet::kernels::cpu {

struct VectorKernels {
  // out[g · out_stride] = Σ_i queries[g·n + i]·k[i] for g < num_queries: the
  // dots of one key row with several queries (a GQA group), sharing the loads
  // of k. queries: [num_queries, n]; k: [n].
  void (*dots)(const float* queries, int64_t num_queries, const float* k, int64_t n, float* out,
               int64_t out_stride);
  // y[i] += alpha·x[i]. x, y: [n].
  void (*axpy)(float alpha, const float* x, float* y, int64_t n);
  // y[g·n + i] += Σ_t weights[g·weight_stride + t] · (rows[t] + row_offset)[i]
  // for g < num_weights, i < n, the t < count taken in order: per element
  // exactly the axpys of each row in turn, with the sums kept in registers
  // across the rows (attention's V accumulation). y: [num_weights, n].
  void (*weighted_rows)(const float* weights, int64_t num_weights, int64_t weight_stride,
                        const float* const* rows, int64_t row_offset, int64_t count, float* y, int64_t n);
  // x[i] *= factor. x: [n].
  void (*scale)(float* x, float factor, int64_t n);
  // Σ x[i]². x: [n].
  float (*sum_squares)(const float* x, int64_t n);
  // y[i] = (x[i]·inv_rms)·weight[i]. x, weight, y: [n]; y may alias x.
  void (*rms_apply)(const float* x, float inv_rms, const float* weight, float* y, int64_t n);
  // max x[i]. x: [n], n >= 1.
  float (*max)(const float* x, int64_t n);
  // x[i] = exp(x[i] - shift); returns the sum of the new values. x: [n].
  float (*exp_shift_sum)(float* x, float shift, int64_t n);
  // out[i] = silu(gate[i])·up[i]. gate, up, out: [n]; out may alias either.
  void (*silu_mul)(const float* gate, const float* up, float* out, int64_t n);
  // The rotate-half rope rotation of one head: for i < half, with
  // a = x[i], b = x[i + half]: x[i] = a·cos[i] − b·sin[i] and
  // x[i + half] = b·cos[i] + a·sin[i], each product rounded separately (as
  // transformers computes it). x: [2·half]; cos, sin: [half].
  void (*rotate_half)(float* x, const float* cos, const float* sin, int64_t half);
  // dots and weighted_rows over rows of bf16 values (a bf16 KV cache), each
  // widened to fp32 exactly as it is loaded: to the bit the fp32 kernels'
  // results on the widened rows.
  void (*dots_bf16)(const float* queries, int64_t num_queries, const uint16_t* k, int64_t n, float* out,
                    int64_t out_stride);
  void (*weighted_rows_bf16)(const float* weights, int64_t num_weights, int64_t weight_stride,
                             const uint16_t* const* rows, int64_t row_offset, int64_t count, float* y, int64_t n);
};

const VectorKernels& ScalarVectorKernels();
// Only call on CPUs where IsaSupported(Isa::kAvx2).
const VectorKernels& Avx2VectorKernels();

}  // namespace duet::kernels::cpu

#endif  // DUET_KERNELS_CPU_VECTOR_KERNELS_H_
