// Helpers for tests that need files: a self-deleting temporary directory and
// builders for safetensors files.
#ifndef DUET_TESTS_COMMON_TEST_FILES_H_
#define DUET_TESTS_COMMON_TEST_FILES_H_

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace duet::testing {

// A fresh directory under the system temp dir, removed with its contents on
// destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // Writes `contents` to path()/name and returns the full path.
  std::string WriteFile(const std::string& name, const std::string& contents) const;

 private:
  std::filesystem::path path_;
};

struct TestTensor {
  std::string name;
  std::string dtype;           // safetensors name, e.g. "F32"
  std::vector<int64_t> shape;  // [rank]
  std::string bytes;           // raw little-endian data
};

// The header JSON object for `tensors` laid out back to back in order.
nlohmann::json SafetensorsHeaderJson(const std::vector<TestTensor>& tensors,
                                     const std::map<std::string, std::string>& metadata = {});

// A whole file: the 8-byte little-endian length of `header_json`, the header,
// then `data`.
std::string SafetensorsFileBytes(const std::string& header_json, const std::string& data);

// A valid file holding `tensors`.
std::string SafetensorsFileBytes(const std::vector<TestTensor>& tensors,
                                 const std::map<std::string, std::string>& metadata = {});

// Bytes of `values` in memory order (little-endian on every supported host).
template <typename T>
std::string RawBytes(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

}  // namespace duet::testing

#endif  // DUET_TESTS_COMMON_TEST_FILES_H_
