#include "worker/comm/rendezvous_store.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"
#include "common/str_cat.h"
#include "gloo/common/error.h"

namespace duet::worker {
namespace {

// How often a wait asks the server again; rendezvous happens once per group,
// so a few milliseconds of latency cost nothing.
constexpr absl::Duration kPollInterval = absl::Milliseconds(5);

}  // namespace

absl::StatusOr<std::unique_ptr<RendezvousStore>> RendezvousStore::Connect(
    const rendezvous::Bootstrap& bootstrap, int rank, int world_size, absl::Time deadline) {
  auto fd = ConnectTcp(bootstrap.host, bootstrap.port, deadline);
  if (!fd.ok()) {
    return absl::Status(fd.status().code(),
                        StrCat("cannot reach the rendezvous server (is rank 0 still up, or is "
                               "the bootstrap stale?): ",
                               fd.status().message()));
  }
  std::unique_ptr<RendezvousStore> store(new RendezvousStore(*std::move(fd), deadline));
  std::string hello(1, rendezvous::kHello);
  rendezvous::AppendU32(&hello, static_cast<uint32_t>(rank));
  rendezvous::AppendU32(&hello, static_cast<uint32_t>(world_size));
  hello += bootstrap.token;
  auto reply = store->Call(hello);
  if (!reply.ok()) return reply.status();
  return store;
}

absl::StatusOr<std::string> RendezvousStore::Call(const std::string& request) {
  if (absl::Status s = WriteFrame(fd_.get(), request, deadline_); !s.ok()) return s;
  auto reply = ReadFrame(fd_.get(), deadline_);
  if (!reply.ok()) return reply.status();
  if (reply->empty()) return absl::DataLossError("empty reply from the rendezvous server");
  if (reply->front() == rendezvous::kReplyError) {
    return absl::FailedPreconditionError(
        StrCat("rendezvous server refused: ", std::string_view(*reply).substr(1)));
  }
  return reply;
}

void RendezvousStore::Fail(absl::Status status) {
  if (error_.ok()) error_ = status;
  throw ::gloo::IoException(std::string(status.message()));
}

void RendezvousStore::set(const std::string& key, const std::vector<char>& data) {
  std::string request(1, rendezvous::kSet);
  rendezvous::AppendU32(&request, static_cast<uint32_t>(key.size()));
  request += key;
  request.append(data.begin(), data.end());
  if (auto reply = Call(request); !reply.ok()) Fail(reply.status());
}

std::vector<char> RendezvousStore::get(const std::string& key) {
  if (absl::Status s = WaitFor({key}, absl::FromChrono(kDefaultTimeout)); !s.ok()) Fail(s);
  auto reply = Call(StrCat(rendezvous::kGet, key));
  if (!reply.ok()) Fail(reply.status());
  if (reply->front() != rendezvous::kReplyOk) {
    Fail(absl::InternalError(StrCat("rendezvous key '", key, "' vanished")));
  }
  return std::vector<char>(reply->begin() + 1, reply->end());
}

void RendezvousStore::wait(const std::vector<std::string>& keys) {
  wait(keys, kDefaultTimeout);
}

void RendezvousStore::wait(const std::vector<std::string>& keys,
                           const std::chrono::milliseconds& timeout) {
  if (absl::Status s = WaitFor(keys, absl::FromChrono(timeout)); !s.ok()) Fail(s);
}

absl::Status RendezvousStore::WaitFor(const std::vector<std::string>& keys,
                                      absl::Duration timeout) {
  const absl::Time deadline =
      timeout > absl::ZeroDuration() ? std::min(deadline_, absl::Now() + timeout) : deadline_;
  for (const std::string& key : keys) {
    const auto timed_out = [&] {
      return absl::DeadlineExceededError(StrCat("timed out waiting for rendezvous key '", key,
                                                "' (has every rank joined?)"));
    };
    while (true) {
      if (absl::Now() >= deadline) return timed_out();
      auto reply = Call(StrCat(rendezvous::kGet, key));
      if (!reply.ok()) {
        return reply.status().code() == absl::StatusCode::kDeadlineExceeded ? timed_out()
                                                                             : reply.status();
      }
      if (reply->front() == rendezvous::kReplyOk) break;
      absl::SleepFor(std::min(kPollInterval, deadline - absl::Now()));
    }
  }
  return absl::OkStatus();
}

}  // namespace duet::worker
