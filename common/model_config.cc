#include "common/model_config.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_join.h"
#include "common/gguf_model_config.h"
#include "common/json_fields.h"
#include "common/mapped_file.h"
#include "common/status_macros.h"
#include "common/str_cat.h"
#include "nlohmann/json.hpp"

namespace duet {
namespace {

using Json = nlohmann::json;

struct FamilyName {
  ModelFamily family;
  std::string_view architecture;
};

constexpr std::array<FamilyName, 4> kFamilies = {{
    {ModelFamily::kLlama, "LlamaForCausalLM"},
    {ModelFamily::kQwen2, "Qwen2ForCausalLM"},
    {ModelFamily::kQwen3, "Qwen3ForCausalLM"},
    {ModelFamily::kQwen3Moe, "Qwen3MoeForCausalLM"},
}};

absl::StatusOr<int64_t> RequiredPositiveInt(const JsonFields& fields, std::string_view key) {
  DUET_ASSIGN_OR_RETURN(const int64_t value, fields.RequiredInt(key));
  if (value <= 0) return fields.Error(key, StrCat("must be positive, got ", value));
  return value;
}

absl::StatusOr<int64_t> PositiveIntOr(const JsonFields& fields, std::string_view key,
                                      int64_t default_value) {
  DUET_ASSIGN_OR_RETURN(const int64_t value, fields.IntOr(key, default_value));
  if (value <= 0) return fields.Error(key, StrCat("must be positive, got ", value));
  return value;
}

absl::StatusOr<double> PositiveDouble(const JsonFields& fields, std::string_view key,
                                      std::optional<double> default_value) {
  double value = 0;
  if (default_value.has_value()) {
    DUET_ASSIGN_OR_RETURN(value, fields.DoubleOr(key, *default_value));
  } else {
    DUET_ASSIGN_OR_RETURN(value, fields.RequiredDouble(key));
  }
  if (!(value > 0)) return fields.Error(key, StrCat("must be positive, got ", value));
  return value;
}

absl::StatusOr<ModelFamily> ParseFamily(const JsonFields& fields, std::string* architecture) {
  const Json* architectures = fields.Find("architectures");
  if (architectures == nullptr) return fields.Error("architectures", "required field is missing");
  if (!architectures->is_array() || architectures->empty() || !(*architectures)[0].is_string()) {
    return fields.Error("architectures", "expected a non-empty array of strings");
  }
  *architecture = (*architectures)[0].get<std::string>();
  for (const FamilyName& entry : kFamilies) {
    if (entry.architecture == *architecture) return entry.family;
  }
  std::vector<std::string> supported;
  for (const FamilyName& entry : kFamilies) supported.emplace_back(entry.architecture);
  return absl::UnimplementedError(
      StrCat(fields.file_name(), ": field \"architectures\": architecture \"", *architecture,
             "\" is not supported (supported: ", absl::StrJoin(supported, ", "), ")"));
}

absl::StatusOr<std::optional<Llama3RopeScaling>> ParseRopeScaling(const JsonFields& fields) {
  const Json* value = fields.Find("rope_scaling");
  if (value == nullptr) return std::optional<Llama3RopeScaling>();
  if (!value->is_object()) {
    return fields.Error("rope_scaling",
                        StrCat("expected an object or null, got ", JsonTypeName(*value)));
  }
  const JsonFields scaling(*value, fields.file_name(), "rope_scaling.");
  // transformers reads "rope_type" and falls back on the legacy "type".
  DUET_ASSIGN_OR_RETURN(std::optional<std::string> type, scaling.OptionalString("rope_type"));
  if (!type.has_value()) {
    DUET_ASSIGN_OR_RETURN(type, scaling.OptionalString("type"));
  }
  if (!type.has_value()) return scaling.Error("rope_type", "required field is missing");
  if (*type == "default") return std::optional<Llama3RopeScaling>();
  if (*type != "llama3") {
    return absl::UnimplementedError(StrCat(fields.file_name(),
                                           ": field \"rope_scaling\": unsupported "
                                           "rope_scaling type \"",
                                           *type, "\" (supported: llama3)"));
  }
  Llama3RopeScaling llama3;
  DUET_ASSIGN_OR_RETURN(llama3.factor, PositiveDouble(scaling, "factor", std::nullopt));
  DUET_ASSIGN_OR_RETURN(llama3.low_freq_factor,
                        PositiveDouble(scaling, "low_freq_factor", std::nullopt));
  DUET_ASSIGN_OR_RETURN(llama3.high_freq_factor,
                        PositiveDouble(scaling, "high_freq_factor", std::nullopt));
  DUET_ASSIGN_OR_RETURN(llama3.original_max_position_embeddings,
                        RequiredPositiveInt(scaling, "original_max_position_embeddings"));
  if (!(llama3.low_freq_factor < llama3.high_freq_factor)) {
    // The interpolation band divides by their difference.
    return scaling.Error("high_freq_factor",
                         StrCat("must exceed low_freq_factor ", llama3.low_freq_factor, ", got ",
                                llama3.high_freq_factor));
  }
  return std::optional<Llama3RopeScaling>(llama3);
}

absl::StatusOr<std::optional<QuantizationConfig>> ParseQuantization(const JsonFields& fields) {
  const Json* value = fields.Find("quantization_config");
  if (value == nullptr) return std::optional<QuantizationConfig>();
  if (!value->is_object()) {
    return fields.Error("quantization_config",
                        StrCat("expected an object, got ", JsonTypeName(*value)));
  }
  const JsonFields quant(*value, fields.file_name(), "quantization_config.");
  QuantizationConfig config;
  config.raw_json = value->dump();
  DUET_ASSIGN_OR_RETURN(config.quant_method, quant.RequiredString("quant_method"));
  DUET_ASSIGN_OR_RETURN(config.bits, quant.OptionalInt("bits"));
  DUET_ASSIGN_OR_RETURN(config.group_size, quant.OptionalInt("group_size"));
  DUET_ASSIGN_OR_RETURN(config.zero_point, quant.OptionalBool("zero_point"));
  DUET_ASSIGN_OR_RETURN(config.version, quant.OptionalString("version"));
  DUET_ASSIGN_OR_RETURN(config.fmt, quant.OptionalString("fmt"));
  DUET_ASSIGN_OR_RETURN(config.activation_scheme, quant.OptionalString("activation_scheme"));
  if (const Json* block = quant.Find("weight_block_size"); block != nullptr) {
    if (!block->is_array() || block->size() != 2 ||
        !std::all_of(block->begin(), block->end(), [](const Json& dim) {
          return dim.is_number_integer() && dim.get<int64_t>() > 0;
        })) {
      return quant.Error("weight_block_size", "expected [rows, cols] of positive integers");
    }
    for (const Json& dim : *block) config.weight_block_size.push_back(dim.get<int64_t>());
  }
  return std::optional<QuantizationConfig>(std::move(config));
}

// A token id field holding one id or a list of ids; nullopt when missing.
absl::StatusOr<std::optional<std::vector<int64_t>>> ParseTokenIds(const JsonFields& fields,
                                                                  std::string_view key) {
  const Json* value = fields.Find(key);
  if (value == nullptr) return std::optional<std::vector<int64_t>>();
  const auto is_id = [](const Json& id) {
    return id.is_number_unsigned() || (id.is_number_integer() && id.get<int64_t>() >= 0);
  };
  std::vector<int64_t> ids;
  if (is_id(*value)) {
    ids.push_back(value->get<int64_t>());
  } else if (value->is_array() && std::all_of(value->begin(), value->end(), is_id)) {
    for (const Json& id : *value) ids.push_back(id.get<int64_t>());
  } else {
    return fields.Error(key,
                        StrCat("expected a token id or a list of token ids, got ", value->dump()));
  }
  return std::optional<std::vector<int64_t>>(std::move(ids));
}

absl::StatusOr<std::optional<int64_t>> ParseTokenId(const JsonFields& fields,
                                                    std::string_view key) {
  DUET_ASSIGN_OR_RETURN(const std::optional<int64_t> id, fields.OptionalInt(key));
  if (id.has_value() && *id < 0) return fields.Error(key, "token ids are non-negative");
  return id;
}

absl::Status ParseAttentionShape(const JsonFields& fields, ModelConfig& config) {
  DUET_ASSIGN_OR_RETURN(config.num_key_value_heads,
                        PositiveIntOr(fields, "num_key_value_heads", config.num_attention_heads));
  if (config.num_attention_heads % config.num_key_value_heads != 0) {
    return fields.Error("num_key_value_heads",
                        StrCat(config.num_key_value_heads, " does not divide num_attention_heads ",
                               config.num_attention_heads));
  }
  DUET_ASSIGN_OR_RETURN(const std::optional<int64_t> head_dim, fields.OptionalInt("head_dim"));
  if (head_dim.has_value()) {
    if (*head_dim <= 0)
      return fields.Error("head_dim", StrCat("must be positive, got ", *head_dim));
    config.head_dim = *head_dim;
    return absl::OkStatus();
  }
  if (config.hidden_size % config.num_attention_heads != 0) {
    return fields.Error("hidden_size",
                        StrCat(config.hidden_size, " is not divisible by num_attention_heads ",
                               config.num_attention_heads, " and head_dim is not given"));
  }
  config.head_dim = config.hidden_size / config.num_attention_heads;
  return absl::OkStatus();
}

absl::Status ParseBiases(const JsonFields& fields, ModelConfig& config) {
  DUET_ASSIGN_OR_RETURN(const bool attention_bias, fields.BoolOr("attention_bias", false));
  DUET_ASSIGN_OR_RETURN(const bool mlp_bias, fields.BoolOr("mlp_bias", false));
  config.qkv_bias = attention_bias;
  config.o_proj_bias = attention_bias;
  config.mlp_bias = false;
  config.qk_norm = false;
  switch (config.family) {
    case ModelFamily::kLlama:
      config.mlp_bias = mlp_bias;
      break;
    case ModelFamily::kQwen2:
      // Qwen2Attention hard-codes bias=True on q/k/v and False on o_proj.
      config.qkv_bias = true;
      config.o_proj_bias = false;
      break;
    case ModelFamily::kQwen3:
    case ModelFamily::kQwen3Moe:
      config.qk_norm = true;
      break;
  }
  return absl::OkStatus();
}

absl::Status ParseMoe(const JsonFields& fields, ModelConfig& config) {
  if (config.family != ModelFamily::kQwen3Moe) return absl::OkStatus();
  DUET_ASSIGN_OR_RETURN(config.num_experts, RequiredPositiveInt(fields, "num_experts"));
  DUET_ASSIGN_OR_RETURN(config.num_experts_per_tok,
                        RequiredPositiveInt(fields, "num_experts_per_tok"));
  if (config.num_experts_per_tok > config.num_experts) {
    return fields.Error("num_experts_per_tok", StrCat(config.num_experts_per_tok,
                                                      " exceeds num_experts ", config.num_experts));
  }
  DUET_ASSIGN_OR_RETURN(config.moe_intermediate_size,
                        RequiredPositiveInt(fields, "moe_intermediate_size"));
  DUET_ASSIGN_OR_RETURN(config.norm_topk_prob, fields.BoolOr("norm_topk_prob", false));
  DUET_ASSIGN_OR_RETURN(config.decoder_sparse_step,
                        PositiveIntOr(fields, "decoder_sparse_step", 1));
  if (const Json* layers = fields.Find("mlp_only_layers"); layers != nullptr) {
    if (!layers->is_array())
      return fields.Error("mlp_only_layers", "expected an array of layer indices");
    for (const Json& layer : *layers) {
      if (!layer.is_number_integer() || layer.get<int64_t>() < 0 ||
          layer.get<int64_t>() >= config.num_hidden_layers) {
        return fields.Error("mlp_only_layers", StrCat(layer.dump(), " is not a layer index below ",
                                                      config.num_hidden_layers));
      }
      config.mlp_only_layers.push_back(layer.get<int64_t>());
    }
  }
  return absl::OkStatus();
}

absl::Status ParseSlidingWindow(const JsonFields& fields, ModelConfig& config) {
  DUET_ASSIGN_OR_RETURN(const bool use_sliding_window, fields.BoolOr("use_sliding_window", false));
  if (use_sliding_window) {
    return absl::UnimplementedError(
        StrCat(fields.file_name(),
               ": field \"use_sliding_window\": sliding-window attention is unsupported"));
  }
  DUET_ASSIGN_OR_RETURN(config.sliding_window, fields.OptionalInt("sliding_window"));
  DUET_ASSIGN_OR_RETURN(config.max_window_layers, fields.OptionalInt("max_window_layers"));
  return absl::OkStatus();
}

std::optional<DType> DTypeOfTorchName(std::string_view torch_dtype) {
  if (torch_dtype == "bfloat16") return DType::kBF16;
  if (torch_dtype == "float16" || torch_dtype == "half") return DType::kF16;
  if (torch_dtype == "float32" || torch_dtype == "float") return DType::kF32;
  return std::nullopt;
}

absl::Status ApplyGenerationConfig(std::string_view text, std::string_view name,
                                   ModelConfig& config) {
  DUET_ASSIGN_OR_RETURN(const Json json, ParseJsonText(text, name));
  DUET_RETURN_IF_ERROR(JsonFields::ExpectObject(json, name, "the generation config"));
  const JsonFields fields(json, std::string(name));
  DUET_ASSIGN_OR_RETURN(const std::optional<int64_t> bos, ParseTokenId(fields, "bos_token_id"));
  if (bos.has_value()) config.bos_token_id = bos;
  DUET_ASSIGN_OR_RETURN(std::optional<std::vector<int64_t>> eos,
                        ParseTokenIds(fields, "eos_token_id"));
  if (eos.has_value()) config.eos_token_ids = std::move(*eos);
  DUET_ASSIGN_OR_RETURN(const std::optional<int64_t> pad, ParseTokenId(fields, "pad_token_id"));
  if (pad.has_value()) config.pad_token_id = pad;

  GenerationDefaults& generation = config.generation;
  DUET_ASSIGN_OR_RETURN(generation.do_sample, fields.OptionalBool("do_sample"));
  DUET_ASSIGN_OR_RETURN(generation.temperature, fields.OptionalDouble("temperature"));
  if (generation.temperature.has_value() && *generation.temperature < 0) {
    return fields.Error("temperature", "must be >= 0");
  }
  DUET_ASSIGN_OR_RETURN(generation.top_p, fields.OptionalDouble("top_p"));
  if (generation.top_p.has_value() && !(*generation.top_p > 0 && *generation.top_p <= 1)) {
    return fields.Error("top_p", "must be in (0, 1]");
  }
  DUET_ASSIGN_OR_RETURN(generation.top_k, fields.OptionalInt("top_k"));
  if (generation.top_k.has_value() && *generation.top_k < 0) {
    return fields.Error("top_k", "must be >= 0 (0 disables it)");
  }
  DUET_ASSIGN_OR_RETURN(generation.repetition_penalty, fields.OptionalDouble("repetition_penalty"));
  if (generation.repetition_penalty.has_value() && !(*generation.repetition_penalty > 0)) {
    return fields.Error("repetition_penalty", "must be positive");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  DUET_ASSIGN_OR_RETURN(const MappedFile file, MappedFile::Open(path));
  return std::string(reinterpret_cast<const char*>(file.data()), file.size_bytes());
}

}  // namespace

std::string_view ModelFamilyName(ModelFamily family) {
  for (const FamilyName& entry : kFamilies) {
    if (entry.family == family) return entry.architecture;
  }
  return "unknown";
}

bool ModelConfig::IsMoeLayer(int64_t layer) const {
  if (family != ModelFamily::kQwen3Moe || num_experts <= 0) return false;
  if (std::find(mlp_only_layers.begin(), mlp_only_layers.end(), layer) != mlp_only_layers.end()) {
    return false;
  }
  return (layer + 1) % decoder_sparse_step == 0;
}

absl::StatusOr<ModelConfig> ParseModelConfig(std::string_view config_json,
                                             std::string_view config_name,
                                             std::optional<std::string_view> generation_config_json,
                                             std::string_view generation_config_name) {
  DUET_ASSIGN_OR_RETURN(const Json json, ParseJsonText(config_json, config_name));
  DUET_RETURN_IF_ERROR(JsonFields::ExpectObject(json, config_name, "the model config"));
  const JsonFields fields(json, std::string(config_name));

  ModelConfig config;
  DUET_ASSIGN_OR_RETURN(config.family, ParseFamily(fields, &config.architecture));
  DUET_ASSIGN_OR_RETURN(std::optional<std::string> model_type, fields.OptionalString("model_type"));
  config.model_type = model_type.value_or("");

  DUET_ASSIGN_OR_RETURN(config.vocab_size, RequiredPositiveInt(fields, "vocab_size"));
  DUET_ASSIGN_OR_RETURN(config.hidden_size, RequiredPositiveInt(fields, "hidden_size"));
  DUET_ASSIGN_OR_RETURN(config.intermediate_size, RequiredPositiveInt(fields, "intermediate_size"));
  DUET_ASSIGN_OR_RETURN(config.num_hidden_layers, RequiredPositiveInt(fields, "num_hidden_layers"));
  DUET_ASSIGN_OR_RETURN(config.num_attention_heads,
                        RequiredPositiveInt(fields, "num_attention_heads"));
  DUET_RETURN_IF_ERROR(ParseAttentionShape(fields, config));
  DUET_ASSIGN_OR_RETURN(config.max_position_embeddings,
                        RequiredPositiveInt(fields, "max_position_embeddings"));
  DUET_ASSIGN_OR_RETURN(config.rms_norm_eps, PositiveDouble(fields, "rms_norm_eps", std::nullopt));
  DUET_ASSIGN_OR_RETURN(config.rope_theta, PositiveDouble(fields, "rope_theta", 10000.0));
  DUET_ASSIGN_OR_RETURN(config.rope_scaling, ParseRopeScaling(fields));
  DUET_RETURN_IF_ERROR(ParseBiases(fields, config));
  DUET_ASSIGN_OR_RETURN(config.tie_word_embeddings, fields.BoolOr("tie_word_embeddings", false));

  DUET_ASSIGN_OR_RETURN(config.torch_dtype, fields.OptionalString("torch_dtype"));
  if (!config.torch_dtype.has_value()) {
    DUET_ASSIGN_OR_RETURN(config.torch_dtype, fields.OptionalString("dtype"));
  }
  if (config.torch_dtype.has_value()) config.weights_dtype = DTypeOfTorchName(*config.torch_dtype);

  DUET_RETURN_IF_ERROR(ParseMoe(fields, config));
  DUET_RETURN_IF_ERROR(ParseSlidingWindow(fields, config));
  DUET_ASSIGN_OR_RETURN(config.quantization, ParseQuantization(fields));

  DUET_ASSIGN_OR_RETURN(config.bos_token_id, ParseTokenId(fields, "bos_token_id"));
  DUET_ASSIGN_OR_RETURN(std::optional<std::vector<int64_t>> eos,
                        ParseTokenIds(fields, "eos_token_id"));
  config.eos_token_ids = eos.value_or(std::vector<int64_t>());
  DUET_ASSIGN_OR_RETURN(config.pad_token_id, ParseTokenId(fields, "pad_token_id"));

  if (generation_config_json.has_value()) {
    DUET_RETURN_IF_ERROR(
        ApplyGenerationConfig(*generation_config_json, generation_config_name, config));
  }
  return config;
}

absl::Status CheckModelPath(const std::string& path) {
  std::error_code error;
  const std::filesystem::file_status status = std::filesystem::status(path, error);
  if (!std::filesystem::exists(status)) {
    return absl::NotFoundError(StrCat(path, ": no such file or directory (a model is a GGUF file "
                                      "or a Hugging Face model directory)"));
  }
  if (std::filesystem::is_directory(status) || IsGgufFile(path)) return absl::OkStatus();
  return absl::InvalidArgumentError(StrCat(path, ": not a GGUF file (it does not start with "
                                           "\"GGUF\") and not a model directory"));
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir) {
  DUET_RETURN_IF_ERROR(CheckModelPath(model_dir));
  if (IsGgufFile(model_dir)) {
    DUET_ASSIGN_OR_RETURN(const std::unique_ptr<GgufFile> file, GgufFile::Open(model_dir));
    return ModelConfigFromGguf(*file);
  }
  const std::filesystem::path dir(model_dir);
  const std::string config_path = (dir / "config.json").string();
  DUET_ASSIGN_OR_RETURN(const std::string config_text, ReadTextFile(config_path));
  const std::string generation_path = (dir / "generation_config.json").string();
  std::error_code error;
  if (!std::filesystem::exists(generation_path, error)) {
    return ParseModelConfig(config_text, config_path);
  }
  DUET_ASSIGN_OR_RETURN(const std::string generation_text, ReadTextFile(generation_path));
  return ParseModelConfig(config_text, config_path, generation_text, generation_path);
}

}  // namespace duet
