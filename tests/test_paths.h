// Where C++ tests find the source tree (fixtures) and the build tree (tools).
// The environment (DUET_SOURCE_DIR, DUET_BUILD_DIR) wins; otherwise the
// directories duet_gtest() compiled in.
#ifndef DUET_TESTS_TEST_PATHS_H_
#define DUET_TESTS_TEST_PATHS_H_

#include <cstdlib>
#include <string>

namespace duet::testing {

inline std::string SourceDir() {
  const char* dir = std::getenv("DUET_SOURCE_DIR");
  return dir != nullptr ? dir : DUET_TEST_SOURCE_DIR;
}

inline std::string BuildDir() {
  const char* dir = std::getenv("DUET_BUILD_DIR");
  return dir != nullptr ? dir : DUET_TEST_BUILD_DIR;
}

}  // namespace duet::testing

#endif  // DUET_TESTS_TEST_PATHS_H_
