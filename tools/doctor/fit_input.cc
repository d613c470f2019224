#include "tools/doctor/fit_input.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/status_macros.h"
#include "common/str_cat.h"
#include "tools/doctor/model_bytes.h"

namespace duet::doctor {

absl::StatusOr<ModelConfig> LoadFitModelConfig(const std::string& model_dir,
                                               const std::string& config_file) {
  if (model_dir.empty() == config_file.empty()) {
    return absl::InvalidArgumentError("give exactly one of --model DIR and --config FILE");
  }
  if (!model_dir.empty()) return LoadModelConfig(model_dir);
  std::error_code error;
  std::ifstream in;
  if (std::filesystem::is_regular_file(config_file, error)) in.open(config_file, std::ios::binary);
  if (!in.is_open()) return absl::NotFoundError(StrCat("cannot read config file ", config_file));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(StrCat("error reading config file ", config_file));
  return ParseModelConfig(text.str(), config_file);
}

absl::StatusOr<FitReport> ComputeRequestedFit(const FitRequest& request) {
  DUET_ASSIGN_OR_RETURN(const ModelConfig config,
                        LoadFitModelConfig(request.model_dir, request.config_file));
  DUET_ASSIGN_OR_RETURN(const QuantizationChoice choice,
                        ParseQuantizationChoice(request.quantization));
  DUET_ASSIGN_OR_RETURN(const Quantization quantization, ResolveQuantization(config, choice));
  FitOptions options = request.options;
  if (options.max_model_len == 0) {
    options.max_model_len = std::min(kDefaultFitMaxModelLen, config.max_position_embeddings);
  }
  return ComputeFit(config, quantization, options);
}

}  // namespace duet::doctor
