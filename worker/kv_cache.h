// The paged KV cache of one worker: for every layer, K and V pools of
// [num_blocks, block_size, num_kv_heads, head_dim] values of the layout's
// dtype, fp32 or bf16 (only this rank's KV heads). The router decides which block holds which tokens; the worker only
// owns the memory.
#ifndef DUET_WORKER_KV_CACHE_H_
#define DUET_WORKER_KV_CACHE_H_

#include <cstdint>
#include <memory>

#include "kernels/ops.h"
#include "worker/models/weight_buffer.h"

namespace duet::worker {

// Thread-compatible; owns its memory, which is left uninitialised (pages are
// committed as blocks are first written; attention reads only written slots).
// The memory is advised to use transparent huge pages: a token's K or V row
// of every KV head is typically one 4 KiB page, so attention would otherwise
// take a TLB miss, and restart the hardware prefetcher, on every token.
class KvCache {
 public:
  KvCache(int64_t num_layers, const kernels::KvCacheLayout& layout);

  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  // Bytes one block takes across all layers, K and V.
  static int64_t BlockBytes(int64_t num_layers, const kernels::KvCacheLayout& layout);

  const kernels::KvCacheLayout& layout() const { return layout_; }
  int64_t num_layers() const { return num_layers_; }

  // Layer `layer`'s K or V pool, of layout().dtype.
  void* keys(int64_t layer) { return base() + (2 * layer) * layer_bytes_; }
  void* values(int64_t layer) { return base() + (2 * layer + 1) * layer_bytes_; }

 private:
  int64_t num_layers_;
  kernels::KvCacheLayout layout_;
  int64_t layer_bytes_;  // one of K or V of one layer
  char* base() { return static_cast<char*>(storage_->data()); }
  std::unique_ptr<HugePageBuffer> storage_;  // [num_layers, 2, num_blocks, block_size, kv_heads, head_dim]
};

}  // namespace duet::worker

#endif  // DUET_WORKER_KV_CACHE_H_
