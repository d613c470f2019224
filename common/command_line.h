// Command-line handling every duet binary shares: flags may be spelled with
// dashes or underscores (--max-model-len, --max_model_len), as vLLM users
// type them.
#ifndef DUET_COMMON_COMMAND_LINE_H_
#define DUET_COMMON_COMMAND_LINE_H_

#include <string>
#include <string_view>
#include <vector>

namespace duet {

// "--max-tokens=3" -> "--max_tokens=3": dashes inside flag names become
// underscores; values and positional arguments are left alone.
std::string NormalizeFlag(std::string_view arg);

// Parses argv[first_flag..] with absl::ParseCommandLine after NormalizeFlag;
// argv[0] stays the program name. Returns the positional arguments.
std::vector<std::string> ParseFlags(int argc, char** argv, int first_flag = 1);

}  // namespace duet

#endif  // DUET_COMMON_COMMAND_LINE_H_
