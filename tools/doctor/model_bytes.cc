#include "tools/doctor/model_bytes.h"

#include <string_view>
#include <vector>

#include "common/status_macros.h"
#include "common/str_cat.h"
#include "common/weight_quantization.h"
#include "glog/logging.h"

namespace duet::doctor {
namespace {

constexpr int64_t k16BitBytes = 2;
constexpr int64_t kFp8ScaleBytes = 4;     // fp32
constexpr int64_t kAwqScaleBytes = 2;     // fp16
constexpr int64_t kAwqZerosPerInt32 = 8;  // 4-bit zeros packed along output columns
constexpr int64_t kAwqInt32Bytes = 4;
constexpr int64_t kInt4ScaleBytes = 2;    // bf16 or fp16

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Which ParameterCount field a linear layer adds to.
enum class LinearRole { kAttention, kMlp, kExpert };

// One linear layer as rank 0 holds it: `rows` output features × `cols` input
// features, `count` of them (experts). `*_split` says which dimension the
// plan cut, so quantization blocks must not straddle ranks.
struct RankLinear {
  std::string_view name;
  LinearRole role;
  int64_t rows;
  int64_t cols;
  bool rows_split;
  bool cols_split;
  int64_t count = 1;
};

int64_t LinearBytes(const RankLinear& linear, const Quantization& quantization) {
  const int64_t rows = linear.rows;
  const int64_t cols = linear.cols;
  int64_t bytes = 0;
  switch (quantization.format) {
    case WeightFormat::kBf16:
      bytes = rows * cols * k16BitBytes;
      break;
    case WeightFormat::kFp8: {
      const int64_t block_rows =
          quantization.fp8_block_rows == 0 ? rows : quantization.fp8_block_rows;
      const int64_t block_cols =
          quantization.fp8_block_cols == 0 ? cols : quantization.fp8_block_cols;
      bytes = rows * cols + CeilDiv(rows, block_rows) * CeilDiv(cols, block_cols) * kFp8ScaleBytes;
      break;
    }
    case WeightFormat::kAwqInt4: {
      const int64_t groups = CeilDiv(cols, quantization.awq_group_size);
      bytes = CeilDiv(rows * cols, 2) + groups * rows * kAwqScaleBytes +
              groups * CeilDiv(rows, kAwqZerosPerInt32) * kAwqInt32Bytes;
      break;
    }
    case WeightFormat::kInt4: {
      const int64_t groups =
          quantization.int4_group_size == 0 ? 1 : CeilDiv(cols, quantization.int4_group_size);
      bytes = CeilDiv(rows * cols, 2) + groups * rows * kInt4ScaleBytes;
      if (quantization.int4_zero_points) {
        bytes += groups * CeilDiv(rows, kAwqZerosPerInt32) * kAwqInt32Bytes;
      }
      break;
    }
  }
  return bytes * linear.count;
}

// A linear whose output rows (`rows_split`) or input columns the plan cut
// when `split`.
RankLinear Linear(std::string_view name, LinearRole role, int64_t rows, int64_t cols,
                  bool rows_split, bool split, int64_t count = 1) {
  return RankLinear{.name = name,
                    .role = role,
                    .rows = rows,
                    .cols = cols,
                    .rows_split = split && rows_split,
                    .cols_split = split && !rows_split,
                    .count = count};
}

// The linear layers of `layer` on rank 0 under `plan`.
std::vector<RankLinear> LayerLinears(const ModelConfig& config, const ShardPlan& plan,
                                     int64_t layer) {
  constexpr bool kRows = true;
  constexpr bool kCols = false;
  const int64_t ranks = plan.ranks;
  const int64_t hidden = config.hidden_size;
  const int64_t q_rows = config.q_size() / ranks;
  const int64_t kv_rows = KvHeadsPerRank(config, plan.ranks) * config.head_dim;
  const bool split = ranks > 1;
  const LinearRole attention = LinearRole::kAttention;
  std::vector<RankLinear> linears = {
      Linear("q_proj", attention, q_rows, hidden, kRows, split),
      Linear("k_proj", attention, kv_rows, hidden, kRows, split),
      Linear("v_proj", attention, kv_rows, hidden, kRows, split),
      Linear("o_proj", attention, hidden, q_rows, kCols, split),
  };
  if (config.IsMoeLayer(layer)) {
    const bool ep = plan.expert_parallel;
    const int64_t experts = ep ? config.num_experts / ranks : config.num_experts;
    const int64_t width = ep ? config.moe_intermediate_size : config.moe_intermediate_size / ranks;
    const bool width_split = split && !ep;
    const LinearRole role = LinearRole::kExpert;
    linears.push_back(
        Linear("experts.gate_proj", role, width, hidden, kRows, width_split, experts));
    linears.push_back(Linear("experts.up_proj", role, width, hidden, kRows, width_split, experts));
    linears.push_back(
        Linear("experts.down_proj", role, hidden, width, kCols, width_split, experts));
  } else {
    const int64_t width = config.intermediate_size / ranks;
    const LinearRole role = LinearRole::kMlp;
    linears.push_back(Linear("mlp.gate_proj", role, width, hidden, kRows, split));
    linears.push_back(Linear("mlp.up_proj", role, width, hidden, kRows, split));
    linears.push_back(Linear("mlp.down_proj", role, hidden, width, kCols, split));
  }
  return linears;
}

// 16-bit parameters of `layer` on rank 0 besides its linear weights: norms,
// biases, q/k norms, the router gate.
int64_t LayerSmallParameters(const ModelConfig& config, const ShardPlan& plan, int64_t layer) {
  const int64_t ranks = plan.ranks;
  const int64_t hidden = config.hidden_size;
  int64_t params = 2 * hidden;  // input and post-attention RMSNorm
  if (config.qkv_bias) {
    params += config.q_size() / ranks + 2 * KvHeadsPerRank(config, plan.ranks) * config.head_dim;
  }
  if (config.o_proj_bias) params += hidden;
  if (config.qk_norm) params += 2 * config.head_dim;
  if (config.IsMoeLayer(layer)) {
    params += config.num_experts * hidden;
  } else if (config.mlp_bias) {
    params += 2 * (config.intermediate_size / ranks) + hidden;
  }
  return params;
}

bool HasDenseLayer(const ModelConfig& config) {
  for (int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
    if (!config.IsMoeLayer(layer)) return true;
  }
  return false;
}

bool HasMoeLayer(const ModelConfig& config) {
  for (int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
    if (config.IsMoeLayer(layer)) return true;
  }
  return false;
}

std::string Indivisible(std::string_view what, int64_t n, int64_t by) {
  return StrCat(what, " (", n, ") is not divisible by ", by);
}

// A quantization block cut by the split of `linear`, or empty.
std::string BlockProblem(const RankLinear& linear, const Quantization& quantization) {
  switch (quantization.format) {
    case WeightFormat::kBf16:
      return "";
    case WeightFormat::kAwqInt4:
      if (linear.cols_split && linear.cols % quantization.awq_group_size != 0) {
        return StrCat(linear.name, ": ", linear.cols, " input columns per rank cut AWQ groups of ",
                      quantization.awq_group_size);
      }
      if (linear.rows_split && linear.rows % kAwqZerosPerInt32 != 0) {
        return StrCat(linear.name, ": ", linear.rows, " output rows per rank cut AWQ's words of ",
                      kAwqZerosPerInt32, " outputs");
      }
      return "";
    case WeightFormat::kInt4: {
      const int64_t unit = quantization.int4_group_size == 0 ? 8 : quantization.int4_group_size;
      if (linear.cols_split && linear.cols % unit != 0) {
        return StrCat(linear.name, ": ", linear.cols, " input columns per rank cut INT4 ",
                      quantization.int4_group_size == 0 ? "words of " : "groups of ", unit);
      }
      if (linear.rows_split && quantization.int4_zero_points && linear.rows % kAwqZerosPerInt32 != 0) {
        return StrCat(linear.name, ": ", linear.rows, " output rows per rank cut INT4 zero-point words of ",
                      kAwqZerosPerInt32, " rows");
      }
      return "";
    }
    case WeightFormat::kFp8:
      if (linear.rows_split && quantization.fp8_block_rows != 0 &&
          linear.rows % quantization.fp8_block_rows != 0) {
        return StrCat(linear.name, ": ", linear.rows, " output rows per rank cut FP8 blocks of ",
                      quantization.fp8_block_rows, " rows");
      }
      if (linear.cols_split && quantization.fp8_block_cols != 0 &&
          linear.cols % quantization.fp8_block_cols != 0) {
        return StrCat(linear.name, ": ", linear.cols, " input columns per rank cut FP8 blocks of ",
                      quantization.fp8_block_cols, " columns");
      }
      return "";
  }
  return "";
}

}  // namespace

std::string_view WeightFormatName(WeightFormat format) {
  switch (format) {
    case WeightFormat::kBf16:
      return "bf16";
    case WeightFormat::kFp8:
      return "fp8";
    case WeightFormat::kAwqInt4:
      return "awq-int4";
    case WeightFormat::kInt4:
      return "int4";
  }
  return "unknown";
}

absl::StatusOr<QuantizationChoice> ParseQuantizationChoice(std::string_view text) {
  if (text == "auto") return QuantizationChoice::kAuto;
  if (text == "none") return QuantizationChoice::kNone;
  if (text == "awq") return QuantizationChoice::kAwq;
  if (text == "fp8") return QuantizationChoice::kFp8;
  if (text == "int4") return QuantizationChoice::kInt4;
  return absl::InvalidArgumentError(
      StrCat("--quantization must be auto, none, awq, fp8 or int4, got \"", text, "\""));
}

absl::StatusOr<Quantization> ResolveQuantization(const ModelConfig& config,
                                                 QuantizationChoice choice) {
  Quantization quantization;
  switch (choice) {
    case QuantizationChoice::kNone:
      return quantization;
    case QuantizationChoice::kAwq:
      quantization.format = WeightFormat::kAwqInt4;
      return quantization;
    case QuantizationChoice::kFp8:
      quantization.format = WeightFormat::kFp8;
      return quantization;
    case QuantizationChoice::kInt4:
      quantization.format = WeightFormat::kInt4;
      return quantization;
    case QuantizationChoice::kAuto:
      break;
  }
  // As the loader reads it, so the estimate is what it will hold.
  DUET_ASSIGN_OR_RETURN(const WeightQuantization stored, ParseWeightQuantization(config));
  switch (stored.format) {
    case ::duet::WeightFormat::kPlain:
      return quantization;
    case ::duet::WeightFormat::kAwq:
      quantization.format = WeightFormat::kAwqInt4;
      quantization.awq_group_size = stored.group_size;
      return quantization;
    case ::duet::WeightFormat::kInt4:
      quantization.format = WeightFormat::kInt4;
      quantization.int4_group_size = stored.group_size;
      quantization.int4_zero_points = stored.zero_points;
      return quantization;
    case ::duet::WeightFormat::kFp8:
      quantization.format = WeightFormat::kFp8;
      switch (stored.fp8_scales) {
        case Fp8Scales::kTensor:
          quantization.fp8_block_rows = 0;
          quantization.fp8_block_cols = 0;
          break;
        case Fp8Scales::kChannel:
          quantization.fp8_block_rows = 1;
          quantization.fp8_block_cols = 0;
          break;
        case Fp8Scales::kBlock:
          quantization.fp8_block_rows = stored.block_rows;
          quantization.fp8_block_cols = stored.block_cols;
          break;
      }
      return quantization;
  }
  return quantization;
}

ParameterCount CountParameters(const ModelConfig& config) {
  const ShardPlan whole;
  const int64_t hidden = config.hidden_size;
  ParameterCount count;
  count.embedding = config.vocab_size * hidden;
  count.lm_head = config.tie_word_embeddings ? 0 : config.vocab_size * hidden;
  count.norms = hidden;  // final norm
  for (int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
    for (const RankLinear& linear : LayerLinears(config, whole, layer)) {
      const int64_t params = linear.rows * linear.cols * linear.count;
      switch (linear.role) {
        case LinearRole::kAttention:
          count.attention += params;
          break;
        case LinearRole::kMlp:
          count.mlp += params;
          break;
        case LinearRole::kExpert:
          count.experts += params;
          break;
      }
    }
    count.norms += 2 * hidden;
    if (config.qkv_bias) count.attention += config.q_size() + 2 * config.kv_size();
    if (config.o_proj_bias) count.attention += hidden;
    if (config.qk_norm) count.attention += 2 * config.head_dim;
    if (config.IsMoeLayer(layer)) {
      count.router += config.num_experts * hidden;
    } else if (config.mlp_bias) {
      count.mlp += 2 * config.intermediate_size + hidden;
    }
  }
  return count;
}

int64_t KvHeadsPerRank(const ModelConfig& config, int32_t ranks) {
  CHECK_GE(ranks, 1);
  if (config.num_key_value_heads < ranks) return 1;
  return config.num_key_value_heads / ranks;
}

int64_t KvBytesPerTokenPerGpu(const ModelConfig& config, int32_t ranks) {
  return 2 * config.num_hidden_layers * KvHeadsPerRank(config, ranks) * config.head_dim *
         k16BitBytes;
}

std::string ShardProblem(const ModelConfig& config, const Quantization& quantization,
                         const ShardPlan& plan) {
  const int64_t ranks = plan.ranks;
  if (ranks < 1) return "the number of GPUs must be at least 1";
  const bool moe = HasMoeLayer(config);
  if (plan.expert_parallel && !moe) return StrCat(config.architecture, " has no experts");
  if (config.num_attention_heads % ranks != 0) {
    return Indivisible("num_attention_heads", config.num_attention_heads, ranks);
  }
  if (config.num_key_value_heads % ranks != 0 && ranks % config.num_key_value_heads != 0) {
    return StrCat("num_key_value_heads (", config.num_key_value_heads, ") and ", ranks,
                  " GPUs do not divide one another");
  }
  if (HasDenseLayer(config) && config.intermediate_size % ranks != 0) {
    return Indivisible("intermediate_size", config.intermediate_size, ranks);
  }
  if (moe && plan.expert_parallel && config.num_experts % ranks != 0) {
    return Indivisible("num_experts", config.num_experts, ranks);
  }
  if (moe && !plan.expert_parallel && config.moe_intermediate_size % ranks != 0) {
    return Indivisible("moe_intermediate_size", config.moe_intermediate_size, ranks);
  }
  // Every layer of one kind (dense or MoE) has the same shapes: check the
  // first of each kind.
  bool seen_dense = false;
  bool seen_moe = false;
  for (int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
    bool& seen = config.IsMoeLayer(layer) ? seen_moe : seen_dense;
    if (seen) continue;
    seen = true;
    for (const RankLinear& linear : LayerLinears(config, plan, layer)) {
      std::string problem = BlockProblem(linear, quantization);
      if (!problem.empty()) return problem;
    }
  }
  return "";
}

int64_t WeightBytesPerGpu(const ModelConfig& config, const Quantization& quantization,
                          const ShardPlan& plan) {
  CHECK(ShardProblem(config, quantization, plan).empty())
      << ShardProblem(config, quantization, plan);
  const int64_t hidden = config.hidden_size;
  const int64_t vocab_rows = CeilDiv(config.vocab_size, plan.ranks);
  // Embedding rows and (unless tied to them) lm_head rows, final norm.
  int64_t small_params = vocab_rows * hidden + hidden;
  if (!config.tie_word_embeddings) small_params += vocab_rows * hidden;
  int64_t linear_bytes = 0;
  for (int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
    for (const RankLinear& linear : LayerLinears(config, plan, layer)) {
      linear_bytes += LinearBytes(linear, quantization);
    }
    small_params += LayerSmallParameters(config, plan, layer);
  }
  return linear_bytes + small_params * k16BitBytes;
}

}  // namespace duet::doctor
