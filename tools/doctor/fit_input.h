// Where duet-fit gets a model's architecture: a model directory (its
// config.json and generation_config.json) or a lone config.json file.
// Reads files; no other state. Safe to call from any thread.
#ifndef DUET_TOOLS_DOCTOR_FIT_INPUT_H_
#define DUET_TOOLS_DOCTOR_FIT_INPUT_H_

#include <string>

#include "absl/status/statusor.h"
#include "common/model_config.h"

namespace duet::doctor {

// Exactly one of `model_dir` and `config_file` must be non-empty
// (InvalidArgument otherwise). A directory is read with LoadModelConfig
// (NotFound naming <dir>/config.json when it is missing); a file is parsed
// with ParseModelConfig (NotFound naming it when it cannot be read). Parse
// errors are ParseModelConfig's, naming the file and field.
absl::StatusOr<ModelConfig> LoadFitModelConfig(const std::string& model_dir,
                                               const std::string& config_file);

}  // namespace duet::doctor

#endif  // DUET_TOOLS_DOCTOR_FIT_INPUT_H_
