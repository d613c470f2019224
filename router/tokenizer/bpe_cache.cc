#include "router/tokenizer/bpe_cache.h"


namespace duet::tokenizer {

size_t BpeCache::ShardIndex(std::string_view word) {
  // The high bits: flat_hash_map uses the low ones inside the shard.
  return (StringViewHash{}(word) >> 40) % kNumShards;
}

bool BpeCache::Lookup(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.size() > kMaxWordBytes) return false;
  const Shard& shard = shards_[ShardIndex(word)];
  absl::ReaderMutexLock lock(&shard.mu);
  const auto it = shard.entries.find(word);
  if (it == shard.entries.end()) return false;
  ids->insert(ids->end(), it->second.begin(), it->second.end());
  return true;
}

void BpeCache::Insert(std::string_view word, const int32_t* word_ids, size_t num_ids) {
  if (word.size() > kMaxWordBytes) return;
  Shard& shard = shards_[ShardIndex(word)];
  absl::MutexLock lock(&shard.mu);
  if (shard.entries.size() >= kMaxEntriesPerShard) shard.entries.clear();
  shard.entries.try_emplace(word, word_ids, word_ids + num_ids);
}

}  // namespace duet::tokenizer
