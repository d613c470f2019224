#include "worker/comm/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>
#include <utility>

#include "absl/time/clock.h"
#include "common/str_cat.h"

namespace duet::worker {
namespace {

// How long to sleep between polls of an operation in flight. Collectives on
// the tensor-parallel path take tens of microseconds, so poll tightly first.
constexpr absl::Duration kPollInterval = absl::Microseconds(20);

absl::Status NcclError(ncclResult_t result, std::string_view what) {
  const std::string message = StrCat("nccl ", what, " failed: ", ncclGetErrorString(result));
  switch (result) {
    case ncclRemoteError:
    case ncclSystemError:
      return absl::UnavailableError(message);
    case ncclInvalidArgument:
    case ncclInvalidUsage:
      return absl::InvalidArgumentError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status CudaError(cudaError_t error, std::string_view what) {
  return absl::InternalError(StrCat("nccl ", what, ": CUDA error ", cudaGetErrorString(error)));
}

// Polls the communicator's asynchronous state until it leaves ncclInProgress
// or `deadline` passes (then DeadlineExceeded).
absl::Status WaitNotInProgress(ncclComm_t comm, absl::Time deadline, std::string_view what) {
  while (true) {
    ncclResult_t state = ncclSuccess;
    const ncclResult_t rc = ncclCommGetAsyncError(comm, &state);
    if (rc != ncclSuccess) return NcclError(rc, what);
    if (state == ncclSuccess) return absl::OkStatus();
    if (state != ncclInProgress) return NcclError(state, what);
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(StrCat("nccl ", what, " timed out"));
    }
    absl::SleepFor(kPollInterval);
  }
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(ncclComm_t comm, cudaStream_t stream, float* scratch, int rank,
                   int world_size, int device, absl::Duration op_timeout)
      : comm_(comm), stream_(stream), scratch_(scratch), rank_(rank),
        world_size_(world_size), device_(device), op_timeout_(op_timeout) {}

  ~NcclCommunicator() override {
    cudaSetDevice(device_);
    if (broken_.ok()) {
      // Finalize flushes outstanding work; abort if it does not finish.
      const ncclResult_t rc = ncclCommFinalize(comm_);
      if ((rc != ncclSuccess && rc != ncclInProgress) ||
          !WaitNotInProgress(comm_, absl::Now() + op_timeout_, "finalize").ok()) {
        ncclCommAbort(comm_);
      } else {
        ncclCommDestroy(comm_);
      }
    } else if (comm_ != nullptr) {
      ncclCommAbort(comm_);
    }
    cudaFree(scratch_);
    cudaStreamDestroy(stream_);
  }

  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  std::string_view name() const override { return "nccl"; }

  absl::Status AllReduceSum(float* data, int64_t count) override {
    return Run(StrCat("all_reduce (", count, " floats)"), count, [&] {
      return ncclAllReduce(data, data, static_cast<size_t>(count), ncclFloat, ncclSum, comm_,
                           stream_);
    });
  }

  absl::Status AllGather(const float* input, int64_t count, float* output) override {
    return Run(StrCat("all_gather (", count, " floats)"), count, [&] {
      return ncclAllGather(input, output, static_cast<size_t>(count), ncclFloat, comm_, stream_);
    });
  }

  absl::Status Broadcast(void* data, int64_t bytes, int root) override {
    if (root < 0 || root >= world_size_) {
      return absl::InvalidArgumentError(
          StrCat("nccl broadcast: root ", root, " outside world size ", world_size_));
    }
    return Run(StrCat("broadcast (", bytes, " bytes from rank ", root, ")"), bytes, [&] {
      return ncclBroadcast(data, data, static_cast<size_t>(bytes), ncclChar, root, comm_,
                           stream_);
    });
  }

  absl::Status Barrier() override {
    return Run("barrier", 1, [&] {
      return ncclAllReduce(scratch_, scratch_, 1, ncclFloat, ncclSum, comm_, stream_);
    });
  }

 private:
  // Enqueues one collective and waits for it; on any failure aborts the
  // communicator and remembers why. Size 0 is skipped on every rank alike.
  template <typename Enqueue>
  absl::Status Run(const std::string& what, int64_t size, Enqueue enqueue) {
    if (!broken_.ok()) {
      return absl::FailedPreconditionError(StrCat(
          "nccl ", what, ": communicator is broken by an earlier failure: ", broken_.message()));
    }
    if (size < 0) return absl::InvalidArgumentError(StrCat("nccl ", what, ": negative size"));
    if (size == 0) return absl::OkStatus();
    absl::Status status = RunAndWait(what, enqueue);
    if (!status.ok()) {
      broken_ = absl::Status(status.code(), StrCat(status.message(), " (rank ", rank_, ")"));
      ncclCommAbort(comm_);
      comm_ = nullptr;
      return broken_;
    }
    return absl::OkStatus();
  }

  template <typename Enqueue>
  absl::Status RunAndWait(const std::string& what, Enqueue enqueue) {
    const absl::Time deadline = absl::Now() + op_timeout_;
    if (cudaError_t e = cudaSetDevice(device_); e != cudaSuccess) return CudaError(e, what);
    const ncclResult_t rc = enqueue();
    if (rc == ncclInProgress) {
      // Non-blocking mode: the enqueue itself may still be in progress.
      if (absl::Status s = WaitNotInProgress(comm_, deadline, what); !s.ok()) return s;
    } else if (rc != ncclSuccess) {
      return NcclError(rc, what);
    }
    while (true) {
      const cudaError_t done = cudaStreamQuery(stream_);
      if (done == cudaSuccess) return absl::OkStatus();
      if (done != cudaErrorNotReady) return CudaError(done, what);
      ncclResult_t state = ncclSuccess;
      if (ncclResult_t e = ncclCommGetAsyncError(comm_, &state); e != ncclSuccess) {
        return NcclError(e, what);
      }
      if (state != ncclSuccess && state != ncclInProgress) return NcclError(state, what);
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(
            StrCat("nccl ", what, " did not finish within ", absl::FormatDuration(op_timeout_)));
      }
      absl::SleepFor(kPollInterval);
    }
  }

  ncclComm_t comm_;
  cudaStream_t stream_;
  float* scratch_;  // [1], device memory for Barrier
  const int rank_;
  const int world_size_;
  const int device_;
  const absl::Duration op_timeout_;
  absl::Status broken_;
};

}  // namespace

absl::StatusOr<std::string> CreateNcclBootstrap() {
  ncclUniqueId id;
  if (ncclResult_t rc = ncclGetUniqueId(&id); rc != ncclSuccess) {
    return NcclError(rc, "get unique id");
  }
  return std::string(id.internal, sizeof(id.internal));
}

absl::StatusOr<std::unique_ptr<Communicator>> ConnectNccl(std::string_view bootstrap, int rank,
                                                          int world_size, int device,
                                                          const CollectiveOptions& options) {
  const std::string where = StrCat("connect (rank ", rank, " of ", world_size, ", device ",
                                   device, ")");
  if (world_size < 1 || rank < 0 || rank >= world_size) {
    return absl::InvalidArgumentError(StrCat("nccl ", where, ": rank outside [0, world_size)"));
  }
  ncclUniqueId id;
  if (bootstrap.size() != sizeof(id.internal)) {
    return absl::InvalidArgumentError(StrCat("nccl ", where, ": bootstrap has ",
                                             bootstrap.size(), " bytes, expected ",
                                             sizeof(id.internal)));
  }
  std::memcpy(id.internal, bootstrap.data(), sizeof(id.internal));
  if (cudaError_t e = cudaSetDevice(device); e != cudaSuccess) return CudaError(e, where);

  cudaStream_t stream = nullptr;
  if (cudaError_t e = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
      e != cudaSuccess) {
    return CudaError(e, where);
  }
  float* scratch = nullptr;
  if (cudaError_t e = cudaMalloc(&scratch, sizeof(float)); e != cudaSuccess) {
    cudaStreamDestroy(stream);
    return CudaError(e, where);
  }
  const auto fail = [&](absl::Status status, ncclComm_t comm) {
    if (comm != nullptr) ncclCommAbort(comm);
    cudaFree(scratch);
    cudaStreamDestroy(stream);
    return status;
  };

  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t comm = nullptr;
  const ncclResult_t rc = ncclCommInitRankConfig(&comm, world_size, id, rank, &config);
  if (rc != ncclSuccess && rc != ncclInProgress) {
    return fail(NcclError(rc, where), comm);
  }
  if (absl::Status s = WaitNotInProgress(comm, absl::Now() + options.connect_timeout, where);
      !s.ok()) {
    return fail(s, comm);
  }
  return std::unique_ptr<Communicator>(new NcclCommunicator(
      comm, stream, scratch, rank, world_size, device, options.op_timeout));
}

}  // namespace duet::worker
