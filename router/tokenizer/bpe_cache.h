// A bounded, thread-safe cache from a pre-token's bytes to its BPE ids.
// Natural text repeats a small set of words, so most pre-tokens skip the merge
// loop. The cache only stores results, so it never changes what Tokenize
// returns. Sharded by hash so concurrent encoders rarely share a lock; a full
// shard is cleared (cheap, and the hot words come back at once).
#ifndef DUET_ROUTER_TOKENIZER_BPE_CACHE_H_
#define DUET_ROUTER_TOKENIZER_BPE_CACHE_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/synchronization/mutex.h"
#include "router/tokenizer/string_map.h"

namespace duet::tokenizer {

class BpeCache {
 public:
  using Ids = absl::InlinedVector<int32_t, 6>;

  // Words longer than this are not cached (they are rare and would crowd out
  // the common ones).
  static constexpr size_t kMaxWordBytes = 512;

  BpeCache() = default;
  BpeCache(const BpeCache&) = delete;
  BpeCache& operator=(const BpeCache&) = delete;

  // Appends the cached ids of `word` to `ids` and returns true on a hit.
  bool Lookup(std::string_view word, std::vector<int32_t>* ids) const;
  void Insert(std::string_view word, const int32_t* word_ids, size_t num_ids);

 private:
  static constexpr size_t kNumShards = 32;
  static constexpr size_t kMaxEntriesPerShard = 4096;

  struct Shard {
    mutable absl::Mutex mu;
    StringMap<Ids> entries ABSL_GUARDED_BY(mu);
  };

  static size_t ShardIndex(std::string_view word);

  std::array<Shard, kNumShards> shards_;
};

}  // namespace duet::tokenizer

#endif  // DUET_ROUTER_TOKENIZER_BPE_CACHE_H_
