#include "kernels/cpu/thread_pool.h"

#include <glog/logging.h>

#include <algorithm>

namespace duet::kernels::cpu {
namespace {

// Workers poll this many times for the next job, and the caller for the
// workers to finish, before sleeping: ops come in quick succession during a
// forward pass, and a futex wake-up per op would cost more than most small
// ops take.
constexpr int kSpinsBeforeSleep = 4000;

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  CHECK_GE(num_threads, 1);
  workers_.reserve(num_threads - 1);
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_ready_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::ParallelFor(int64_t num_tasks, absl::FunctionRef<void(int64_t)> task) {
  if (num_tasks <= 0) return;
  if (workers_.empty() || num_tasks == 1) {
    for (int64_t i = 0; i < num_tasks; ++i) task(i);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    task_ = &task;
    num_tasks_ = num_tasks;
    next_task_.store(0, std::memory_order_relaxed);
    busy_workers_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  work_ready_.notify_all();
  RunTasks();
  for (int spin = 0; spin < kSpinsBeforeSleep; ++spin) {
    if (busy_workers_.load(std::memory_order_acquire) == 0) break;
    CpuRelax();
  }
  std::unique_lock<std::mutex> lock(mu_);
  work_done_.wait(lock, [this] { return busy_workers_.load(std::memory_order_acquire) == 0; });
  task_ = nullptr;
}

void ThreadPool::RunTasks() {
  for (int64_t i = next_task_.fetch_add(1); i < num_tasks_; i = next_task_.fetch_add(1)) {
    (*task_)(i);
  }
}

void ThreadPool::WorkerLoop() {
  uint64_t seen_generation = 0;
  while (true) {
    for (int spin = 0; spin < kSpinsBeforeSleep; ++spin) {
      if (generation_.load(std::memory_order_acquire) != seen_generation) break;
      CpuRelax();
    }
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_ready_.wait(lock, [&] {
        return stop_ || generation_.load(std::memory_order_relaxed) != seen_generation;
      });
      if (stop_) return;
      seen_generation = generation_.load(std::memory_order_relaxed);
    }
    RunTasks();
    if (busy_workers_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mu_);
      work_done_.notify_one();
    }
  }
}

Range ChunkRange(int64_t count, int64_t num_chunks, int64_t index, int64_t alignment) {
  const int64_t units = (count + alignment - 1) / alignment;
  const int64_t begin = std::min(count, units * index / num_chunks * alignment);
  const int64_t end = std::min(count, units * (index + 1) / num_chunks * alignment);
  return {begin, end};
}

}  // namespace duet::kernels::cpu
