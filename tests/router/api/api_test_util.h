// Where the router-API tests find their inputs: the committed model fixtures
// and the real tokenizers of $DUET_ASSETS (tests skip when those are absent).
#ifndef DUET_TESTS_ROUTER_API_API_TEST_UTIL_H_
#define DUET_TESTS_ROUTER_API_API_TEST_UTIL_H_

#include <cstdlib>
#include <filesystem>
#include <string>

#include "tests/test_paths.h"

namespace duet::api::testing {

// $DUET_ASSETS (ctest sets it), else ../shared/assets beside the source tree.
inline std::filesystem::path AssetsDir() {
  const char* env = std::getenv("DUET_ASSETS");
  if (env != nullptr && *env != '\0') return env;
  return std::filesystem::path(duet::testing::SourceDir()) / ".." / "shared" / "assets";
}

inline std::string TokenizerDir(const std::string& name) {
  return (AssetsDir() / "tokenizers" / name).string();
}

inline bool HasTokenizer(const std::string& name) {
  return std::filesystem::exists(AssetsDir() / "tokenizers" / name / "tokenizer.json");
}

inline std::string FixtureModelDir(const std::string& name) {
  return (std::filesystem::path(duet::testing::SourceDir()) / "tests" / "golden" / "fixtures" / name).string();
}

}  // namespace duet::api::testing

#endif  // DUET_TESTS_ROUTER_API_API_TEST_UTIL_H_
