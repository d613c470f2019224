#include "common/dtype.h"

#include <array>
#include <bit>
#include <limits>

#include "glog/logging.h"

namespace duet {
namespace {

struct DTypeInfo {
  DType dtype;
  std::string_view name;
  size_t size_bytes;
};

constexpr std::array<DTypeInfo, 8> kDTypes = {{
    {DType::kF32, "F32", 4},
    {DType::kF16, "F16", 2},
    {DType::kBF16, "BF16", 2},
    {DType::kI8, "I8", 1},
    {DType::kU8, "U8", 1},
    {DType::kI32, "I32", 4},
    {DType::kI64, "I64", 8},
    {DType::kF8E4M3, "F8_E4M3", 1},
}};

// Info() indexes kDTypes by the enum's value.
constexpr bool TableFollowsEnumOrder() {
  for (size_t i = 0; i < kDTypes.size(); ++i) {
    if (static_cast<size_t>(kDTypes[i].dtype) != i) return false;
  }
  return true;
}
static_assert(TableFollowsEnumOrder());

const DTypeInfo& Info(DType dtype) {
  const auto index = static_cast<size_t>(dtype);
  CHECK_LT(index, kDTypes.size()) << "invalid DType value " << index;
  return kDTypes[index];
}

}  // namespace

size_t DTypeSizeBytes(DType dtype) { return Info(dtype).size_bytes; }

std::string_view DTypeName(DType dtype) { return Info(dtype).name; }

std::optional<DType> ParseDTypeName(std::string_view name) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.name == name) return info.dtype;
  }
  return std::nullopt;
}


}  // namespace duet
