#include "router/engine/block_manager.h"

#include <algorithm>

#include "glog/logging.h"

namespace duet::engine {
namespace {

// 64-bit mixing (splitmix64's finalizer).
uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace

void BlockTable::Release() {
  if (manager_ != nullptr) manager_->Release(this);
  manager_ = nullptr;
  block_ids_.clear();
  block_hashes_.clear();
}

uint64_t BlockManager::ChainHash(uint64_t parent_hash, absl::Span<const int32_t> block_token_ids) {
  uint64_t hash = Mix(parent_hash ^ 0x9e3779b97f4a7c15ULL);
  for (int32_t id : block_token_ids) hash = Mix(hash ^ static_cast<uint32_t>(id));
  return hash;
}

uint64_t BlockManager::SaltHash(std::string_view cache_salt) {
  uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a over the salt's bytes
  for (unsigned char c : cache_salt) hash = (hash ^ c) * 0x100000001b3ULL;
  return Mix(hash);
}

BlockManager::BlockManager(int32_t num_blocks, int32_t block_size, bool enable_prefix_caching)
    : block_size_(block_size), enable_prefix_caching_(enable_prefix_caching), blocks_(num_blocks) {
  CHECK_GT(block_size, 0);
  CHECK_GE(num_blocks, 0);
  for (int32_t id = 0; id < num_blocks; ++id) PushFree(id);
}

BlockManager::~BlockManager() {
  CHECK_EQ(num_free_blocks_, num_blocks()) << "a BlockTable outlives its BlockManager";
}

PrefixMatch BlockManager::Match(std::string_view cache_salt, absl::Span<const int32_t> token_ids,
                                int32_t max_tokens) const {
  PrefixMatch match;
  if (!enable_prefix_caching_) return match;
  const int32_t limit = std::min<int32_t>(max_tokens, static_cast<int32_t>(token_ids.size()));
  uint64_t parent = SaltHash(cache_salt);
  for (int32_t start = 0; start + block_size_ <= limit; start += block_size_) {
    absl::Span<const int32_t> tokens = token_ids.subspan(start, block_size_);
    const uint64_t hash = ChainHash(parent, tokens);
    auto it = cached_blocks_.find(hash);
    if (it == cached_blocks_.end()) break;
    const Block& block = blocks_[it->second];
    if (block.parent_hash != parent || !std::equal(tokens.begin(), tokens.end(), block.token_ids.begin(),
                                                   block.token_ids.end())) {
      break;  // a hash collision: a miss
    }
    match.block_ids.push_back(it->second);
    match.block_hashes.push_back(hash);
    if (block.ref_count == 0) ++match.num_free_blocks;
    parent = hash;
  }
  return match;
}

bool BlockManager::CanAllocate(const PrefixMatch& match, int32_t num_tokens) const {
  const int32_t num_new_blocks =
      std::max<int32_t>(0, BlocksFor(num_tokens) - static_cast<int32_t>(match.block_ids.size()));
  return match.num_free_blocks + num_new_blocks <= num_free_blocks_;
}

void BlockManager::Allocate(BlockTable* table, const PrefixMatch& match, int32_t num_tokens) {
  CHECK(table->block_ids_.empty()) << "Allocate needs an empty table";
  CHECK(CanAllocate(match, num_tokens));
  table->manager_ = this;
  for (size_t i = 0; i < match.block_ids.size(); ++i) {
    Block& block = blocks_[match.block_ids[i]];
    if (block.ref_count++ == 0) UnlinkFree(match.block_ids[i]);
    table->block_ids_.push_back(match.block_ids[i]);
    table->block_hashes_.push_back(match.block_hashes[i]);
  }
  Grow(table, num_tokens);
}

bool BlockManager::CanGrow(const BlockTable& table, int32_t num_tokens) const {
  return BlocksFor(num_tokens) - table.num_blocks() <= num_free_blocks_;
}

void BlockManager::Grow(BlockTable* table, int32_t num_tokens) {
  CHECK(CanGrow(*table, num_tokens));
  table->manager_ = this;
  while (table->num_blocks() < BlocksFor(num_tokens)) {
    const int32_t id = TakeFreeBlock();
    blocks_[id].ref_count = 1;
    table->block_ids_.push_back(id);
  }
}

void BlockManager::CacheComputedBlocks(BlockTable* table, std::string_view cache_salt,
                                       absl::Span<const int32_t> token_ids,
                                       int32_t num_computed_tokens) {
  if (!enable_prefix_caching_) return;
  const int32_t num_full = std::min<int32_t>(num_computed_tokens / block_size_, table->num_blocks());
  uint64_t parent = table->block_hashes_.empty() ? SaltHash(cache_salt) : table->block_hashes_.back();
  for (int32_t i = table->num_hashed_blocks(); i < num_full; ++i) {
    absl::Span<const int32_t> tokens = token_ids.subspan(static_cast<size_t>(i) * block_size_, block_size_);
    const uint64_t hash = ChainHash(parent, tokens);
    Block& block = blocks_[table->block_ids_[i]];
    // Another block may already hold the same tokens (two sequences computed
    // them at once); the first one stays the cached copy.
    if (!block.cached && !cached_blocks_.contains(hash)) {
      block.cached = true;
      block.hash = hash;
      block.parent_hash = parent;
      block.token_ids.assign(tokens.begin(), tokens.end());
      cached_blocks_.emplace(hash, table->block_ids_[i]);
    }
    table->block_hashes_.push_back(hash);
    parent = hash;
  }
}

void BlockManager::Release(BlockTable* table) {
  // Last blocks first: a sequence's tail is the least likely to be shared,
  // so it is evicted before the prefix it extends.
  for (auto it = table->block_ids_.rbegin(); it != table->block_ids_.rend(); ++it) {
    Block& block = blocks_[*it];
    CHECK_GT(block.ref_count, 0);
    if (--block.ref_count == 0) PushFree(*it);
  }
}

int32_t BlockManager::TakeFreeBlock() {
  const int32_t id = free_head_;
  CHECK_NE(id, kNone) << "no free KV block";
  UnlinkFree(id);
  Block& block = blocks_[id];
  if (block.cached) {
    cached_blocks_.erase(block.hash);
    block.cached = false;
    block.token_ids.clear();
  }
  return id;
}

void BlockManager::UnlinkFree(int32_t id) {
  Block& block = blocks_[id];
  if (block.prev_free != kNone) blocks_[block.prev_free].next_free = block.next_free;
  else free_head_ = block.next_free;
  if (block.next_free != kNone) blocks_[block.next_free].prev_free = block.prev_free;
  else free_tail_ = block.prev_free;
  block.prev_free = block.next_free = kNone;
  --num_free_blocks_;
}

void BlockManager::PushFree(int32_t id) {
  Block& block = blocks_[id];
  block.prev_free = free_tail_;
  block.next_free = kNone;
  if (free_tail_ != kNone) blocks_[free_tail_].next_free = id;
  else free_head_ = id;
  free_tail_ = id;
  ++num_free_blocks_;
}

}  // namespace duet::engine
