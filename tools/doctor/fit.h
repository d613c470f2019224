// Will a model fit on these GPUs? For one model config, weight format and
// GPU set, ComputeFit costs three layouts and gives each a verdict:
//   tp        tensor parallel over all the GPUs (one copy of the model);
//   ep        expert parallel over all the GPUs, attention tensor parallel
//             (MoE models only);
//   replicas  one whole copy of the model on every GPU.
//
// Per GPU of a layout (bytes; model_bytes.h gives weights and KV):
//   budget      = gpu_memory_bytes × gpu_memory_utilization
//   runtime     = 1 GiB (CUDA context and kernel images, cuBLASLt workspace,
//                 allocator slack) + 0.5 GiB when the layout spans more than
//                 one GPU (NCCL channels and buffers)
//   activations = max_num_batched_tokens × 2 B × per_token      bf16 step workspace
//               + max_num_seqs × vocab × 4 B        fp32 logits gathered on rank 0
//     per_token = 4·hidden (residual, norm, attention and MLP outputs)
//               + q_rows + 2·kv_rows (this rank's q, k, v)
//               + ffn, the largest over the model's layer kinds:
//       dense:  3·intermediate/ranks (gate, up, their product)
//       MoE:    top_k·(3·expert_rows + 2·hidden) + 2·num_experts (every one of
//               a token's top-k experts may be on this rank: its gate, up and
//               product rows, the token copied in and its output copied out;
//               fp32 router logits take two bf16 slots per expert);
//               expert_rows is moe_intermediate_size, divided by ranks
//               under tp
//   kv_room     = budget − weights − runtime − activations   (may be negative)
//   kv_capacity_tokens = whole 16-token blocks that fit kv_room, × 16
//   max_concurrent_seqs = kv_capacity_tokens / (max_model_len rounded up to
//                 whole blocks)          per model copy; replicas have one
//                 copy per GPU
//
// Verdicts, for one copy of the model:
//   does not fit  kv_room holds less than one max_model_len sequence;
//   borderline    fewer than 4 such sequences, or kv_room < 2 GiB;
//   fits          otherwise.
// A layout the model cannot be split into (heads or experts that do not
// divide, ep for a dense model) is "not applicable" with the reason.
//
// Pure functions; safe to call from any thread.
#ifndef DUET_TOOLS_DOCTOR_FIT_H_
#define DUET_TOOLS_DOCTOR_FIT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "tools/doctor/model_bytes.h"

namespace duet::doctor {

inline constexpr int64_t kGiB = int64_t{1} << 30;
inline constexpr int64_t kKvBlockTokens = 16;  // the router's KV block size
inline constexpr int64_t kRuntimeBytesPerGpu = kGiB;
inline constexpr int64_t kCollectiveBytesPerGpu = kGiB / 2;
inline constexpr int64_t kBorderlineSequences = 4;
inline constexpr int64_t kBorderlineKvBytes = 2 * kGiB;

struct FitOptions {
  int32_t num_gpus = 2;
  int64_t gpu_memory_bytes = 24 * kGiB;
  double gpu_memory_utilization = 0.9;    // (0, 1]
  int64_t max_model_len = 8192;           // [1, max_position_embeddings]
  int64_t max_num_batched_tokens = 2048;  // the router's defaults
  int64_t max_num_seqs = 256;
};

enum class Layout { kTensorParallel, kExpertParallel, kReplicas };
std::string_view LayoutName(Layout layout);  // "tp", "ep", "replicas"

enum class Verdict { kFits, kBorderline, kDoesNotFit, kNotApplicable };
std::string_view VerdictName(Verdict verdict);  // "fits", "borderline", ...

// One layout's figures, per GPU unless said otherwise. When verdict is
// kNotApplicable only layout and not_applicable_reason are set.
struct LayoutFit {
  Layout layout = Layout::kTensorParallel;
  Verdict verdict = Verdict::kNotApplicable;
  std::string not_applicable_reason;
  int32_t gpus_per_copy = 0;
  int32_t num_copies = 0;
  int64_t budget_bytes = 0;
  int64_t weight_bytes = 0;
  int64_t runtime_bytes = 0;
  int64_t activation_bytes = 0;
  int64_t kv_room_bytes = 0;  // negative when weights and overhead exceed the budget
  int64_t kv_bytes_per_token = 0;
  int64_t kv_capacity_tokens = 0;   // per copy
  int64_t max_concurrent_seqs = 0;  // per copy
};

struct FitReport {
  std::string architecture;  // config.json's architectures[0]
  ParameterCount parameters;
  Quantization quantization;
  FitOptions options;
  std::vector<LayoutFit> layouts;  // tp, ep, replicas, in that order
};

// InvalidArgument for options out of range (num_gpus < 1, memory <= 0,
// utilization outside (0, 1], max_model_len outside [1,
// max_position_embeddings], batch limits < 1).
absl::StatusOr<FitReport> ComputeFit(const ModelConfig& config, const Quantization& quantization,
                                     const FitOptions& options);

// gpu_memory_bytes × gpu_memory_utilization, rounded down.
int64_t BudgetBytesPerGpu(const FitOptions& options);

// The figures of one layout (exposed for tests); `plan` must pass
// ShardProblem.
LayoutFit FitLayout(const ModelConfig& config, const Quantization& quantization,
                    const FitOptions& options, Layout layout, const ShardPlan& plan);

}  // namespace duet::doctor

#endif  // DUET_TOOLS_DOCTOR_FIT_H_
