#include "kernels/cpu/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace duet::kernels::cpu {
namespace {

TEST(ThreadPoolTest, RunsEveryTaskExactlyOnce) {
  for (int num_threads : {1, 2, 3, 5}) {
    ThreadPool pool(num_threads);
    EXPECT_EQ(pool.num_threads(), num_threads);
    for (int64_t num_tasks : {0, 1, 2, 3, 7, 100, 1000}) {
      for (int repeat = 0; repeat < 20; ++repeat) {
        std::vector<std::atomic<int>> calls(num_tasks);
        pool.ParallelFor(num_tasks, [&](int64_t i) { calls[i].fetch_add(1); });
        for (int64_t i = 0; i < num_tasks; ++i) {
          ASSERT_EQ(calls[i].load(), 1) << "threads " << num_threads << " tasks " << num_tasks;
        }
      }
    }
  }
}

TEST(ThreadPoolTest, TasksRunConcurrently) {
  // Each task waits until both have started, which only happens if two
  // threads run them at the same time.
  ThreadPool pool(2);
  std::atomic<int> started{0};
  std::atomic<int> timed_out{0};
  pool.ParallelFor(2, [&](int64_t) {
    started.fetch_add(1);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (started.load() < 2) {
      if (std::chrono::steady_clock::now() > deadline) {
        timed_out.fetch_add(1);
        return;
      }
      std::this_thread::yield();
    }
  });
  EXPECT_EQ(timed_out.load(), 0);
}

TEST(ChunkRangeTest, CoversTheRangeWithAlignedContiguousChunks) {
  for (int64_t count : {0, 1, 5, 12, 13, 4096, 6143}) {
    for (int64_t num_chunks : {1, 2, 3, 8}) {
      for (int64_t alignment : {1, 4, 12}) {
        int64_t expected_begin = 0;
        for (int64_t i = 0; i < num_chunks; ++i) {
          const Range range = ChunkRange(count, num_chunks, i, alignment);
          EXPECT_EQ(range.begin, expected_begin);
          EXPECT_LE(range.begin, range.end);
          if (range.end != count) {
            EXPECT_EQ(range.end % alignment, 0);
          }
          expected_begin = range.end;
        }
        EXPECT_EQ(expected_begin, count) << count << " " << num_chunks << " " << alignment;
      }
    }
  }
}

}  // namespace
}  // namespace duet::kernels::cpu
