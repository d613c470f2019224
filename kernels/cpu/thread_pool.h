// A fixed set of worker threads, created once per backend, that run the
// independent pieces of one op in parallel. The calling thread takes part, so
// a pool of N threads starts N - 1 workers.
//
// Thread-safety: ParallelFor may be called by one thread at a time (the
// Backend contract already says so). Tasks must not call ParallelFor.
#ifndef DUET_KERNELS_CPU_THREAD_POOL_H_
#define DUET_KERNELS_CPU_THREAD_POOL_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"

namespace duet::kernels::cpu {

class ThreadPool {
 public:
  // num_threads >= 1, counting the caller.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();  // joins the workers

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls task(i) once for every i in [0, num_tasks), on any of the pool's
  // threads in any order, and returns when all calls have returned. Results
  // must therefore not depend on which thread runs which task.
  void ParallelFor(int64_t num_tasks, absl::FunctionRef<void(int64_t)> task);

 private:
  void WorkerLoop();
  void RunTasks();

  std::vector<std::thread> workers_;

  std::mutex mu_;
  std::condition_variable work_ready_;  // generation_ changed or stop_
  std::condition_variable work_done_;   // busy_workers_ reached 0
  bool stop_ = false;                   // guarded by mu_
  // Workers still running the current job; decremented without mu_, but the
  // last one notifies work_done_ under mu_.
  std::atomic<int> busy_workers_{0};
  std::atomic<uint64_t> generation_{0};  // bumped (under mu_) per ParallelFor

  // The current job; written under mu_ before generation_ is bumped.
  const absl::FunctionRef<void(int64_t)>* task_ = nullptr;
  int64_t num_tasks_ = 0;
  std::atomic<int64_t> next_task_{0};
};

// The [begin, end) range of chunk `index` when [0, count) is cut into
// `num_chunks` contiguous pieces whose boundaries are multiples of
// `alignment` (except the end).
struct Range {
  int64_t begin;
  int64_t end;
};
Range ChunkRange(int64_t count, int64_t num_chunks, int64_t index, int64_t alignment);

}  // namespace duet::kernels::cpu

#endif  // DUET_KERNELS_CPU_THREAD_POOL_H_
