#include "tests/common/test_files.h"

#include <stdlib.h>

#include <fstream>

#include "glog/logging.h"

namespace duet::testing {

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "duet_test_XXXXXX").string();
  PCHECK(::mkdtemp(pattern.data()) != nullptr) << pattern;
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code error;
  std::filesystem::remove_all(path_, error);
}

std::string TempDir::WriteFile(const std::string& name, const std::string& contents) const {
  const std::filesystem::path file = path_ / name;
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  CHECK(out.good()) << "cannot write " << file;
  return file.string();
}

nlohmann::json SafetensorsHeaderJson(const std::vector<TestTensor>& tensors,
                                     const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const TestTensor& tensor : tensors) {
    header[tensor.name] = {{"dtype", tensor.dtype},
                           {"shape", tensor.shape},
                           {"data_offsets", {offset, offset + tensor.bytes.size()}}};
    offset += tensor.bytes.size();
  }
  return header;
}

std::string SafetensorsFileBytes(const std::string& header_json, const std::string& data) {
  std::string file(8, '\0');
  const uint64_t length = header_json.size();
  for (int i = 0; i < 8; ++i) file[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  return file + header_json + data;
}

std::string SafetensorsFileBytes(const std::vector<TestTensor>& tensors,
                                 const std::map<std::string, std::string>& metadata) {
  std::string data;
  for (const TestTensor& tensor : tensors) data += tensor.bytes;
  return SafetensorsFileBytes(SafetensorsHeaderJson(tensors, metadata).dump(), data);
}

}  // namespace duet::testing
