// Replays fuzz inputs through LLVMFuzzerTestOneInput without libFuzzer, so
// every build (any compiler) runs each fuzz target over its seed corpus and
// past crash inputs as an ordinary test.
//
// usage: <target>_fuzz_replay <file or directory>...
// Directories are read one level deep, in name order. Fails when no input
// was found, so a misplaced corpus cannot pass silently.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

bool RunFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return false;
  }
  const std::string input((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::fprintf(stderr, "replaying %s (%zu bytes)\n", path.c_str(), input.size());
  // A copy in its own allocation, so reads past the end are caught by tools
  // that watch heap bounds.
  std::vector<uint8_t> bytes(input.begin(), input.end());
  LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  size_t num_inputs = 0;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path arg = argv[i];
    std::vector<std::filesystem::path> files;
    if (std::filesystem::is_directory(arg)) {
      for (const auto& entry : std::filesystem::directory_iterator(arg)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
      std::sort(files.begin(), files.end());
    } else {
      files.push_back(arg);
    }
    for (const auto& file : files) {
      if (!RunFile(file)) return 1;
      ++num_inputs;
    }
  }
  if (num_inputs == 0) {
    std::fprintf(stderr, "no fuzz inputs found\n");
    return 1;
  }
  std::fprintf(stderr, "replayed %zu inputs\n", num_inputs);
  return 0;
}
