#include "worker/comm/gloo_communicator.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <utility>

#include "absl/time/clock.h"
#include "common/str_cat.h"
#include "gloo/allgather.h"
#include "gloo/allreduce.h"
#include "gloo/barrier.h"
#include "gloo/broadcast.h"
#include "gloo/common/error.h"
#include "gloo/rendezvous/context.h"
#include "gloo/transport/tcp/device.h"
#include "worker/comm/rendezvous_protocol.h"
#include "worker/comm/rendezvous_store.h"

namespace duet::worker {
namespace {

// Gloo reports timeouts only through the text of its exceptions (all of them
// ::gloo::IoException or ::gloo::Exception); everything else on the wire
// means a peer closed or reset its connection.
absl::StatusCode CodeForGlooError(std::string_view message) {
  for (std::string_view needle : {"Timed out", "timeout", "Timeout"}) {
    if (message.find(needle) != std::string_view::npos) {
      return absl::StatusCode::kDeadlineExceeded;
    }
  }
  return absl::StatusCode::kUnavailable;
}

std::chrono::milliseconds ToChrono(absl::Duration duration) {
  return std::chrono::milliseconds(std::max<int64_t>(1, absl::ToInt64Milliseconds(duration)));
}

void SumFloats(void* out, const void* a, const void* b, size_t count) {
  float* c = static_cast<float*>(out);
  const float* x = static_cast<const float*>(a);
  const float* y = static_cast<const float*>(b);
  for (size_t i = 0; i < count; ++i) c[i] = x[i] + y[i];
}

class GlooCommunicator final : public Communicator {
 public:
  GlooCommunicator(std::shared_ptr<::gloo::Context> context,
                   std::shared_ptr<::gloo::transport::Device> device)
      : context_(std::move(context)), device_(std::move(device)),
        rank_(context_->rank), world_size_(context_->size) {}

  ~GlooCommunicator() override {
    // The context (pairs, sockets) must go before the device whose loop
    // thread serves them.
    context_.reset();
    device_.reset();
  }

  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  std::string_view name() const override { return "gloo"; }

  absl::Status AllReduceSum(float* data, int64_t count) override {
    return Run(StrCat("all_reduce (", count, " floats)"), count, [&] {
      ::gloo::AllreduceOptions opts(context_);
      opts.setOutput(data, static_cast<size_t>(count));
      opts.setReduceFunction(&SumFloats);
      opts.setAlgorithm(::gloo::AllreduceOptions::Algorithm::RING);
      opts.setTag(next_tag_++);
      ::gloo::allreduce(opts);
    });
  }

  absl::Status AllGather(const float* input, int64_t count, float* output) override {
    return Run(StrCat("all_gather (", count, " floats)"), count, [&] {
      ::gloo::AllgatherOptions opts(context_);
      // Gloo's API takes non-const pointers; it only reads the input.
      opts.setInput(const_cast<float*>(input), static_cast<size_t>(count));
      opts.setOutput(output, static_cast<size_t>(count) * world_size_);
      opts.setTag(next_tag_++);
      ::gloo::allgather(opts);
    });
  }

  absl::Status Broadcast(void* data, int64_t bytes, int root) override {
    if (root < 0 || root >= world_size_) {
      return absl::InvalidArgumentError(
          StrCat("gloo broadcast: root ", root, " outside world size ", world_size_));
    }
    return Run(StrCat("broadcast (", bytes, " bytes from rank ", root, ")"), bytes, [&] {
      ::gloo::BroadcastOptions opts(context_);
      opts.setOutput(static_cast<uint8_t*>(data), static_cast<size_t>(bytes));
      opts.setRoot(root);
      opts.setTag(next_tag_++);
      ::gloo::broadcast(opts);
    });
  }

  absl::Status Barrier() override {
    return Run("barrier", /*size=*/1, [&] {
      ::gloo::BarrierOptions opts(context_);
      opts.setTag(next_tag_++);
      ::gloo::barrier(opts);
    });
  }

