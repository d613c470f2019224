#include "router/engine/block_manager.h"

#include <numeric>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace duet::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<int32_t> Tokens(int32_t count, int32_t first = 100) {
  std::vector<int32_t> tokens(count);
  std::iota(tokens.begin(), tokens.end(), first);
  return tokens;
}

TEST(BlockManagerTest, TablesTakeAndReturnBlocks) {
  BlockManager blocks(/*num_blocks=*/4, /*block_size=*/4, /*enable_prefix_caching=*/true);
  {
    BlockTable table;
    EXPECT_TRUE(blocks.CanGrow(table, 16));
    EXPECT_FALSE(blocks.CanGrow(table, 17));
    blocks.Grow(&table, 5);
    EXPECT_THAT(table.block_ids(), ElementsAre(0, 1));
    EXPECT_EQ(blocks.num_free_blocks(), 2);
    blocks.Grow(&table, 8);  // still two blocks
    EXPECT_EQ(table.num_blocks(), 2);
  }
  EXPECT_EQ(blocks.num_free_blocks(), 4) << "the destructor returns the blocks";
}

TEST(BlockManagerTest, ComputedFullBlocksAreFoundAgainAndShared) {
  BlockManager blocks(8, 4, true);
  const std::vector<int32_t> tokens = Tokens(10);
  BlockTable first;
  blocks.Allocate(&first, blocks.Match("", tokens, 9), 10);
  EXPECT_THAT(first.block_ids(), ElementsAre(0, 1, 2));
  blocks.CacheComputedBlocks(&first, "", tokens, 10);  // blocks 0 and 1 are full
  EXPECT_EQ(blocks.num_cached_blocks(), 2);

  // The same 8 leading tokens, then something else.
  std::vector<int32_t> other = Tokens(8);
  other.push_back(7);
  const PrefixMatch match = blocks.Match("", other, 8);
  EXPECT_THAT(match.block_ids, ElementsAre(0, 1));
  EXPECT_EQ(match.num_free_blocks, 0) << "the blocks are held by the first table";
  BlockTable second;
  blocks.Allocate(&second, match, 9);
  EXPECT_THAT(second.block_ids(), ElementsAre(0, 1, 3));
  EXPECT_EQ(blocks.num_free_blocks(), 4);

  // max_tokens bounds the match; a different salt or token misses.
  EXPECT_EQ(blocks.Match("", other, 7).block_ids.size(), 1u);
  EXPECT_THAT(blocks.Match("tenant", other, 8).block_ids, IsEmpty());
  std::vector<int32_t> changed = Tokens(8);
  changed[5] = 1;
  EXPECT_EQ(blocks.Match("", changed, 8).block_ids.size(), 1u);

  first.Release();
  second.Release();
  EXPECT_EQ(blocks.num_free_blocks(), 8);
  EXPECT_EQ(blocks.num_cached_blocks(), 2) << "freed blocks stay cached";
  const PrefixMatch after = blocks.Match("", tokens, 9);
  EXPECT_THAT(after.block_ids, ElementsAre(0, 1));
  EXPECT_EQ(after.num_free_blocks, 2);
}

TEST(BlockManagerTest, AllocationEvictsTheLeastRecentlyFreedCachedBlock) {
  BlockManager blocks(3, 2, true);
  const std::vector<int32_t> a = Tokens(2, 10), b = Tokens(2, 20);
  BlockTable table_a, table_b;
  blocks.Allocate(&table_a, blocks.Match("", a, 2), 2);
  blocks.CacheComputedBlocks(&table_a, "", a, 2);
  blocks.Allocate(&table_b, blocks.Match("", b, 2), 2);
  blocks.CacheComputedBlocks(&table_b, "", b, 2);
  table_a.Release();  // freed first
  table_b.Release();
  // The never-used block 2 goes first, then a's block; b's survives.
  BlockTable taker;
  blocks.Grow(&taker, 4);
  EXPECT_THAT(taker.block_ids(), ElementsAre(2, 0));
  EXPECT_THAT(blocks.Match("", a, 2).block_ids, IsEmpty());
  EXPECT_THAT(blocks.Match("", b, 2).block_ids, ElementsAre(1));
}

TEST(BlockManagerTest, CanAllocateCountsFreeCachedBlocksItWouldTake) {
  BlockManager blocks(2, 2, true);
  const std::vector<int32_t> tokens = Tokens(4);
  {
    BlockTable table;
    blocks.Allocate(&table, blocks.Match("", tokens, 4), 4);
    blocks.CacheComputedBlocks(&table, "", tokens, 4);
  }
  const PrefixMatch match = blocks.Match("", tokens, 3);
  EXPECT_EQ(match.block_ids.size(), 1u);
  EXPECT_TRUE(blocks.CanAllocate(match, 4));
  EXPECT_FALSE(blocks.CanAllocate(match, 5));
}

TEST(BlockManagerTest, DisabledCacheNeverMatches) {
  BlockManager blocks(4, 2, false);
  const std::vector<int32_t> tokens = Tokens(4);
  BlockTable table;
  blocks.Allocate(&table, blocks.Match("", tokens, 4), 4);
  blocks.CacheComputedBlocks(&table, "", tokens, 4);
  EXPECT_THAT(blocks.Match("", tokens, 4).block_ids, IsEmpty());
  EXPECT_EQ(blocks.num_cached_blocks(), 0);
}

TEST(BlockManagerTest, TheSameContentComputedTwiceIsCachedOnce) {
  BlockManager blocks(4, 2, true);
  const std::vector<int32_t> tokens = Tokens(2);
  BlockTable one, two;
  blocks.Allocate(&one, blocks.Match("", tokens, 1), 2);
  blocks.Allocate(&two, blocks.Match("", tokens, 1), 2);
  blocks.CacheComputedBlocks(&one, "", tokens, 2);
  blocks.CacheComputedBlocks(&two, "", tokens, 2);
  EXPECT_EQ(blocks.num_cached_blocks(), 1);
  EXPECT_THAT(blocks.Match("", tokens, 2).block_ids, ElementsAre(one.block_ids()[0]));
  one.Release();
  two.Release();
  EXPECT_EQ(blocks.num_free_blocks(), 4);
}

}  // namespace
}  // namespace duet::engine
