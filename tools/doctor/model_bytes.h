// What a model costs in memory, from its config.json alone: parameters
// counted from the tensor shapes, weight bytes per GPU for a weight format
// and a way of splitting the model over GPUs, and KV-cache bytes per token.
//
// Pure functions of their arguments; safe to call from any thread.
//
// Shapes follow the Hugging Face checkpoints duet loads (worker/models/):
//   embed_tokens [vocab, hidden]; per layer input and post-attention RMSNorm
//   [hidden]; q_proj [heads·head_dim, hidden], k/v_proj [kv_heads·head_dim,
//   hidden], o_proj [hidden, heads·head_dim] (+ biases per ModelConfig;
//   Qwen3's q_norm/k_norm [head_dim]); a dense MLP gate/up [intermediate,
//   hidden], down [hidden, intermediate]; a MoE layer the router gate
//   [experts, hidden] and per expert gate/up [moe_intermediate, hidden], down
//   [hidden, moe_intermediate]; final norm [hidden]; lm_head [vocab, hidden]
//   unless tied to embed_tokens.
//
// Bytes per weight format. Only the linear layers (q/k/v/o, gate/up/down,
// experts) are quantized; embeddings, lm_head, norms, biases and the MoE
// router gate stay 16-bit, as in the published AWQ and FP8 checkpoints.
//   bf16:     2 B per parameter.
//   FP8 e4m3: 1 B per parameter + one fp32 scale per block of
//             fp8_block_rows × fp8_block_cols (128×128 by default; 1 × a
//             whole row for per-channel scales, one per matrix per tensor).
//   AWQ-INT4: 0.5 B per parameter + per group of awq_group_size input rows
//             and per output column an fp16 scale (2 B) and a 4-bit zero
//             (packed 8 to an int32), i.e. 2.5 B per 128 weights.
//   INT4 (compressed-tensors pack-quantized): 0.5 B per parameter + a 16-bit
//             scale per output row and group of int4_group_size inputs (a
//             whole row for channel scales) + with zero points a 4-bit zero
//             each, packed 8 output rows to an int32.
// These are the bytes the loader holds (kernels/group_quant.h's layouts as
// stored), so the estimate is the loaded size; 16-bit parameters besides
// (norms, biases) are counted at 2 B.
//
// Splitting (ShardPlan, the layout of worker/models/model_shard.h):
//   attention is tensor parallel over the ranks: q/k/v by output rows (KV
//   heads split when kv_heads >= ranks, otherwise each rank holds one
//   replicated KV head), o_proj by input columns; dense MLPs likewise
//   (gate/up by rows, down by columns); MoE experts split by expert id
//   (expert parallel) or each expert by its intermediate rows (tensor
//   parallel); the router gate and the norms are whole on every rank.
//   embed_tokens and the lm_head are split by vocabulary rows,
//   ceil(vocab / ranks) each; a tied lm_head reads the embedding rows and
//   costs nothing more.
#ifndef DUET_TOOLS_DOCTOR_MODEL_BYTES_H_
#define DUET_TOOLS_DOCTOR_MODEL_BYTES_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/model_config.h"

namespace duet::doctor {

enum class WeightFormat {
  kBf16,     // 16-bit weights as published (bf16 or fp16)
  kFp8,      // FP8 e4m3 with fp32 block scales
  kAwqInt4,  // AutoAWQ 4-bit, fp16 scales and 4-bit zeros per group
  kInt4,     // compressed-tensors 4-bit, 16-bit scales, optional 4-bit zeros
};

// "bf16", "fp8", "awq-int4", "int4".
std::string_view WeightFormatName(WeightFormat format);

struct Quantization {
  WeightFormat format = WeightFormat::kBf16;
  int64_t awq_group_size = 128;  // AWQ: input rows sharing one scale and zero
  int64_t fp8_block_rows = 128;  // FP8: output rows sharing one scale; 0: all of them
  int64_t fp8_block_cols = 128;  // FP8: input columns sharing one scale; 0: a whole row
  int64_t int4_group_size = 128;  // INT4: inputs sharing one scale; 0: a whole row
  bool int4_zero_points = false;  // INT4: asymmetric, a stored zero per scale
};

// What --quantization asks for: kAuto reads config.json's quantization_config.
enum class QuantizationChoice { kAuto, kNone, kAwq, kFp8, kInt4 };

// "auto", "none", "awq", "fp8", "int4"; InvalidArgument otherwise.
absl::StatusOr<QuantizationChoice> ParseQuantizationChoice(std::string_view text);

// The weight format to cost. kAuto takes config.quantization as the loader
// reads it (common/weight_quantization.h: AWQ, compressed-tensors INT4 and
// FP8, quant_method fp8), and its error for a scheme the loader refuses. An
// explicit choice costs the model as if its checkpoint had that format (AWQ
// group 128, FP8 128×128 blocks, INT4 symmetric group 128), whatever
// config.json says.
absl::StatusOr<Quantization> ResolveQuantization(const ModelConfig& config,
                                                 QuantizationChoice choice);

// Parameters by role; every count is exact for the shapes above.
struct ParameterCount {
  int64_t embedding = 0;  // embed_tokens
  int64_t attention = 0;  // q/k/v/o weights and biases, q_norm/k_norm
  int64_t mlp = 0;        // dense MLP layers (weights and biases)
  int64_t experts = 0;    // MoE experts, all of them
  int64_t router = 0;     // MoE router gates
  int64_t norms = 0;      // per-layer and final RMSNorms
  int64_t lm_head = 0;    // 0 when tied to the embedding

  int64_t total() const { return embedding + attention + mlp + experts + router + norms + lm_head; }
};

ParameterCount CountParameters(const ModelConfig& config);

// How one copy of the model is spread over `ranks` GPUs.
struct ShardPlan {
  int32_t ranks = 1;
  bool expert_parallel = false;  // MoE experts split by expert id
};

// Empty when `plan` can split `config`; otherwise why not (heads, KV heads,
// intermediate sizes or experts that do not divide, an AWQ group that a
// column split would cut, expert parallelism for a dense model).
std::string ShardProblem(const ModelConfig& config, const Quantization& quantization,
                         const ShardPlan& plan);

// Weight bytes on the most loaded rank (rank 0) under `plan`. `plan` must
// pass ShardProblem.
int64_t WeightBytesPerGpu(const ModelConfig& config, const Quantization& quantization,
                          const ShardPlan& plan);

// KV heads one rank holds: kv_heads / ranks, or 1 (a replica) when
// kv_heads < ranks.
int64_t KvHeadsPerRank(const ModelConfig& config, int32_t ranks);

// K and V of one token on one rank, bf16: 2 × layers × KvHeadsPerRank ×
// head_dim × 2 B.
int64_t KvBytesPerTokenPerGpu(const ModelConfig& config, int32_t ranks);

}  // namespace duet::doctor

#endif  // DUET_TOOLS_DOCTOR_MODEL_BYTES_H_