 private:
  // Runs one Gloo collective, turning its exceptions into a Status and
  // breaking the communicator on any failure. Size 0 is a no-op on every
  // rank, so skipping it keeps the ranks in step.
  absl::Status Run(const std::string& what, int64_t size, const std::function<void()>& op) {
    if (!broken_.ok()) {
      return absl::FailedPreconditionError(
          StrCat("gloo ", what, ": communicator is broken by an earlier failure: ",
                 broken_.message()));
    }
    if (size < 0) {
      return absl::InvalidArgumentError(StrCat("gloo ", what, ": negative size"));
    }
    if (size == 0) return absl::OkStatus();
    std::string error;
    try {
      op();
      return absl::OkStatus();
    } catch (const std::exception& e) {
      error = e.what();
    } catch (...) {
      error = "unknown exception";
    }
    broken_ = absl::Status(CodeForGlooError(error),
                           StrCat("gloo ", what, " failed on rank ", rank_, ": ", error));
    // Closing our connections now tells the peers at once instead of
    // leaving them to their own timeouts.
    try {
      context_->closeConnections();
    } catch (...) {
    }
    return broken_;
  }

  std::shared_ptr<::gloo::Context> context_;
  std::shared_ptr<::gloo::transport::Device> device_;
  const int rank_;
  const int world_size_;
  uint32_t next_tag_ = 0;
  absl::Status broken_;
};

absl::StatusOr<std::unique_ptr<Communicator>> Connect(const rendezvous::Bootstrap& bootstrap,
                                                      int rank, int world_size,
                                                      const std::string& host,
                                                      const CollectiveOptions& options) {
  const absl::Time deadline = absl::Now() + options.connect_timeout;
  auto store = RendezvousStore::Connect(bootstrap, rank, world_size, deadline);
  if (!store.ok()) return store.status();
  std::string error;
  try {
    ::gloo::transport::tcp::attr attr;
    attr.hostname = host;
    std::shared_ptr<::gloo::transport::Device> device =
        ::gloo::transport::tcp::CreateDevice(attr);
    auto context = std::make_shared<::gloo::rendezvous::Context>(rank, world_size);
    // The store waits bound the rendezvous; Gloo passes this timeout to them
    // and to each pair's connect.
    context->setTimeout(ToChrono(options.connect_timeout));
    context->connectFullMesh(**store, device);
    context->setTimeout(ToChrono(options.op_timeout));
    return std::unique_ptr<Communicator>(
        new GlooCommunicator(std::move(context), std::move(device)));
  } catch (const std::exception& e) {
    error = e.what();
  } catch (...) {
    error = "unknown exception";
  }
  if (!(*store)->error().ok()) return (*store)->error();
  return absl::Status(CodeForGlooError(error), error);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Communicator>> ConnectGloo(std::string_view bootstrap, int rank,
                                                          int world_size,
                                                          const std::string& host,
                                                          const CollectiveOptions& options) {
  const std::string where =
      StrCat("gloo connect (bootstrap ", bootstrap, ", rank ", rank, " of ", world_size, ")");
  if (world_size < 1 || rank < 0 || rank >= world_size) {
    return absl::InvalidArgumentError(StrCat(where, ": rank outside [0, world_size)"));
  }
  auto parsed = rendezvous::ParseBootstrap(bootstrap);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(StrCat(where, ": ", parsed.status().message()));
  }
  static std::once_flag ignore_sigpipe;
  std::call_once(ignore_sigpipe, [] { std::signal(SIGPIPE, SIG_IGN); });
  auto communicator = Connect(*parsed, rank, world_size, host, options);
  if (!communicator.ok()) {
    return absl::Status(communicator.status().code(),
                        StrCat(where, ": ", communicator.status().message()));
  }
  return communicator;
}

}  // namespace duet::worker
