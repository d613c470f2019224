#include "common/command_line.h"

#include <algorithm>

#include "absl/flags/parse.h"
#include "absl/flags/usage_config.h"

namespace duet {

std::string NormalizeFlag(std::string_view arg) {
  if (arg.size() < 3 || arg.substr(0, 2) != "--") return std::string(arg);
  std::string normalized(arg);
  const size_t name_end = std::min(normalized.find('='), normalized.size());
  for (size_t i = 2; i < name_end; ++i) {
    if (normalized[i] == '-') normalized[i] = '_';
  }
  return normalized;
}

std::vector<std::string> ParseFlags(int argc, char** argv, int first_flag) {
  // --help lists the flags defined by the program's own sources (its main
  // file and what it pulls in from the project), not Abseil's internals.
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view path) {
    return path.find("absl/") == absl::string_view::npos;
  };
  absl::SetFlagsUsageConfig(usage);
  std::vector<std::string> normalized = {argv[0]};
  for (int i = first_flag; i < argc; ++i) normalized.push_back(NormalizeFlag(argv[i]));
  std::vector<char*> args;
  for (std::string& arg : normalized) args.push_back(arg.data());
  std::vector<char*> positional = absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  return std::vector<std::string>(positional.begin() + 1, positional.end());
}

}  // namespace duet
