#include "worker/models/gguf_weights.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <deque>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "common/gguf_model_config.h"
#include "common/half.h"
#include "common/str_cat.h"
#include "worker/models/weight_buffer.h"

namespace duet::worker {
namespace {

struct NameMapping {
  std::string_view hf;    // after "model.layers.N."
  std::string_view gguf;  // after "blk.N."
};

constexpr std::array<NameMapping, 20> kLayerNames = {{
    {"input_layernorm.weight", "attn_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.o_proj.bias", "attn_output.bias"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
    {"mlp.gate_proj.bias", "ffn_gate.bias"},
    {"mlp.up_proj.bias", "ffn_up.bias"},
    {"mlp.down_proj.bias", "ffn_down.bias"},
    {"mlp.gate.weight", "ffn_gate_inp.weight"},
    {"mlp.shared_expert_gate.weight", "ffn_gate_inp_shexp.weight"},
}};

constexpr std::array<NameMapping, 3> kExpertNames = {{
    {"gate_proj.weight", "ffn_gate_exps.weight"},
    {"up_proj.weight", "ffn_up_exps.weight"},
    {"down_proj.weight", "ffn_down_exps.weight"},
}};

// Whether the rows of `hf_name` were permuted by llama.cpp's converter, and
// with how many heads.
std::optional<int64_t> PermutedHeads(std::string_view hf_name, const ModelConfig& config) {
  if (config.family != ModelFamily::kLlama) return std::nullopt;
  if (hf_name.ends_with("self_attn.q_proj.weight") || hf_name.ends_with("self_attn.q_proj.bias")) {
    return config.num_attention_heads;
  }
  if (hf_name.ends_with("self_attn.k_proj.weight") || hf_name.ends_with("self_attn.k_proj.bias")) {
    return config.num_key_value_heads;
  }
  return std::nullopt;
}

absl::Status OutsideError(std::string_view name, int64_t rows, int64_t cols, IndexRange row_range,
                          IndexRange col_range) {
  return absl::InvalidArgumentError(StrCat("tensor ", name, ": block rows [", row_range.begin, ", ",
                                           row_range.end(), ") cols [", col_range.begin, ", ",
                                           col_range.end(), ") is outside [", rows, ", ", cols, "]"));
}

bool InBounds(IndexRange part, int64_t size) {
  return part.begin >= 0 && part.count >= 0 && part.end() <= size;
}

std::string DimsString(const std::vector<int64_t>& dims) { return StrCat("{", absl::StrJoin(dims, ", "), "}"); }

class GgufWeights final : public WeightSource {
 public:
  GgufWeights(std::unique_ptr<GgufFile> file, ModelConfig config)
      : file_(std::move(file)), config_(std::move(config)) {}

  absl::StatusOr<kernels::Weight> GetMatrixBlock(std::string_view name, int64_t rows, int64_t cols,
                                                 IndexRange row_range, IndexRange col_range) override {
    if (!InBounds(row_range, rows) || !InBounds(col_range, cols)) {
      return OutsideError(name, rows, cols, row_range, col_range);
    }
    absl::StatusOr<Located> located = Locate(name, rows, cols);
    if (!located.ok()) return located.status();
    const kernels::WeightType type = located->type;
    const int64_t block = kernels::WeightTypeBlockElements(type);
    if (col_range.begin % block != 0 || col_range.count % block != 0) {
      return absl::InvalidArgumentError(StrCat(
          file_->path(), ": tensor ", located->gguf_name, " (", kernels::WeightTypeName(type), ") cannot be split at columns [",
          col_range.begin, ", ", col_range.end(), "): its rows are stored in blocks of ", block,
          " elements, so a shard must cover whole blocks (use fewer workers for this file)"));
    }
    const int64_t row_bytes = kernels::WeightRowBytes(type, cols);
    const int64_t first_byte = col_range.begin / block * kernels::WeightTypeBlockBytes(type);
    const int64_t shard_row_bytes = kernels::WeightRowBytes(type, col_range.count);
    const std::optional<int64_t> permuted_heads = PermutedHeads(name, config_);
    bytes_loaded_ += static_cast<uint64_t>(row_range.count * shard_row_bytes);
    if (!permuted_heads.has_value() && col_range.count == cols) {
      return kernels::Weight{.data = located->data + row_range.begin * row_bytes, .type = type,
                             .rows = row_range.count, .cols = cols};
    }
    const int64_t heads = permuted_heads.value_or(1);
    const int64_t head_dim = rows / heads;
    if (permuted_heads.has_value() && (rows % heads != 0 || head_dim % 2 != 0)) {
      return absl::InvalidArgumentError(StrCat(file_->path(), ": tensor ", located->gguf_name, " has ", rows,
                                               " rows, not whole heads of an even dimension"));
    }
    auto* copy = static_cast<std::byte*>(
        buffers_.emplace_back(std::max<int64_t>(1, row_range.count * shard_row_bytes)).data());
    for (int64_t r = 0; r < row_range.count; ++r) {
      const int64_t hf_row = row_range.begin + r;
      const int64_t stored_row = permuted_heads.has_value() ? PermutedRow(hf_row, head_dim) : hf_row;
      std::memcpy(copy + r * shard_row_bytes, located->data + stored_row * row_bytes + first_byte, shard_row_bytes);
    }
    return kernels::Weight{.data = copy, .type = type, .rows = row_range.count, .cols = col_range.count};
  }

  absl::StatusOr<std::vector<float>> GetVectorRange(std::string_view name, int64_t size,
                                                    IndexRange range) override {
    if (!InBounds(range, size)) return OutsideError(name, 1, size, {0, 1}, range);
    const std::optional<GgufTensorRef> ref = GgufTensorFor(name);
    if (!ref.has_value() || ref->expert.has_value()) return NotMapped(name);
    const GgufTensor* tensor = file_->FindTensor(ref->name);
    if (tensor == nullptr) return Missing(name, ref->name);
    if (tensor->dims.size() != 1 || tensor->dims[0] != size) {
      return absl::InvalidArgumentError(StrCat(file_->path(), ": tensor ", ref->name, " has dims ",
                                               DimsString(tensor->dims), " but the config implies {", size, "}"));
    }
    const std::optional<int64_t> permuted_heads = PermutedHeads(name, config_);
    const int64_t head_dim = permuted_heads.has_value() ? size / *permuted_heads : 0;
    std::vector<float> values(static_cast<size_t>(range.count));
    for (int64_t i = 0; i < range.count; ++i) {
      const int64_t index = permuted_heads.has_value() ? PermutedRow(range.begin + i, head_dim) : range.begin + i;
      uint16_t half_bits;
      switch (static_cast<GgmlType>(tensor->type_id)) {
        case GgmlType::kF32:
          std::memcpy(&values[i], tensor->data + index * sizeof(float), sizeof(float));
          break;
        case GgmlType::kF16:
          std::memcpy(&half_bits, tensor->data + index * 2, 2);
          values[i] = F16ToFloat(half_bits);
          break;
        case GgmlType::kBF16:
          std::memcpy(&half_bits, tensor->data + index * 2, 2);
          values[i] = Bf16ToFloat(half_bits);
          break;
        default:
          return absl::InvalidArgumentError(StrCat(file_->path(), ": tensor ", ref->name,
                                                   ": a vector must be F32, F16 or BF16"));
      }
    }
    bytes_loaded_ += values.size() * sizeof(float);
    return values;
  }

  bool Contains(std::string_view name) const override {
    const std::optional<GgufTensorRef> ref = GgufTensorFor(name);
    return ref.has_value() && file_->FindTensor(ref->name) != nullptr;
  }

  uint64_t bytes_loaded() const override { return bytes_loaded_; }

 private:
  struct Located {
    std::string gguf_name;
    kernels::WeightType type;
    const std::byte* data;  // the [rows, cols] matrix (one expert's slice)
  };

  absl::StatusOr<Located> Locate(std::string_view name, int64_t rows, int64_t cols) const {
    const std::optional<GgufTensorRef> ref = GgufTensorFor(name);
    if (!ref.has_value()) return NotMapped(name);
    const GgufTensor* tensor = file_->FindTensor(ref->name);
    if (tensor == nullptr) return Missing(name, ref->name);
    absl::StatusOr<kernels::WeightType> type = WeightTypeOfGgml(tensor->type_id, ref->name);
    if (!type.ok()) return absl::Status(type.status().code(), StrCat(file_->path(), ": ", type.status().message()));
    const bool is_expert = ref->expert.has_value();
    const bool shape_ok = tensor->dims.size() == (is_expert ? 3u : 2u) && tensor->dims[0] == cols &&
                          tensor->dims[1] == rows && (!is_expert || *ref->expert < tensor->dims[2]);
    if (!shape_ok) {
      return absl::InvalidArgumentError(StrCat(
          file_->path(), ": tensor ", ref->name, " has dims ", DimsString(tensor->dims), " but the config implies {",
          cols, ", ", rows, is_expert ? StrCat(", > ", *ref->expert, "}") : std::string("}")));
    }
    const int64_t matrix_bytes = rows * kernels::WeightRowBytes(*type, cols);
    return Located{.gguf_name = ref->name, .type = *type,
                   .data = tensor->data + (is_expert ? *ref->expert * matrix_bytes : 0)};
  }

  absl::Status NotMapped(std::string_view name) const {
    return absl::NotFoundError(StrCat(file_->path(), ": duet has no GGUF name for tensor ", name));
  }
  absl::Status Missing(std::string_view name, std::string_view gguf_name) const {
    return absl::NotFoundError(StrCat(file_->path(), ": no tensor ", gguf_name, " (for ", name, ")"));
  }

  std::unique_ptr<GgufFile> file_;
  ModelConfig config_;
  std::deque<HugePageBuffer> buffers_;  // copied shards; deque: stable addresses
  uint64_t bytes_loaded_ = 0;
};

}  // namespace

std::optional<GgufTensorRef> GgufTensorFor(std::string_view hf_name) {
  if (hf_name == "model.embed_tokens.weight") return GgufTensorRef{"token_embd.weight", std::nullopt};
  if (hf_name == "lm_head.weight") return GgufTensorRef{"output.weight", std::nullopt};
  if (hf_name == "model.norm.weight") return GgufTensorRef{"output_norm.weight", std::nullopt};
  constexpr std::string_view kLayers = "model.layers.";
  if (!hf_name.starts_with(kLayers)) return std::nullopt;
  const std::string_view rest = hf_name.substr(kLayers.size());
  const size_t dot = rest.find('.');
  int64_t layer = 0;
  if (dot == std::string_view::npos || !absl::SimpleAtoi(std::string(rest.substr(0, dot)), &layer) || layer < 0) {
    return std::nullopt;
  }
  const std::string_view within = rest.substr(dot + 1);
  for (const NameMapping& mapping : kLayerNames) {
    if (within == mapping.hf) return GgufTensorRef{StrCat("blk.", layer, ".", mapping.gguf), std::nullopt};
  }
  constexpr std::string_view kExperts = "mlp.experts.";
  if (!within.starts_with(kExperts)) return std::nullopt;
  const std::string_view expert_rest = within.substr(kExperts.size());
  const size_t expert_dot = expert_rest.find('.');
  int64_t expert = 0;
  if (expert_dot == std::string_view::npos || !absl::SimpleAtoi(std::string(expert_rest.substr(0, expert_dot)), &expert) ||
      expert < 0) {
    return std::nullopt;
  }
  for (const NameMapping& mapping : kExpertNames) {
    if (expert_rest.substr(expert_dot + 1) == mapping.hf) {
      return GgufTensorRef{StrCat("blk.", layer, ".", mapping.gguf), expert};
    }
  }
  return std::nullopt;
}

absl::StatusOr<kernels::WeightType> WeightTypeOfGgml(uint32_t type_id, std::string_view tensor_name) {
  switch (static_cast<GgmlType>(type_id)) {
    case GgmlType::kF32: return kernels::WeightType::kF32;
    case GgmlType::kF16: return kernels::WeightType::kF16;
    case GgmlType::kBF16: return kernels::WeightType::kBF16;
    case GgmlType::kQ8_0: return kernels::WeightType::kQ8_0;
    case GgmlType::kQ4_0: return kernels::WeightType::kQ4_0;
    case GgmlType::kQ4_1: return kernels::WeightType::kQ4_1;
    case GgmlType::kQ4_K: return kernels::WeightType::kQ4_K;
    case GgmlType::kQ5_K: return kernels::WeightType::kQ5_K;
    case GgmlType::kQ6_K: return kernels::WeightType::kQ6_K;
    default:
      break;
  }
  const std::optional<GgmlTypeTraits> traits = GgmlTypeInfo(type_id);
  return absl::InvalidArgumentError(StrCat(
      "tensor ", tensor_name, " has type ", traits.has_value() ? std::string(traits->name) : StrCat("#", type_id),
      ", which duet does not compute with (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K)"));
}

int64_t PermutedRow(int64_t hf_row, int64_t head_dim) {
  const int64_t half = head_dim / 2;
  const int64_t head = hf_row / head_dim;
  const int64_t within = hf_row % head_dim;
  return head * head_dim + 2 * (within % half) + within / half;
}

absl::StatusOr<std::unique_ptr<WeightSource>> OpenGgufWeights(const std::string& path) {
  absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open(path);
  if (!file.ok()) return file.status();
  absl::StatusOr<ModelConfig> config = ModelConfigFromGguf(**file);
  if (!config.ok()) return config.status();
  return std::make_unique<GgufWeights>(*std::move(file), *std::move(config));
}

}  // namespace duet::worker
