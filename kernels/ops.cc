#include "kernels/ops.h"

#include <glog/logging.h>

#include <cstdlib>

namespace duet::kernels {

std::string_view WeightTypeName(WeightType type) {
  switch (type) {
    case WeightType::kF32:
      return "F32";
    case WeightType::kF16:
      return "F16";
    case WeightType::kBF16:
      return "BF16";
    case WeightType::kQ8_0:
      return "Q8_0";
    case WeightType::kQ4_0:
      return "Q4_0";
    case WeightType::kQ4_1:
      return "Q4_1";
    case WeightType::kQ4_K:
      return "Q4_K";
    case WeightType::kQ5_K:
      return "Q5_K";
    case WeightType::kQ6_K:
      return "Q6_K";
    case WeightType::kAwqInt4:
      return "AWQ_INT4";
    case WeightType::kInt4:
      return "INT4";
    case WeightType::kF8E4M3:
      return "F8_E4M3";
  }
  LOG(FATAL) << "unknown WeightType " << static_cast<int>(type);
  std::abort();  // LOG(FATAL) does not return
}

bool IsBlockQuantized(WeightType type) {
  return !IsGroupQuantized(type) && WeightTypeBlockElements(type) > 1;
}

bool IsGroupQuantized(WeightType type) {
  return type == WeightType::kAwqInt4 || type == WeightType::kInt4 || type == WeightType::kF8E4M3;
}

int64_t WeightTypeBlockElements(WeightType type) {
  switch (type) {
    case WeightType::kF32:
    case WeightType::kF16:
    case WeightType::kBF16:
      return 1;
    case WeightType::kQ8_0:
    case WeightType::kQ4_0:
    case WeightType::kQ4_1:
      return 32;
    case WeightType::kQ4_K:
    case WeightType::kQ5_K:
    case WeightType::kQ6_K:
      return 256;
    case WeightType::kAwqInt4:
    case WeightType::kInt4:
    case WeightType::kF8E4M3:
      LOG(FATAL) << WeightTypeName(type) << " is group-quantized and has no row blocks";
  }
  LOG(FATAL) << "unknown WeightType " << static_cast<int>(type);
  std::abort();  // LOG(FATAL) does not return
}

int64_t WeightTypeBlockBytes(WeightType type) {
  switch (type) {
    case WeightType::kF32:
      return 4;
    case WeightType::kF16:
    case WeightType::kBF16:
      return 2;
    case WeightType::kQ8_0:
      return 2 + 32;
    case WeightType::kQ4_0:
      return 2 + 16;
    case WeightType::kQ4_1:
      return 2 + 2 + 16;
    case WeightType::kQ4_K:
      return 2 + 2 + 12 + 128;
    case WeightType::kQ5_K:
      return 2 + 2 + 12 + 32 + 128;
    case WeightType::kQ6_K:
      return 128 + 64 + 16 + 2;
    case WeightType::kAwqInt4:
    case WeightType::kInt4:
    case WeightType::kF8E4M3:
      LOG(FATAL) << WeightTypeName(type) << " is group-quantized and has no row blocks";
  }
  LOG(FATAL) << "unknown WeightType " << static_cast<int>(type);
  std::abort();  // LOG(FATAL) does not return
}

int64_t WeightRowBytes(WeightType type, int64_t cols) {
  const int64_t block_elements = WeightTypeBlockElements(type);
  CHECK_EQ(cols % block_elements, 0) << WeightTypeName(type) << " row of " << cols << " elements";
  return cols / block_elements * WeightTypeBlockBytes(type);
}

int WeightTypeSize(WeightType type) {
  CHECK(!IsBlockQuantized(type)) << WeightTypeName(type) << " has no per-element size";
  return static_cast<int>(WeightTypeBlockBytes(type));
}

std::string_view QuantizedMatmulName(QuantizedMatmul mode) {
  return mode == QuantizedMatmul::kInt8 ? "int8" : "fp32";
}

bool ParseQuantizedMatmul(std::string_view name, QuantizedMatmul* mode) {
  if (name == "int8") {
    *mode = QuantizedMatmul::kInt8;
  } else if (name == "fp32") {
    *mode = QuantizedMatmul::kFloat;
  } else {
    return false;
  }
  return true;
}

int64_t KvDtypeBytes(KvDtype dtype) { return dtype == KvDtype::kBfloat16 ? 2 : 4; }

std::string_view KvDtypeName(KvDtype dtype) { return dtype == KvDtype::kBfloat16 ? "bf16" : "fp32"; }

bool ParseKvDtype(std::string_view name, KvDtype* dtype) {
  if (name == "fp32" || name == "float32") {
    *dtype = KvDtype::kFloat32;
  } else if (name == "bf16" || name == "bfloat16") {
    *dtype = KvDtype::kBfloat16;
  } else {
    return false;
  }
  return true;
}

}  // namespace duet::kernels
