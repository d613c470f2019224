#include "common/gguf_model_config.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "common/status_macros.h"
#include "common/str_cat.h"

namespace duet {
namespace {

struct GgufArchitecture {
  std::string_view name;  // general.architecture
  ModelFamily family;
};

constexpr std::array<GgufArchitecture, 4> kArchitectures = {{
    {"llama", ModelFamily::kLlama},
    {"qwen2", ModelFamily::kQwen2},
    {"qwen3", ModelFamily::kQwen3},
    {"qwen3moe", ModelFamily::kQwen3Moe},
}};

// Reads the "<arch>.<key>" fields of one file, naming the file in errors.
class ArchFields {
 public:
  ArchFields(const GgufFile& file, std::string_view arch) : file_(file), prefix_(StrCat(arch, ".")) {}

  absl::StatusOr<int64_t> RequiredPositive(std::string_view key) const {
    const std::string full = StrCat(prefix_, key);
    absl::StatusOr<int64_t> value = file_.GetInt(full);
    if (!value.ok()) return InFile(value.status());
    if (*value <= 0) return Error(full, StrCat("must be positive, got ", *value));
    return *value;
  }

  absl::StatusOr<int64_t> PositiveOr(std::string_view key, int64_t fallback) const {
    if (file_.FindMetadata(StrCat(prefix_, key)) == nullptr) return fallback;
    return RequiredPositive(key);
  }

  absl::StatusOr<double> PositiveFloatOr(std::string_view key, std::optional<double> fallback) const {
    const std::string full = StrCat(prefix_, key);
    if (file_.FindMetadata(full) == nullptr) {
      if (fallback.has_value()) return *fallback;
      return InFile(absl::InvalidArgumentError(StrCat("metadata key ", full, " is missing")));
    }
    absl::StatusOr<double> value = file_.GetFloat(full);
    if (!value.ok()) return InFile(value.status());
    if (!(*value > 0)) return Error(full, StrCat("must be positive, got ", *value));
    return *value;
  }

  absl::StatusOr<std::optional<std::string_view>> OptionalString(std::string_view key) const {
    const std::string full = StrCat(prefix_, key);
    if (file_.FindMetadata(full) == nullptr) return std::optional<std::string_view>();
    absl::StatusOr<std::string_view> value = file_.GetString(full);
    if (!value.ok()) return InFile(value.status());
    return std::optional<std::string_view>(*value);
  }

  absl::Status InFile(const absl::Status& status) const {
    return absl::Status(status.code(), StrCat(file_.path(), ": ", status.message()));
  }
  absl::Status Error(std::string_view key, std::string_view message) const {
    return absl::InvalidArgumentError(StrCat(file_.path(), ": metadata key ", key, " ", message));
  }

 private:
  const GgufFile& file_;
  std::string prefix_;
};

absl::StatusOr<std::optional<int64_t>> OptionalTokenId(const GgufFile& file, std::string_view key) {
  if (file.FindMetadata(key) == nullptr) return std::optional<int64_t>();
  absl::StatusOr<int64_t> id = file.GetInt(key);
  if (!id.ok()) return absl::Status(id.status().code(), StrCat(file.path(), ": ", id.status().message()));
  if (*id < 0) {
    return absl::InvalidArgumentError(StrCat(file.path(), ": metadata key ", key, " is negative"));
  }
  return std::optional<int64_t>(*id);
}

// rope_freqs.weight: [rotary_dim / 2] fp32 divisors of the inverse frequencies.
absl::StatusOr<std::vector<float>> RopeFreqFactors(const GgufFile& file, int64_t rotary_dim) {
  const GgufTensor* tensor = file.FindTensor("rope_freqs.weight");
  if (tensor == nullptr) return std::vector<float>();
  if (tensor->type_id != static_cast<uint32_t>(GgmlType::kF32) || tensor->dims.size() != 1 ||
      tensor->dims[0] != rotary_dim / 2) {
    return absl::InvalidArgumentError(StrCat(file.path(), ": tensor rope_freqs.weight must be F32 [",
                                             rotary_dim / 2, "]"));
  }
  std::vector<float> factors(static_cast<size_t>(rotary_dim / 2));
  std::memcpy(factors.data(), tensor->data, factors.size() * sizeof(float));
  for (float factor : factors) {
    if (!(factor > 0)) {
      return absl::InvalidArgumentError(
          StrCat(file.path(), ": tensor rope_freqs.weight holds a factor that is not positive"));
    }
  }
  return factors;
}

}  // namespace

bool IsGgufFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, sizeof(magic)) && std::memcmp(magic, "GGUF", 4) == 0;
}

