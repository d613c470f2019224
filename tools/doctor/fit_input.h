// Where duet-fit gets a model's architecture: a model directory (its
// config.json and generation_config.json) or a lone config.json file.
// Reads files; no other state. Safe to call from any thread.
#ifndef DUET_TOOLS_DOCTOR_FIT_INPUT_H_
#define DUET_TOOLS_DOCTOR_FIT_INPUT_H_

#include <string>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "tools/doctor/fit.h"

namespace duet::doctor {

// Exactly one of `model_dir` and `config_file` must be non-empty
// (InvalidArgument otherwise). A directory is read with LoadModelConfig
// (NotFound naming <dir>/config.json when it is missing); a file is parsed
// with ParseModelConfig (NotFound naming it when it cannot be read). Parse
// errors are ParseModelConfig's, naming the file and field.
absl::StatusOr<ModelConfig> LoadFitModelConfig(const std::string& model_dir,
                                               const std::string& config_file);

// One fit as the fit flags ask for it (duet-fit, duet doctor --model).
struct FitRequest {
  std::string model_dir;    // exactly one of model_dir and config_file
  std::string config_file;
  std::string quantization = "auto";  // ParseQuantizationChoice's names
  // options.max_model_len == 0 takes kDefaultFitMaxModelLen, or the model's
  // max_position_embeddings when that is smaller.
  FitOptions options;
};

inline constexpr int64_t kDefaultFitMaxModelLen = 8192;

// Loads the config (LoadFitModelConfig), resolves the weight format and
// computes the fit; the first error of those steps.
absl::StatusOr<FitReport> ComputeRequestedFit(const FitRequest& request);

}  // namespace duet::doctor

#endif  // DUET_TOOLS_DOCTOR_FIT_INPUT_H_
