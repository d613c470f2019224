// duet-inspect-safetensors [--values] <file.safetensors | model_dir>
//
// Prints, as JSON on stdout, every tensor duet reads: name, dtype, shape,
// byte count, an FNV-1a 64 checksum of its raw bytes and, with --values, its
// elements decoded to numbers (NaN and infinities as the strings "nan",
// "inf", "-inf"). A directory is opened as a (possibly sharded) checkpoint and
// each tensor also names its shard file. Exit status 1 and a message on
// stderr when the input is rejected.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/dtype.h"
#include "common/half.h"
#include "common/safetensors.h"
#include "common/safetensors_checkpoint.h"
#include "nlohmann/json.hpp"

namespace duet {
namespace {

using Json = nlohmann::json;

uint64_t Fnv1a64(const std::byte* data, size_t num_bytes) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < num_bytes; ++i) {
    hash ^= static_cast<uint64_t>(data[i]);
    hash *= 0x100000001b3ull;
  }
  return hash;
}

template <typename T>
T Load(const std::byte* data, int64_t index) {
  T value;
  std::memcpy(&value, data + index * static_cast<int64_t>(sizeof(T)), sizeof(T));
  return value;
}

Json FloatJson(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  return value;
}

Json ElementJson(const TensorView& tensor, int64_t index) {
  switch (tensor.dtype) {
    case DType::kF32:
      return FloatJson(Load<float>(tensor.data, index));
    case DType::kF16:
      return FloatJson(F16ToFloat(Load<uint16_t>(tensor.data, index)));
    case DType::kBF16:
      return FloatJson(Bf16ToFloat(Load<uint16_t>(tensor.data, index)));
    case DType::kF8E4M3:
      return FloatJson(F8E4M3ToFloat(Load<uint8_t>(tensor.data, index)));
    case DType::kI8:
      return Load<int8_t>(tensor.data, index);
    case DType::kU8:
      return Load<uint8_t>(tensor.data, index);
    case DType::kI32:
      return Load<int32_t>(tensor.data, index);
    case DType::kI64:
      return Load<int64_t>(tensor.data, index);
  }
  return nullptr;
}

Json TensorJson(const TensorView& tensor, bool with_values) {
  Json json = {
      {"name", tensor.name},
      {"dtype", DTypeName(tensor.dtype)},
      {"shape", std::vector<int64_t>(tensor.shape.begin(), tensor.shape.end())},
      {"num_bytes", tensor.num_bytes},
      {"fnv1a64", Fnv1a64(tensor.data, tensor.num_bytes)},
  };
  if (with_values) {
    Json values = Json::array();
    for (int64_t i = 0; i < tensor.num_elements(); ++i) values.push_back(ElementJson(tensor, i));
    json["values"] = std::move(values);
  }
  return json;
}

Json FileJson(const SafetensorsFile& file, bool with_values) {
  Json tensors = Json::array();
  for (const TensorView& tensor : file.tensors()) {
    Json entry = TensorJson(tensor, with_values);
    entry["file"] = std::filesystem::path(file.path()).filename().string();
    tensors.push_back(std::move(entry));
  }
  return tensors;
}

int Run(int argc, char** argv) {
  bool with_values = false;
  std::string path;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--values") {
      with_values = true;
    } else if (path.empty() && !arg.starts_with("--")) {
      path = arg;
    } else {
      path.clear();
      break;
    }
  }
  if (path.empty()) {
    std::cerr << "usage: " << argv[0] << " [--values] <file.safetensors | model_dir>\n";
    return 2;
  }

  Json output = {{"path", path}, {"tensors", Json::array()}};
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> checkpoint =
        SafetensorsCheckpoint::Open(path);
    if (!checkpoint.ok()) {
      std::cerr << checkpoint.status().ToString() << "\n";
      return 1;
    }
    for (const std::unique_ptr<SafetensorsFile>& shard : (*checkpoint)->shards()) {
      for (Json& tensor : FileJson(*shard, with_values))
        output["tensors"].push_back(std::move(tensor));
    }
  } else {
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
    if (!file.ok()) {
      std::cerr << file.status().ToString() << "\n";
      return 1;
    }
    output["metadata"] = (*file)->metadata();
    output["tensors"] = FileJson(**file, with_values);
  }
  std::cout << output.dump(1) << "\n";
  return 0;
}

}  // namespace
}  // namespace duet

int main(int argc, char** argv) { return duet::Run(argc, argv); }
