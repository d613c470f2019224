// A gloo::rendezvous::Store backed by one TCP connection to the rank-0
// GlooRendezvous server (rendezvous_server.h). Every rank, rank 0 included,
// uses one while Gloo connects its full mesh, then drops it.
//
// Gloo's Store interface reports failure by throwing; this client throws
// ::gloo::IoException and also remembers the first failure as an
// absl::Status (error()), so the caller can report the precise code:
// DeadlineExceeded when `deadline` passes or a wait times out, Unavailable
// when the server is unreachable or went away, FailedPrecondition when the
// server refused this rank (wrong token, world size mismatch, rank joined
// twice).
//
// Thread-compatible: Gloo calls it from the connecting thread only.
#ifndef DUET_WORKER_COMM_RENDEZVOUS_STORE_H_
#define DUET_WORKER_COMM_RENDEZVOUS_STORE_H_

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gloo/rendezvous/store.h"
#include "worker/comm/rendezvous_protocol.h"
#include "worker/comm/socket_io.h"

namespace duet::worker {

class RendezvousStore : public ::gloo::rendezvous::Store {
 public:
  // Connects and says hello (token, rank, world size) before `deadline`;
  // every later operation also ends by `deadline` at the latest.
  static absl::StatusOr<std::unique_ptr<RendezvousStore>> Connect(
      const rendezvous::Bootstrap& bootstrap, int rank, int world_size, absl::Time deadline);

  void set(const std::string& key, const std::vector<char>& data) override;
  // Waits for the key like wait() with the default timeout.
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys,
            const std::chrono::milliseconds& timeout) override;

  // The first failure, or OK.
  const absl::Status& error() const { return error_; }

 private:
  RendezvousStore(ScopedFd fd, absl::Time deadline) : fd_(std::move(fd)), deadline_(deadline) {}

  // One request/reply round trip; replies 'Y'/'N' come back as-is.
  absl::StatusOr<std::string> Call(const std::string& request);
  // Polls until every key is present, or fails at min(deadline_, now + timeout).
  absl::Status WaitFor(const std::vector<std::string>& keys, absl::Duration timeout);
  // Records `status` (first failure wins) and throws ::gloo::IoException.
  [[noreturn]] void Fail(absl::Status status);

  ScopedFd fd_;
  const absl::Time deadline_;
  absl::Status error_;
};

}  // namespace duet::worker

#endif  // DUET_WORKER_COMM_RENDEZVOUS_STORE_H_
