#include "router/workers/worker_group.h"

#include <algorithm>
#include <deque>
#include <optional>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "common/str_cat.h"
#include "glog/logging.h"
#include "grpcpp/grpcpp.h"

namespace duet::router {

using worker::v1::StepRequest;
using worker::v1::StepResult;

namespace {

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

std::chrono::system_clock::time_point Deadline(absl::Duration timeout) {
  return absl::ToChronoTime(absl::Now() + timeout);
}

}  // namespace

// What the reader threads of all ranks report to the thread running Step.
struct WorkerGroup::Mailbox {
  explicit Mailbox(int world_size)
      : results(world_size), ended(world_size), end_order(world_size, 0) {}

  absl::Mutex mu;
  std::vector<std::deque<StepResult>> results ABSL_GUARDED_BY(mu);  // per rank, in order
  std::vector<std::optional<absl::Status>> ended ABSL_GUARDED_BY(mu);  // set when a stream ends
  std::vector<int> end_order ABSL_GUARDED_BY(mu);  // when each stream ended: 0 first
  int num_ended ABSL_GUARDED_BY(mu) = 0;
};

// One rank's Step stream. The reader thread owns Read/Finish; the group's
// thread owns Write; TryCancel may come from either.
class WorkerGroup::RankStream {
 public:
  RankStream(worker::v1::Worker::Stub& stub, int rank, std::shared_ptr<Mailbox> mailbox)
      : rank_(rank), mailbox_(std::move(mailbox)) {
    stream_ = stub.Step(&context_);
    reader_ = std::thread([this] { ReadLoop(); });
  }

  ~RankStream() {
    context_.TryCancel();
    reader_.join();
  }

  bool Write(const StepRequest& request) { return stream_->Write(request); }

 private:
  void ReadLoop() {
    StepResult result;
    while (stream_->Read(&result)) {
      absl::MutexLock lock(&mailbox_->mu);
      mailbox_->results[rank_].push_back(result);
    }
    const grpc::Status status = stream_->Finish();
    absl::MutexLock lock(&mailbox_->mu);
    mailbox_->ended[rank_] =
        status.ok() ? absl::UnavailableError("the worker closed its Step stream") : FromGrpc(status);
    mailbox_->end_order[rank_] = mailbox_->num_ended++;
  }

  const int rank_;
  std::shared_ptr<Mailbox> mailbox_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<StepRequest, StepResult>> stream_;
  std::thread reader_;
};

WorkerGroup::WorkerGroup(const WorkerGroupOptions& options) : options_(options) {}

WorkerGroup::~WorkerGroup() { CloseStreams(); }

absl::StatusOr<std::unique_ptr<WorkerGroup>> WorkerGroup::Start(const WorkerGroupOptions& options) {
  if (options.addresses.empty()) return absl::InvalidArgumentError("no worker addresses");
  std::unique_ptr<WorkerGroup> group(new WorkerGroup(options));
  grpc::ChannelArguments arguments;
  // A restarted worker is found again within a second, not after minutes of
  // exponential backoff.
  arguments.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  arguments.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  arguments.SetMaxReceiveMessageSize(256 << 20);
  for (const std::string& address : options.addresses) {
    group->channels_.push_back(
        grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), arguments));
    group->stubs_.push_back(worker::v1::Worker::NewStub(group->channels_.back()));
  }
  if (absl::Status formed = group->Form(); !formed.ok()) return formed;
  return group;
}

absl::Status WorkerGroup::Form() {
  CloseStreams();
  broken_ = true;
  const int world_size = this->world_size();
  std::string bootstrap;
  if (world_size > 1) {
    grpc::ClientContext context;
    context.set_deadline(Deadline(options_.rpc_timeout));
    context.set_wait_for_ready(true);
    worker::v1::CreateBootstrapRequest request;
    request.set_world_size(static_cast<uint32_t>(world_size));
    worker::v1::CreateBootstrapResponse response;
    const grpc::Status status = stubs_[0]->CreateBootstrap(&context, request, &response);
    if (!status.ok()) {
      return absl::UnavailableError(StrCat("worker rank 0 (", options_.addresses[0],
                                           "): CreateBootstrap failed: ", status.error_message()));
    }
    bootstrap = response.collective_bootstrap();
  }

  // Init on every rank at once: the ranks meet inside Init.
  std::vector<grpc::Status> statuses(world_size);
  std::vector<worker::v1::InitResponse> responses(world_size);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < world_size; ++rank) {
    threads.emplace_back([&, rank] {
      worker::v1::InitRequest request = options_.init;
      request.set_rank(static_cast<uint32_t>(rank));
      request.set_world_size(static_cast<uint32_t>(world_size));
      request.set_collective_bootstrap(bootstrap);
      grpc::ClientContext context;
      context.set_deadline(Deadline(options_.init_timeout));
      context.set_wait_for_ready(true);
      statuses[rank] = stubs_[rank]->Init(&context, request, &responses[rank]);
    });
  }
  for (std::thread& thread : threads) thread.join();
  // A rank's own error says more than another rank's "other rank(s) failed".
  std::optional<int> failed;
  for (int rank = 0; rank < world_size; ++rank) {
    if (statuses[rank].ok()) continue;
    const bool secondhand = statuses[rank].error_message().find("other rank") != std::string::npos;
    if (!failed.has_value() || !secondhand) failed = rank;
    if (!secondhand) break;
  }
  if (failed.has_value()) {
    const grpc::Status& status = statuses[*failed];
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        StrCat("worker rank ", *failed, " (", options_.addresses[*failed],
                               "): Init failed: ", status.error_message()));
  }
  info_ = responses[0];
  for (const worker::v1::InitResponse& response : responses) {
    info_.set_num_kv_blocks(std::min(info_.num_kv_blocks(), response.num_kv_blocks()));
  }

  mailbox_ = std::make_shared<Mailbox>(world_size);
  for (int rank = 0; rank < world_size; ++rank) {
    streams_.push_back(std::make_unique<RankStream>(*stubs_[rank], rank, mailbox_));
  }
  broken_ = false;
  broken_reason_.clear();
  return absl::OkStatus();
}