absl::StatusOr<ModelConfig> ModelConfigFromGguf(const GgufFile& file) {
  absl::StatusOr<std::string_view> arch = file.GetString("general.architecture");
  if (!arch.ok()) return absl::Status(arch.status().code(), StrCat(file.path(), ": ", arch.status().message()));
  const GgufArchitecture* architecture = nullptr;
  for (const GgufArchitecture& entry : kArchitectures) {
    if (entry.name == *arch) architecture = &entry;
  }
  if (architecture == nullptr) {
    return absl::UnimplementedError(StrCat(file.path(), ": general.architecture \"", *arch,
                                           "\" is not supported (llama, qwen2, qwen3, qwen3moe)"));
  }
  const ArchFields fields(file, *arch);
  ModelConfig config;
  config.family = architecture->family;
  config.architecture = std::string(ModelFamilyName(config.family));
  config.model_type = std::string(*arch);

  DUET_ASSIGN_OR_RETURN(config.num_hidden_layers, fields.RequiredPositive("block_count"));
  DUET_ASSIGN_OR_RETURN(config.hidden_size, fields.RequiredPositive("embedding_length"));
  DUET_ASSIGN_OR_RETURN(config.max_position_embeddings, fields.RequiredPositive("context_length"));
  DUET_ASSIGN_OR_RETURN(config.num_attention_heads, fields.RequiredPositive("attention.head_count"));
  DUET_ASSIGN_OR_RETURN(config.num_key_value_heads,
                        fields.PositiveOr("attention.head_count_kv", config.num_attention_heads));
  if (config.num_attention_heads % config.num_key_value_heads != 0) {
    return fields.Error(StrCat(*arch, ".attention.head_count_kv"),
                        StrCat(config.num_key_value_heads, " does not divide the head count ",
                               config.num_attention_heads));
  }
  const int64_t derived_head_dim = config.hidden_size / config.num_attention_heads;
  DUET_ASSIGN_OR_RETURN(config.head_dim, fields.PositiveOr("attention.key_length", derived_head_dim));
  DUET_ASSIGN_OR_RETURN(const int64_t value_length,
                        fields.PositiveOr("attention.value_length", config.head_dim));
  if (value_length != config.head_dim) {
    return absl::UnimplementedError(StrCat(file.path(), ": ", *arch, ".attention.value_length ",
                                           value_length, " differs from the key length ", config.head_dim));
  }
  if (config.head_dim == derived_head_dim && config.hidden_size % config.num_attention_heads != 0) {
    return fields.Error(StrCat(*arch, ".embedding_length"),
                        StrCat(config.hidden_size, " is not divisible by the head count ",
                               config.num_attention_heads, " and attention.key_length is not given"));
  }
  DUET_ASSIGN_OR_RETURN(const int64_t rotary_dim, fields.PositiveOr("rope.dimension_count", config.head_dim));
  if (rotary_dim != config.head_dim) {
    return absl::UnimplementedError(StrCat(file.path(), ": ", *arch, ".rope.dimension_count ", rotary_dim,
                                           " is not the head dimension ", config.head_dim,
                                           " (partial rotary embeddings are not supported)"));
  }
  DUET_ASSIGN_OR_RETURN(const std::optional<std::string_view> scaling, fields.OptionalString("rope.scaling.type"));
  if (scaling.has_value() && *scaling != "none") {
    return absl::UnimplementedError(
        StrCat(file.path(), ": ", *arch, ".rope.scaling.type \"", *scaling, "\" is not supported"));
  }
  DUET_ASSIGN_OR_RETURN(config.rms_norm_eps,
                        fields.PositiveFloatOr("attention.layer_norm_rms_epsilon", std::nullopt));
  DUET_ASSIGN_OR_RETURN(config.rope_theta, fields.PositiveFloatOr("rope.freq_base", 10000.0));
  DUET_ASSIGN_OR_RETURN(config.rope_freq_factors, RopeFreqFactors(file, rotary_dim));

  int64_t num_tokens = 0;
  if (file.FindMetadata("tokenizer.ggml.tokens") != nullptr) {
    absl::StatusOr<std::span<const std::string>> tokens = file.GetStringArray("tokenizer.ggml.tokens");
    if (!tokens.ok()) return fields.InFile(tokens.status());
    num_tokens = static_cast<int64_t>(tokens->size());
  }
  if (num_tokens == 0 && file.FindMetadata(StrCat(*arch, ".vocab_size")) == nullptr) {
    return fields.Error(StrCat(*arch, ".vocab_size"), "is missing and the file has no tokenizer.ggml.tokens");
  }
  DUET_ASSIGN_OR_RETURN(config.vocab_size, fields.PositiveOr("vocab_size", num_tokens));

  const bool is_moe = config.family == ModelFamily::kQwen3Moe;
  if (is_moe) {
    DUET_ASSIGN_OR_RETURN(config.num_experts, fields.RequiredPositive("expert_count"));
    DUET_ASSIGN_OR_RETURN(config.num_experts_per_tok, fields.RequiredPositive("expert_used_count"));
    if (config.num_experts_per_tok > config.num_experts) {
      return fields.Error(StrCat(*arch, ".expert_used_count"),
                          StrCat(config.num_experts_per_tok, " exceeds expert_count ", config.num_experts));
    }
    DUET_ASSIGN_OR_RETURN(config.moe_intermediate_size, fields.RequiredPositive("expert_feed_forward_length"));
    config.norm_topk_prob = true;
    config.decoder_sparse_step = 1;
    // The dense width only matters for mlp_only_layers, which GGUF cannot express.
    DUET_ASSIGN_OR_RETURN(config.intermediate_size,
                          fields.PositiveOr("feed_forward_length", config.moe_intermediate_size));
  } else {
    DUET_ASSIGN_OR_RETURN(config.intermediate_size, fields.RequiredPositive("feed_forward_length"));
  }

  // Biases and tying are facts of the tensors, not of the metadata.
  const bool has_q_bias = file.FindTensor("blk.0.attn_q.bias") != nullptr;
  config.qkv_bias = config.family == ModelFamily::kQwen2 || has_q_bias;
  config.o_proj_bias = config.family == ModelFamily::kLlama && file.FindTensor("blk.0.attn_output.bias") != nullptr;
  config.mlp_bias = config.family == ModelFamily::kLlama && file.FindTensor("blk.0.ffn_up.bias") != nullptr;
  config.qk_norm = config.family == ModelFamily::kQwen3 || config.family == ModelFamily::kQwen3Moe;
  config.tie_word_embeddings = file.FindTensor("output.weight") == nullptr;

  DUET_ASSIGN_OR_RETURN(config.bos_token_id, OptionalTokenId(file, "tokenizer.ggml.bos_token_id"));
  for (std::string_view key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                               "tokenizer.ggml.eom_token_id"}) {
    DUET_ASSIGN_OR_RETURN(const std::optional<int64_t> id, OptionalTokenId(file, key));
    if (id.has_value() && std::find(config.eos_token_ids.begin(), config.eos_token_ids.end(), *id) ==
                              config.eos_token_ids.end()) {
      config.eos_token_ids.push_back(*id);
    }
  }
  DUET_ASSIGN_OR_RETURN(config.pad_token_id, OptionalTokenId(file, "tokenizer.ggml.padding_token_id"));
  return config;
}

}  // namespace duet
