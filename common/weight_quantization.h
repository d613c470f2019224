// How a Hugging Face checkpoint stores its quantized Linear weights, from
// config.json's quantization_config: the formats duet reads as stored, and a
// clear error for every other method, field value or combination before any
// weight is read.
//
// Supported:
//   quant_method "awq": bits 4, zero_point true, version "gemm" (AutoAWQ's
//     packing), any group_size (default 128). Tensors <module>.qweight,
//     .qzeros, .scales.
//   quant_method "fp8": fmt "e4m3", weight_block_size [rows, cols] (default
//     [128, 128], as transformers), activation_scheme "dynamic" or "static".
//     Tensors <module>.weight (F8_E4M3) and .weight_scale_inv (the multiplier,
//     one per block).
//   quant_method "compressed-tensors" with one config group, whose weights are
//     4-bit integers (format "pack-quantized": strategy "group" or "channel",
//     symmetric or with zero points; tensors .weight_packed, .weight_scale,
//     .weight_zero_point, .weight_shape) or 8-bit floats (format
//     "float-quantized": strategy "tensor", "channel" or "block"; tensors
//     .weight, .weight_scale). Input-activation quantization (W8A8 FP8) is
//     accepted and computed as W8A16: activations stay in the backend's
//     precision.
// Which modules are quantized is read off the tensors (a module stored in the
// declared format, or plain), so `ignore` / `modules_to_not_convert` lists need
// no interpretation; a module stored in a format the config does not declare
// is an error when it is loaded.
#ifndef DUET_COMMON_WEIGHT_QUANTIZATION_H_
#define DUET_COMMON_WEIGHT_QUANTIZATION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/model_config.h"

namespace duet {

enum class WeightFormat : uint8_t {
  kPlain,  // f32 / f16 / bf16
  kAwq,    // AutoAWQ gemm
  kInt4,   // compressed-tensors pack-quantized, 4 bits
  kFp8,    // e4m3 with scales
};

// "plain", "awq", "int4", "fp8".
std::string_view WeightFormatName(WeightFormat format);

enum class Fp8Scales : uint8_t { kTensor, kChannel, kBlock };

struct WeightQuantization {
  WeightFormat format = WeightFormat::kPlain;
  // kAwq, kInt4: input features per scale; 0 for kInt4's "channel" (one per row).
  int64_t group_size = 0;
  bool zero_points = false;  // kAwq always; kInt4 when not symmetric
  // kFp8.
  Fp8Scales fp8_scales = Fp8Scales::kBlock;
  int64_t block_rows = 0, block_cols = 0;  // kBlock
  // The scale tensor's suffix: "weight_scale_inv" for quant_method fp8,
  // "weight_scale" for compressed-tensors.
  std::string fp8_scale_name;
  std::string method;  // quant_method as written, for messages
};

// The scheme of `config` (kPlain without a quantization_config). Unimplemented
// for a method or field value duet does not read, InvalidArgument for a
// malformed one; both name config.json's field.
absl::StatusOr<WeightQuantization> ParseWeightQuantization(const ModelConfig& config);

}  // namespace duet

#endif  // DUET_COMMON_WEIGHT_QUANTIZATION_H_
