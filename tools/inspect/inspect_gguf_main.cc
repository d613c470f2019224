// duet-inspect-gguf <file.gguf> [--dequantize <tensor> --out <path>]
//
// Prints, as JSON on stdout, what duet reads from a GGUF file: its version,
// alignment, every metadata value ({"type", "value"}; arrays
// as {"type": "array", "element_type", "value": [every element]}, arrays of
// arrays with their "length" only; NaN and infinities as the strings "nan",
// "inf", "-inf") and every tensor's name, ggml type, dims (innermost first),
// offset in the data area and byte count. With --dequantize it instead
// writes that tensor to <path> as raw little-endian fp32, one row of dims[0]
// values after another, decoded by kernels::DequantizeRow. Exit status 1 and
// a message on stderr when the file or the request is rejected.
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/gguf.h"
#include "common/str_cat.h"
#include "kernels/block_quant.h"
#include "kernels/ops.h"
#include "nlohmann/json.hpp"
#include "worker/models/gguf_weights.h"

namespace duet {
namespace {

using Json = nlohmann::json;

Json FloatJson(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  return value;
}

bool IsBool(GgufValueType type) { return type == GgufValueType::kBool; }
bool IsFloat(GgufValueType type) {
  return type == GgufValueType::kFloat32 || type == GgufValueType::kFloat64;
}

Json ValueJson(const GgufValue& value) {
  Json json = {{"type", GgufValueTypeName(value.type)}};
  switch (value.type) {
    case GgufValueType::kString:
      json["value"] = value.string;
      return json;
    case GgufValueType::kFloat32:
    case GgufValueType::kFloat64:
      json["value"] = FloatJson(value.real);
      return json;
    case GgufValueType::kBool:
      json["value"] = value.integer != 0;
      return json;
    case GgufValueType::kArray:
      break;
    default:
      json["value"] = value.integer;
      return json;
  }
  json["element_type"] = GgufValueTypeName(value.element_type);
  if (value.element_type == GgufValueType::kArray) {
    json["length"] = value.array_length;
    return json;
  }
  Json elements = Json::array();
  if (value.element_type == GgufValueType::kString) {
    for (const std::string& element : value.strings) elements.push_back(element);
  } else if (IsFloat(value.element_type)) {
    for (const double element : value.reals) elements.push_back(FloatJson(element));
  } else if (IsBool(value.element_type)) {
    for (const int64_t element : value.integers) elements.push_back(element != 0);
  } else {
    elements = value.integers;
  }
  json["value"] = std::move(elements);
  return json;
}

std::string_view GgmlTypeName(uint32_t type_id) {
  const std::optional<GgmlTypeTraits> traits = GgmlTypeInfo(type_id);
  return traits ? traits->name : "unknown";
}

Json FileJson(const GgufFile& file) {
  Json metadata = Json::object();
  for (const auto& [key, value] : file.metadata()) metadata[key] = ValueJson(value);
  Json tensors = Json::array();
  for (const GgufTensor& tensor : file.tensors()) {
    tensors.push_back({
        {"name", tensor.name},
        {"type", GgmlTypeName(tensor.type_id)},
        {"dims", tensor.dims},
        {"offset", tensor.offset},
        {"num_bytes", tensor.num_bytes},
    });
  }
  return {{"version", file.version()},
          {"alignment", file.alignment()},
          {"metadata", std::move(metadata)},
          {"tensors", std::move(tensors)}};
}

// Writes `tensor_name` of `file` to `out_path` as fp32 rows.
absl::Status Dequantize(const GgufFile& file, const std::string& tensor_name,
                        const std::string& out_path) {
  const GgufTensor* tensor = file.FindTensor(tensor_name);
  if (tensor == nullptr) {
    return absl::NotFoundError(StrCat(file.path(), ": no tensor \"", tensor_name, "\""));
  }
  const absl::StatusOr<kernels::WeightType> type = worker::WeightTypeOfGgml(tensor->type_id, tensor_name);
  if (!type.ok()) return absl::UnimplementedError(StrCat(file.path(), ": ", type.status().message()));
  std::ofstream out(out_path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::PermissionDeniedError(StrCat(out_path, ": cannot open for writing"));
  const int64_t cols = tensor->dims[0];
  if (cols > 0) {
    // The parser checked that dims[0] is a whole number of blocks and that
    // every row lies inside the file.
    const int64_t rows = tensor->num_elements() / cols;
    const int64_t row_bytes = kernels::WeightRowBytes(*type, cols);
    std::vector<float> row(cols);
    for (int64_t r = 0; r < rows; ++r) {
      kernels::DequantizeRow(*type, tensor->data + r * row_bytes, cols, row.data());
      out.write(reinterpret_cast<const char*>(row.data()),
                static_cast<std::streamsize>(row.size() * sizeof(float)));
    }
  }
  out.close();
  if (!out) return absl::DataLossError(StrCat(out_path, ": write failed"));
  return absl::OkStatus();
}

int Run(int argc, char** argv) {
  std::string path, tensor_name, out_path;
  bool usage_error = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--dequantize" && i + 1 < argc && tensor_name.empty()) {
      tensor_name = argv[++i];
    } else if (arg == "--out" && i + 1 < argc && out_path.empty()) {
      out_path = argv[++i];
    } else if (path.empty() && !arg.starts_with("--")) {
      path = arg;
    } else {
      usage_error = true;
    }
  }
  if (usage_error || path.empty() || tensor_name.empty() != out_path.empty()) {
    std::cerr << "usage: " << argv[0] << " <file.gguf> [--dequantize <tensor> --out <path>]\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open(path);
  if (!file.ok()) {
    std::cerr << file.status().ToString() << "\n";
    return 1;
  }
  if (!tensor_name.empty()) {
    const absl::Status status = Dequantize(**file, tensor_name, out_path);
    if (!status.ok()) {
      std::cerr << status.ToString() << "\n";
      return 1;
    }
    return 0;
  }
  // Metadata strings need not be valid UTF-8; show bad bytes as U+FFFD
  // rather than throw.
  std::cout << FileJson(**file).dump(1, ' ', false, Json::error_handler_t::replace) << "\n";
  return 0;
}

}  // namespace
}  // namespace duet

int main(int argc, char** argv) { return duet::Run(argc, argv); }
