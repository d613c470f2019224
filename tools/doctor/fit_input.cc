#include "tools/doctor/fit_input.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/str_cat.h"

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

}  // namespace duet::doctor
