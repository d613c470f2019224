#include "worker/kv_cache.h"

#include <algorithm>

namespace duet::worker {
namespace {

int64_t LayerElements(const kernels::KvCacheLayout& layout) {
  return static_cast<int64_t>(layout.num_blocks) * layout.block_size * layout.num_kv_heads *
         layout.head_dim;
}

}  // namespace

KvCache::KvCache(int64_t num_layers, const kernels::KvCacheLayout& layout)
    : num_layers_(num_layers),
      layout_(layout),
      layer_elements_(LayerElements(layout)),
      storage_(std::make_unique<HugePageBuffer>(
          sizeof(float) * static_cast<size_t>(std::max<int64_t>(1, 2 * num_layers * layer_elements_)))) {}

int64_t KvCache::BlockBytes(int64_t num_layers, const kernels::KvCacheLayout& layout) {
  return 2 * num_layers * static_cast<int64_t>(layout.block_size) * layout.num_kv_heads *
         layout.head_dim * static_cast<int64_t>(sizeof(float));
}

}  // namespace duet::worker
