// Shared helpers for the tokenizer tests: where the real tokenizer.json assets
// are, and loading them once per test binary.
#ifndef DUET_TESTS_ROUTER_TOKENIZER_TOKENIZER_TEST_UTIL_H_
#define DUET_TESTS_ROUTER_TOKENIZER_TOKENIZER_TEST_UTIL_H_

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "glog/logging.h"
#include "router/tokenizer/tokenizer.h"

namespace duet::tokenizer::testing {

// $DUET_ASSETS (ctest sets it), else ../shared/assets.
inline std::filesystem::path AssetsDir() {
  const char* env = std::getenv("DUET_ASSETS");
  return env != nullptr && *env != '\0' ? std::filesystem::path(env)
                                        : std::filesystem::path("../shared/assets");
}

inline std::filesystem::path TokenizerJsonPath(const std::string& vocabulary) {
  return AssetsDir() / "tokenizers" / vocabulary / "tokenizer.json";
}

inline std::string ReadFileOrDie(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  CHECK(file) << "cannot open " << path;
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

// The real tokenizer for `vocabulary` (llama3, llama3_1, qwen3), loaded once;
// nullptr when the asset is absent (the caller skips). Dies if the file is
// present but does not load, which is a test failure.
inline const Tokenizer* SharedTokenizer(const std::string& vocabulary) {
  static auto* cache = new std::map<std::string, std::unique_ptr<Tokenizer>>();
  auto it = cache->find(vocabulary);
  if (it != cache->end()) return it->second.get();
  const std::filesystem::path path = TokenizerJsonPath(vocabulary);
  if (!std::filesystem::exists(path)) return nullptr;
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromFile(path.string());
  CHECK(tokenizer.ok()) << tokenizer.status();
  return cache->emplace(vocabulary, *std::move(tokenizer)).first->second.get();
}

}  // namespace duet::tokenizer::testing

#endif  // DUET_TESTS_ROUTER_TOKENIZER_TOKENIZER_TEST_UTIL_H_
