// Blocking TCP helpers for the Gloo rendezvous: an owned socket, listen,
// connect, and length-prefixed frames ([u32 little-endian length][bytes]).
// Every call that waits takes an absolute deadline (absl::InfiniteFuture()
// waits until the peer acts or the socket is shut down). Errors:
// DeadlineExceeded past the deadline, Unavailable when the peer closed or
// reset the connection or refused it.
#ifndef DUET_WORKER_COMM_SOCKET_IO_H_
#define DUET_WORKER_COMM_SOCKET_IO_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace duet::worker {

// Owns a file descriptor; closes it on destruction. Movable, not copyable.
class ScopedFd {
 public:
  ScopedFd() = default;
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(ScopedFd&& other) noexcept : fd_(other.release()) {}
  ScopedFd& operator=(ScopedFd&& other) noexcept;
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ~ScopedFd();

  int get() const { return fd_; }
  int release();

 private:
  int fd_ = -1;
};

// Largest frame either side accepts; rendezvous messages are addresses.
inline constexpr uint32_t kMaxFrameBytes = 1 << 20;

// Listens on `host` at an ephemeral port; *port receives the port chosen.
absl::StatusOr<ScopedFd> ListenTcp(const std::string& host, int* port);

// Connects to host:port before `deadline`.
absl::StatusOr<ScopedFd> ConnectTcp(const std::string& host, int port, absl::Time deadline);

absl::Status WriteFrame(int fd, std::string_view payload, absl::Time deadline);
absl::StatusOr<std::string> ReadFrame(int fd, absl::Time deadline);

}  // namespace duet::worker

#endif  // DUET_WORKER_COMM_SOCKET_IO_H_
