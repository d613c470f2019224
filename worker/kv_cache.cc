#include "worker/kv_cache.h"

#include <algorithm>

namespace duet::worker {
namespace {

int64_t LayerBytes(const kernels::KvCacheLayout& layout) {
  return static_cast<int64_t>(layout.num_blocks) * layout.block_size * layout.num_kv_heads * layout.head_dim *
         kernels::KvDtypeBytes(layout.dtype);
}

}  // namespace

KvCache::KvCache(int64_t num_layers, const kernels::KvCacheLayout& layout)
    : num_layers_(num_layers),
      layout_(layout),
      layer_bytes_(LayerBytes(layout)),
      storage_(std::make_unique<HugePageBuffer>(
          static_cast<size_t>(std::max<int64_t>(sizeof(float), 2 * num_layers * layer_bytes_)))) {}

int64_t KvCache::BlockBytes(int64_t num_layers, const kernels::KvCacheLayout& layout) {
  return 2 * num_layers * static_cast<int64_t>(layout.block_size) * layout.num_kv_heads * layout.head_dim *
         kernels::KvDtypeBytes(layout.dtype);
}

}  // namespace duet::worker
