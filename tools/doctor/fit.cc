#include "tools/doctor/fit.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "common/status_macros.h"
#include "common/str_cat.h"

namespace duet::doctor {
namespace {

constexpr int64_t kActivationBytes = 2;  // bf16
constexpr int64_t kLogitBytes = 4;       // fp32

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Activation values (bf16 slots) one batched token needs on one rank.
int64_t ActivationValuesPerToken(const ModelConfig& config, const ShardPlan& plan) {
  const int64_t hidden = config.hidden_size;
  const int64_t attention = 4 * hidden + config.q_size() / plan.ranks +
                            2 * KvHeadsPerRank(config, plan.ranks) * config.head_dim;
  int64_t ffn = 0;
  for (int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
    if (config.IsMoeLayer(layer)) {
      const int64_t expert_rows = plan.expert_parallel ? config.moe_intermediate_size
                                                       : config.moe_intermediate_size / plan.ranks;
      ffn = std::max(ffn, config.num_experts_per_tok * (3 * expert_rows + 2 * hidden) +
                              2 * config.num_experts);
    } else {
      ffn = std::max(ffn, 3 * (config.intermediate_size / plan.ranks));
    }
  }
  return attention + ffn;
}

int64_t ActivationBytesPerGpu(const ModelConfig& config, const FitOptions& options,
                              const ShardPlan& plan) {
  return options.max_num_batched_tokens * kActivationBytes *
             ActivationValuesPerToken(config, plan) +
         options.max_num_seqs * config.vocab_size * kLogitBytes;
}

Verdict Judge(int64_t kv_room_bytes, int64_t max_concurrent_seqs) {
  if (max_concurrent_seqs < 1) return Verdict::kDoesNotFit;
  if (max_concurrent_seqs < kBorderlineSequences || kv_room_bytes < kBorderlineKvBytes) {
    return Verdict::kBorderline;
  }
  return Verdict::kFits;
}

absl::Status ValidateOptions(const ModelConfig& config, const FitOptions& options) {
  if (options.num_gpus < 1) {
    return absl::InvalidArgumentError(StrCat("--gpus must be at least 1, got ", options.num_gpus));
  }
  if (options.gpu_memory_bytes <= 0) {
    return absl::InvalidArgumentError("--gpu-memory-gib must be positive");
  }
  if (!(options.gpu_memory_utilization > 0.0 && options.gpu_memory_utilization <= 1.0)) {
    return absl::InvalidArgumentError(
        StrCat("--gpu-memory-utilization must be in (0, 1], got ", options.gpu_memory_utilization));
  }
  if (options.max_model_len < 1 || options.max_model_len > config.max_position_embeddings) {
    return absl::InvalidArgumentError(
        StrCat("--max-model-len ", options.max_model_len,
               " must be in [1, max_position_embeddings = ", config.max_position_embeddings, "]"));
  }
  if (options.max_num_batched_tokens < 1 || options.max_num_seqs < 1) {
    return absl::InvalidArgumentError("max_num_batched_tokens and max_num_seqs must be positive");
  }
  return absl::OkStatus();
}

LayoutFit NotApplicable(Layout layout, std::string reason) {
  LayoutFit fit;
  fit.layout = layout;
  fit.not_applicable_reason = std::move(reason);
  return fit;
}

}  // namespace

std::string_view LayoutName(Layout layout) {
  switch (layout) {
    case Layout::kTensorParallel:
      return "tp";
    case Layout::kExpertParallel:
      return "ep";
    case Layout::kReplicas:
      return "replicas";
  }
  return "unknown";
}

std::string_view VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kFits:
      return "fits";
    case Verdict::kBorderline:
      return "borderline";
    case Verdict::kDoesNotFit:
      return "does not fit";
    case Verdict::kNotApplicable:
      return "not applicable";
  }
  return "unknown";
}

int64_t BudgetBytesPerGpu(const FitOptions& options) {
  return static_cast<int64_t>(
      std::floor(static_cast<double>(options.gpu_memory_bytes) * options.gpu_memory_utilization));
}

LayoutFit FitLayout(const ModelConfig& config, const Quantization& quantization,
                    const FitOptions& options, Layout layout, const ShardPlan& plan) {
  LayoutFit fit;
  fit.layout = layout;
  fit.gpus_per_copy = plan.ranks;
  fit.num_copies = options.num_gpus / plan.ranks;
  fit.budget_bytes = BudgetBytesPerGpu(options);
  fit.weight_bytes = WeightBytesPerGpu(config, quantization, plan);
  fit.runtime_bytes = kRuntimeBytesPerGpu + (plan.ranks > 1 ? kCollectiveBytesPerGpu : 0);
  fit.activation_bytes = ActivationBytesPerGpu(config, options, plan);
  fit.kv_room_bytes =
      fit.budget_bytes - fit.weight_bytes - fit.runtime_bytes - fit.activation_bytes;
  fit.kv_bytes_per_token = KvBytesPerTokenPerGpu(config, plan.ranks);
  const int64_t block_bytes = kKvBlockTokens * fit.kv_bytes_per_token;
  const int64_t num_blocks = std::max<int64_t>(0, fit.kv_room_bytes) / block_bytes;
  fit.kv_capacity_tokens = num_blocks * kKvBlockTokens;
  fit.max_concurrent_seqs = num_blocks / CeilDiv(options.max_model_len, kKvBlockTokens);
  fit.verdict = Judge(fit.kv_room_bytes, fit.max_concurrent_seqs);
  return fit;
}

absl::StatusOr<FitReport> ComputeFit(const ModelConfig& config, const Quantization& quantization,
                                     const FitOptions& options) {
  DUET_RETURN_IF_ERROR(ValidateOptions(config, options));
  FitReport report;
  report.architecture = config.architecture;
  report.parameters = CountParameters(config);
  report.quantization = quantization;
  report.options = options;
  const struct {
    Layout layout;
    ShardPlan plan;
  } candidates[] = {
      {Layout::kTensorParallel, {.ranks = options.num_gpus, .expert_parallel = false}},
      {Layout::kExpertParallel, {.ranks = options.num_gpus, .expert_parallel = true}},
      {Layout::kReplicas, {.ranks = 1, .expert_parallel = false}},
  };
  for (const auto& [layout, plan] : candidates) {
    std::string problem = ShardProblem(config, quantization, plan);
    if (problem.empty() && layout == Layout::kExpertParallel && options.num_gpus == 1) {
      problem = "expert parallelism needs at least 2 GPUs";
    }
    report.layouts.push_back(problem.empty()
                                 ? FitLayout(config, quantization, options, layout, plan)
                                 : NotApplicable(layout, std::move(problem)));
  }
  return report;
}

}  // namespace duet::doctor
