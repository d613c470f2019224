#include "kernels/ops.h"

#include <glog/logging.h>

#include <cstdlib>

namespace duet::kernels {

int WeightTypeSize(WeightType type) {
  switch (type) {
    case WeightType::kF32:
      return 4;
    case WeightType::kF16:
    case WeightType::kBF16:
      return 2;
  }
  LOG(FATAL) << "unknown WeightType " << static_cast<int>(type);
  std::abort();  // LOG(FATAL) does not return
}

}  // namespace duet::kernels
