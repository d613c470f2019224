// Rotary-embedding inverse frequencies, computed exactly as Hugging Face
// transformers does (fp32 throughout): the default
//   inv_freq[i] = 1 / theta^(2i / rotary_dim),  i in [0, rotary_dim / 2)
// and, for rope_scaling.rope_type == "llama3", the wavelength-based smoothing
// of `_compute_llama3_parameters`. The Rope op then rotates by
// angle = float(position) * inv_freq[i] (fp32), cos/sin in fp32.
#ifndef DUET_KERNELS_ROPE_H_
#define DUET_KERNELS_ROPE_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"

namespace duet::kernels {

// config.json's rope_scaling block for rope_type "llama3".
// Doubles, as JSON numbers are; used in fp32 or double exactly where
// transformers' Python code does.
struct Llama3RopeScaling {
  double factor = 8.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct RopeConfig {
  double theta = 10000.0;  // config.json rope_theta
  int32_t rotary_dim = 0;  // head_dim * partial_rotary_factor; even
  std::optional<Llama3RopeScaling> llama3;
};

// Returns inv_freq: [rotary_dim / 2]. Fails (naming the field) when theta <= 0,
// rotary_dim is not a positive even number, or the llama3 factors are not
// factor > 0, 0 < low_freq_factor < high_freq_factor and
// original_max_position_embeddings > 0.
absl::StatusOr<std::vector<float>> RopeInvFreq(const RopeConfig& config);

}  // namespace duet::kernels

#endif  // DUET_KERNELS_ROPE_H_
