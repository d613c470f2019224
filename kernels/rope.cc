#include "kernels/rope.h"

#include <cmath>
#include <numbers>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace duet::kernels {
namespace {

// transformers' _compute_llama3_parameters, with torch's fp32 semantics: each
// Python scalar operand is rounded to fp32 and every operation is one fp32 op.
float Llama3Adjust(float inv_freq, const Llama3RopeScaling& scaling) {
  const float factor = static_cast<float>(scaling.factor);
  const float low_freq_factor = static_cast<float>(scaling.low_freq_factor);
  const float old_context_len = static_cast<float>(scaling.original_max_position_embeddings);
  // Python computes these two in double, then torch compares in fp32.
  const float low_freq_wavelen = static_cast<float>(
      static_cast<double>(scaling.original_max_position_embeddings) / scaling.low_freq_factor);
  const float high_freq_wavelen = static_cast<float>(
      static_cast<double>(scaling.original_max_position_embeddings) / scaling.high_freq_factor);
  const float two_pi = static_cast<float>(2.0 * std::numbers::pi);

  const float wavelen = two_pi / inv_freq;
  const float inv_freq_llama = wavelen > low_freq_wavelen ? inv_freq / factor : inv_freq;
  const bool is_medium_freq = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
  if (!is_medium_freq) return inv_freq_llama;
  const float factor_gap = static_cast<float>(scaling.high_freq_factor - scaling.low_freq_factor);
  const float smooth_factor = (old_context_len / wavelen - low_freq_factor) / factor_gap;
  return (1.0f - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama;
}

}  // namespace

absl::StatusOr<std::vector<float>> RopeInvFreq(const RopeConfig& config) {
  if (!(config.theta > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("rope_theta must be > 0, got ", config.theta));
  }
  if (config.rotary_dim <= 0 || config.rotary_dim % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("rotary dim must be positive and even, got ", config.rotary_dim));
  }
  if (config.llama3.has_value()) {
    const Llama3RopeScaling& s = *config.llama3;
    if (!(s.factor > 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("rope_scaling.factor must be > 0, got ", s.factor));
    }
    if (!(s.low_freq_factor > 0 && s.low_freq_factor < s.high_freq_factor)) {
      return absl::InvalidArgumentError(
          absl::StrCat("rope_scaling needs 0 < low_freq_factor < high_freq_factor, got ",
                       s.low_freq_factor, " and ", s.high_freq_factor));
    }
    if (s.original_max_position_embeddings <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("rope_scaling.original_max_position_embeddings must be > 0, got ",
                       s.original_max_position_embeddings));
    }
  }

  const float theta = static_cast<float>(config.theta);
  const float dim = static_cast<float>(config.rotary_dim);
  std::vector<float> inv_freq(config.rotary_dim / 2);
  for (int32_t i = 0; i < config.rotary_dim / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / dim;
    inv_freq[i] = 1.0f / std::pow(theta, exponent);
    if (config.llama3.has_value()) inv_freq[i] = Llama3Adjust(inv_freq[i], *config.llama3);
  }
  return inv_freq;
}

}  // namespace duet::kernels
