// The router's KV block bookkeeping: which physical block of the workers' KV
// pool holds which tokens of which sequence, and the prefix cache over them.
//
// - Blocks hold block_size tokens and are reference counted: a block shared
//   through the prefix cache is held by every sequence that uses it.
// - A sequence's blocks live in its BlockTable, which returns them to the
//   pool when it is released or destroyed, so no path leaks a block.
// - Prefix cache: a full block whose tokens have all been computed is keyed
//   by a hash chained over its parent block's key and its token ids (the
//   first block's parent is the cache salt). A lookup walks the chain and
//   confirms every hit against the stored tokens, so a hash collision is a
//   miss, never wrong KV. A block whose last holder lets go stays cached on
//   the free list; allocation takes free blocks least recently freed first,
//   evicting their cache entry.
//
// Pure bookkeeping: no I/O, no threads. Thread-compatible, single owner (the
// engine's step thread).
#ifndef DUET_ROUTER_ENGINE_BLOCK_MANAGER_H_
#define DUET_ROUTER_ENGINE_BLOCK_MANAGER_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"

namespace duet::engine {

class BlockManager;

// One sequence's blocks, in sequence order: block i holds tokens
// [i * block_size, (i + 1) * block_size).
class BlockTable {
 public:
  BlockTable() = default;
  ~BlockTable() { Release(); }
  BlockTable(const BlockTable&) = delete;
  BlockTable& operator=(const BlockTable&) = delete;

  const std::vector<int32_t>& block_ids() const { return block_ids_; }
  int32_t num_blocks() const { return static_cast<int32_t>(block_ids_.size()); }
  // Leading blocks already entered in the prefix cache (or taken from it).
  int32_t num_hashed_blocks() const { return static_cast<int32_t>(block_hashes_.size()); }

  // Returns every block to the pool; the table is empty afterwards.
  void Release();

 private:
  friend class BlockManager;
  BlockManager* manager_ = nullptr;
  std::vector<int32_t> block_ids_;
  // Chain keys of the leading full, computed blocks.
  std::vector<uint64_t> block_hashes_;
};

// The result of a prefix-cache lookup.
struct PrefixMatch {
  std::vector<int32_t> block_ids;
  std::vector<uint64_t> block_hashes;
  // How many of block_ids are on the free list (held by no sequence): taking
  // them uses up free blocks.
  int32_t num_free_blocks = 0;
  int32_t num_tokens(int32_t block_size) const {
    return static_cast<int32_t>(block_ids.size()) * block_size;
  }
};

class BlockManager {
 public:
  BlockManager(int32_t num_blocks, int32_t block_size, bool enable_prefix_caching);
  // Every BlockTable must be released before the manager goes.
  ~BlockManager();
  BlockManager(const BlockManager&) = delete;
  BlockManager& operator=(const BlockManager&) = delete;

  int32_t block_size() const { return block_size_; }
  int32_t num_blocks() const { return static_cast<int32_t>(blocks_.size()); }
  // Blocks held by no sequence (cached or not).
  int32_t num_free_blocks() const { return num_free_blocks_; }
  int32_t num_cached_blocks() const { return static_cast<int32_t>(cached_blocks_.size()); }
  bool prefix_caching_enabled() const { return enable_prefix_caching_; }

  // Blocks needed to hold `num_tokens` tokens.
  int32_t BlocksFor(int32_t num_tokens) const { return (num_tokens + block_size_ - 1) / block_size_; }

  // The longest chain of cached full blocks that starts `token_ids`, using at
  // most `max_tokens` tokens. Takes nothing.
  PrefixMatch Match(std::string_view cache_salt, absl::Span<const int32_t> token_ids,
                    int32_t max_tokens) const;

  // Whether `table` (holding nothing yet) can take `match` and grow to
  // `num_tokens` tokens.
  bool CanAllocate(const PrefixMatch& match, int32_t num_tokens) const;
  // Takes the matched blocks (their holders + 1) into the empty `table` and
  // grows it to `num_tokens` tokens. CanAllocate must hold.
  void Allocate(BlockTable* table, const PrefixMatch& match, int32_t num_tokens);

  // Whether `table` can grow to hold `num_tokens` tokens.
  bool CanGrow(const BlockTable& table, int32_t num_tokens) const;
  // Appends free blocks until `table` holds `num_tokens` tokens. CanGrow
  // must hold.
  void Grow(BlockTable* table, int32_t num_tokens);

  // Enters the table's full blocks among the first `num_computed_tokens` of
  // `token_ids` (the sequence's tokens) in the prefix cache.
  void CacheComputedBlocks(BlockTable* table, std::string_view cache_salt,
                           absl::Span<const int32_t> token_ids, int32_t num_computed_tokens);

  // The key of a full block: chained over the parent's key (for the first
  // block, the salt's) and the block's tokens.
  static uint64_t ChainHash(uint64_t parent_hash, absl::Span<const int32_t> block_token_ids);
  static uint64_t SaltHash(std::string_view cache_salt);

 private:
  friend class BlockTable;
  static constexpr int32_t kNone = -1;
  struct Block {
    int32_t ref_count = 0;
    bool cached = false;       // entered in cached_blocks_ under hash
    uint64_t hash = 0;
    uint64_t parent_hash = 0;        // what a hit is confirmed against,
    std::vector<int32_t> token_ids;  // with the tokens a cached block holds
    int32_t prev_free = kNone;  // free list links (ref_count == 0 only)
    int32_t next_free = kNone;
  };

  void Release(BlockTable* table);
  int32_t TakeFreeBlock();        // least recently freed; evicts its cache entry
  void UnlinkFree(int32_t block_id);
  void PushFree(int32_t block_id);  // most recently freed end

  const int32_t block_size_;
  const bool enable_prefix_caching_;
  std::vector<Block> blocks_;
  int32_t free_head_ = kNone;  // least recently freed
  int32_t free_tail_ = kNone;
  int32_t num_free_blocks_ = 0;
  absl::flat_hash_map<uint64_t, int32_t> cached_blocks_;  // chain key -> block id
};

}  // namespace duet::engine

#endif  // DUET_ROUTER_ENGINE_BLOCK_MANAGER_H_
