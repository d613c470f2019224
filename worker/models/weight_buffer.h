// Memory that decode streams once per token (weight shards that had to be
// copied out of the mapped files, the KV cache): 2 MiB aligned and advised
// to use transparent huge pages, which spares a TLB miss every 4 KiB of the
// stream.
#ifndef DUET_WORKER_MODELS_WEIGHT_BUFFER_H_
#define DUET_WORKER_MODELS_WEIGHT_BUFFER_H_

#include <sys/mman.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>

#include "glog/logging.h"

namespace duet::worker {

// Owns `bytes` (at least 2 MiB) of uninitialised memory; freed on destruction.
class HugePageBuffer {
 public:
  explicit HugePageBuffer(size_t bytes) {
    constexpr size_t kHugePageBytes = size_t{2} << 20;
    const size_t rounded = std::max(kHugePageBytes, (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes);
    data_ = std::aligned_alloc(kHugePageBytes, rounded);
    CHECK(data_ != nullptr) << "out of memory allocating " << rounded << " bytes";
    madvise(data_, rounded, MADV_HUGEPAGE);  // best effort: plain pages otherwise
  }
  ~HugePageBuffer() { std::free(data_); }
  HugePageBuffer(const HugePageBuffer&) = delete;
  HugePageBuffer& operator=(const HugePageBuffer&) = delete;

  void* data() const { return data_; }

 private:
  void* data_;
};

}  // namespace duet::worker

#endif  // DUET_WORKER_MODELS_WEIGHT_BUFFER_H_