void WorkerGroup::CloseStreams() {
  streams_.clear();  // cancels each stream and joins its reader
  mailbox_.reset();
}

absl::Status WorkerGroup::Broken(const absl::Status& why) {
  LOG(ERROR) << "worker group failed: " << why;
  broken_ = true;
  broken_reason_ = std::string(why.message());
  CloseStreams();
  return why;
}

absl::StatusOr<StepResult> WorkerGroup::Step(const StepRequest& request) {
  return RunStep(request, nullptr);
}

absl::StatusOr<StepResult> WorkerGroup::StepWithLateMasks(const StepRequest& request,
                                                          const LateMaskFn& late_masks) {
  return RunStep(request, &late_masks);
}

absl::StatusOr<StepResult> WorkerGroup::RunStep(const StepRequest& request, const LateMaskFn* late_masks) {
  if (broken_) {
    return absl::UnavailableError(StrCat("workers are not ready", broken_reason_.empty() ? "" : ": ",
                                         broken_reason_));
  }
  const int world_size = this->world_size();
  auto send = [&](const StepRequest& message) {
    for (int rank = 0; rank < world_size; ++rank) {
      if (!streams_[rank]->Write(message)) {
        // The stream is gone; its reader reports why (or the wait below times out).
        LOG(WARNING) << "worker rank " << rank << ": writing step " << request.step_id() << " failed";
      }
    }
  };
  send(request);
  if (late_masks != nullptr) {
    // The workers run the forward pass meanwhile and wait for these only
    // to sample.
    StepRequest late;
    late.set_step_id(request.step_id());
    *late.mutable_late_masks() = (*late_masks)();
    send(late);
  }
  const std::shared_ptr<Mailbox> mailbox = mailbox_;
  std::vector<StepResult> results(world_size);
  std::optional<absl::Status> failure;
  {
    absl::MutexLock lock(&mailbox->mu);
    // Settled: every rank answered, or one rank's stream ended unanswered.
    auto settled = [&mailbox, world_size]() ABSL_SHARED_LOCKS_REQUIRED(mailbox->mu) {
      bool all_answered = true;
      for (int rank = 0; rank < world_size; ++rank) {
        if (mailbox->ended[rank].has_value() && mailbox->results[rank].empty()) return true;
        all_answered = all_answered && !mailbox->results[rank].empty();
      }
      return all_answered;
    };
    mailbox->mu.AwaitWithTimeout(absl::Condition(&settled), options_.step_timeout);
    // Blame the rank whose stream ended first (the others may have failed
    // because of it), else the first rank that did not answer in time.
    std::optional<int> culprit;
    for (int rank = 0; rank < world_size; ++rank) {
      if (!mailbox->results[rank].empty() || !mailbox->ended[rank].has_value()) continue;
      if (!culprit.has_value() || mailbox->end_order[rank] < mailbox->end_order[*culprit]) culprit = rank;
    }
    if (culprit.has_value()) {
      failure = absl::UnavailableError(
          StrCat("worker rank ", *culprit, " (", options_.addresses[*culprit], ") failed during step ",
                 request.step_id(), ": its Step stream ended: ", mailbox->ended[*culprit]->message()));
    }
    for (int rank = 0; rank < world_size && !failure.has_value(); ++rank) {
      if (mailbox->results[rank].empty()) {
        failure = absl::UnavailableError(StrCat(
            "worker rank ", rank, " (", options_.addresses[rank], ") did not answer step ",
            request.step_id(), " within ", absl::FormatDuration(options_.step_timeout)));
      }
    }
    if (!failure.has_value()) {
      for (int rank = 0; rank < world_size; ++rank) {
        results[rank] = std::move(mailbox->results[rank].front());
        mailbox->results[rank].pop_front();
      }
    }
  }
  if (failure.has_value()) return Broken(*failure);
  for (int rank = 0; rank < world_size; ++rank) {
    if (results[rank].step_id() != request.step_id()) {
      return Broken(absl::InternalError(StrCat("worker rank ", rank, " answered step ",
                                               results[rank].step_id(), " to step ",
                                               request.step_id())));
    }
  }
  if (!results[0].error().empty()) {
    return absl::InvalidArgumentError(StrCat("workers rejected step ", request.step_id(), ": ",
                                             results[0].error()));
  }
  // The step took as long as its slowest rank.
  for (int rank = 1; rank < world_size; ++rank) {
    results[0].set_compute_micros(std::max(results[0].compute_micros(), results[rank].compute_micros()));
  }
  return std::move(results[0]);
}

absl::Status WorkerGroup::Reinitialize() { return Form(); }

absl::Status WorkerGroup::Shutdown() {
  CloseStreams();
  broken_ = true;
  broken_reason_ = "shut down";
  absl::Status first;
  for (int rank = 0; rank < world_size(); ++rank) {
    grpc::ClientContext context;
    context.set_deadline(Deadline(options_.rpc_timeout));
    worker::v1::ShutdownResponse response;
    const grpc::Status status = stubs_[rank]->Shutdown(&context, {}, &response);
    if (!status.ok() && first.ok()) {
      first = absl::UnavailableError(StrCat("worker rank ", rank, ": ", status.error_message()));
    }
  }
  return first;
}

}  // namespace duet::router
