#include "common/weight_quantization.h"

#include <cctype>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "common/json_fields.h"
#include "common/status_macros.h"
#include "common/str_cat.h"

namespace duet {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kFile = "config.json";

absl::Status Unsupported(std::string_view method, std::string_view field, std::string_view problem) {
  return absl::UnimplementedError(StrCat(kFile, ": quantization_config (quant_method \"", method,
                                         "\"): field \"", field, "\": ", problem));
}

std::string Shown(const Json* value) { return value == nullptr ? "absent" : value->dump(); }

absl::StatusOr<WeightQuantization> ParseAwq(const QuantizationConfig& quant) {
  WeightQuantization scheme{.format = WeightFormat::kAwq, .method = quant.quant_method};
  if (quant.bits.value_or(4) != 4) {
    return Unsupported("awq", "bits", StrCat(*quant.bits, " (duet reads 4-bit AWQ)"));
  }
  if (!quant.zero_point.value_or(true)) {
    return Unsupported("awq", "zero_point", "false (duet reads AWQ with zero points)");
  }
  std::string version = quant.version.value_or("gemm");
  for (char& c : version) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (version != "gemm") {
    return Unsupported("awq", "version", StrCat("\"", *quant.version, "\" (duet reads AutoAWQ's \"gemm\" packing)"));
  }
  scheme.group_size = quant.group_size.value_or(128);
  if (scheme.group_size <= 0) {
    return Unsupported("awq", "group_size", StrCat(scheme.group_size, " (a positive group size is needed)"));
  }
  scheme.zero_points = true;
  return scheme;
}

absl::StatusOr<WeightQuantization> ParseFp8(const QuantizationConfig& quant) {
  WeightQuantization scheme{.format = WeightFormat::kFp8,
                            .fp8_scales = Fp8Scales::kBlock,
                            .fp8_scale_name = "weight_scale_inv",
                            .method = quant.quant_method};
  if (quant.fmt.has_value() && *quant.fmt != "e4m3") {
    return Unsupported("fp8", "fmt", StrCat("\"", *quant.fmt, "\" (duet reads e4m3)"));
  }
  if (quant.activation_scheme.has_value() && *quant.activation_scheme != "dynamic" &&
      *quant.activation_scheme != "static") {
    return Unsupported("fp8", "activation_scheme", StrCat("\"", *quant.activation_scheme, "\""));
  }
  scheme.block_rows = quant.weight_block_size.empty() ? 128 : quant.weight_block_size[0];
  scheme.block_cols = quant.weight_block_size.empty() ? 128 : quant.weight_block_size[1];
  return scheme;
}

// compressed-tensors: one config group of int4 (pack-quantized) or fp8
// (float-quantized) weights.
absl::StatusOr<WeightQuantization> ParseCompressedTensors(const QuantizationConfig& quant) {
  const std::string_view method = "compressed-tensors";
  const Json root = Json::parse(quant.raw_json);
  const JsonFields fields(root, std::string(kFile), "quantization_config.");
  if (const Json* kv = fields.Find("kv_cache_scheme"); kv != nullptr && !kv->is_null()) {
    return Unsupported(method, "kv_cache_scheme", StrCat(kv->dump(), " (a quantized KV cache)"));
  }
  if (const Json* sparsity = fields.Find("sparsity_config");
      sparsity != nullptr && !sparsity->is_null() && !(sparsity->is_object() && sparsity->empty())) {
    return Unsupported(method, "sparsity_config", StrCat(sparsity->dump(), " (sparse weights)"));
  }
  const Json* groups = fields.Find("config_groups");
  if (groups == nullptr || !groups->is_object() || groups->empty()) {
    return fields.Error("config_groups", StrCat("expected an object of config groups, got ", Shown(groups)));
  }
  if (groups->size() != 1) {
    return Unsupported(method, "config_groups",
                       StrCat(groups->size(), " groups (duet reads one scheme for all quantized modules)"));
  }
  const std::string group_name = groups->begin().key();
  const Json& group = groups->begin().value();
  const std::string prefix = StrCat("quantization_config.config_groups.", group_name, ".");
  if (!group.is_object()) return fields.Error(StrCat("config_groups.", group_name), "expected an object");
  std::string format;
  if (const Json* top = fields.Find("format"); top != nullptr && top->is_string()) format = top->get<std::string>();
  if (const auto it = group.find("format"); it != group.end() && it->is_string()) format = it->get<std::string>();
  const auto weights_it = group.find("weights");
  if (weights_it == group.end() || !weights_it->is_object()) {
    return absl::InvalidArgumentError(StrCat(kFile, ": field \"", prefix, "weights\": expected an object"));
  }
  const JsonFields weights(*weights_it, std::string(kFile), StrCat(prefix, "weights."));
  DUET_ASSIGN_OR_RETURN(const int64_t num_bits, weights.IntOr("num_bits", 0));
  DUET_ASSIGN_OR_RETURN(const std::string type, weights.RequiredString("type"));
  DUET_ASSIGN_OR_RETURN(const std::string strategy, weights.RequiredString("strategy"));
  DUET_ASSIGN_OR_RETURN(const bool symmetric, weights.BoolOr("symmetric", true));
  DUET_ASSIGN_OR_RETURN(const bool dynamic, weights.BoolOr("dynamic", false));
  const std::string field = StrCat("config_groups.", group_name, ".weights.");
  if (dynamic) return Unsupported(method, field + "dynamic", "true (weights need stored scales)");
  if (const Json* actorder = weights.Find("actorder"); actorder != nullptr && !actorder->is_null()) {
    return Unsupported(method, field + "actorder", StrCat(actorder->dump(), " (activation-ordered groups)"));
  }
  WeightQuantization scheme{.method = quant.quant_method};
  if (format == "pack-quantized") {
    if (type != "int" || num_bits != 4) {
      return Unsupported(method, field + "num_bits",
                         StrCat(num_bits, "-bit ", type, " (pack-quantized: duet reads 4-bit int)"));
    }
    scheme.format = WeightFormat::kInt4;
    scheme.zero_points = !symmetric;
    if (strategy == "group") {
      DUET_ASSIGN_OR_RETURN(scheme.group_size, weights.IntOr("group_size", 0));
      if (scheme.group_size <= 0 || scheme.group_size % 8 != 0) {
        return Unsupported(method, field + "group_size",
                           StrCat(scheme.group_size, " (a positive multiple of 8 is needed)"));
      }
    } else if (strategy == "channel") {
      scheme.group_size = 0;
    } else {
      return Unsupported(method, field + "strategy", StrCat("\"", strategy, "\" (int4: group or channel)"));
    }
    return scheme;
  }
  if (format == "float-quantized") {
    if (type != "float" || num_bits != 8) {
      return Unsupported(method, field + "num_bits",
                         StrCat(num_bits, "-bit ", type, " (float-quantized: duet reads 8-bit float, e4m3)"));
    }
    if (!symmetric) return Unsupported(method, field + "symmetric", "false (fp8 with zero points)");
    scheme.format = WeightFormat::kFp8;
    scheme.fp8_scale_name = "weight_scale";
    if (strategy == "tensor") {
      scheme.fp8_scales = Fp8Scales::kTensor;
    } else if (strategy == "channel") {
      scheme.fp8_scales = Fp8Scales::kChannel;
    } else if (strategy == "block") {
      scheme.fp8_scales = Fp8Scales::kBlock;
      const Json* block = weights.Find("block_structure");
      if (block == nullptr || !block->is_array() || block->size() != 2 || !(*block)[0].is_number_integer() ||
          !(*block)[1].is_number_integer() || (*block)[0].get<int64_t>() <= 0 || (*block)[1].get<int64_t>() <= 0) {
        return weights.Error("block_structure", StrCat("expected [rows, cols] of positive integers, got ", Shown(block)));
      }
      scheme.block_rows = (*block)[0].get<int64_t>();
      scheme.block_cols = (*block)[1].get<int64_t>();
    } else {
      return Unsupported(method, field + "strategy", StrCat("\"", strategy, "\" (fp8: tensor, channel or block)"));
    }
    return scheme;
  }
  return Unsupported(method, "format",
                     StrCat("\"", format, "\" (duet reads \"pack-quantized\" and \"float-quantized\")"));
}

}  // namespace

std::string_view WeightFormatName(WeightFormat format) {
  switch (format) {
    case WeightFormat::kPlain: return "plain";
    case WeightFormat::kAwq: return "awq";
    case WeightFormat::kInt4: return "int4";
    case WeightFormat::kFp8: return "fp8";
  }
  return "?";
}

absl::StatusOr<WeightQuantization> ParseWeightQuantization(const ModelConfig& config) {
  if (!config.quantization.has_value()) return WeightQuantization{};
  const QuantizationConfig& quant = *config.quantization;
  if (quant.quant_method == "awq") return ParseAwq(quant);
  if (quant.quant_method == "fp8") return ParseFp8(quant);
  if (quant.quant_method == "compressed-tensors") return ParseCompressedTensors(quant);
  return absl::UnimplementedError(StrCat(
      kFile, ": field \"quantization_config.quant_method\": \"", quant.quant_method,
      "\" is not a format duet reads (awq, fp8, compressed-tensors)"));
}

}  // namespace duet
