#include "worker/comm/socket_io.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/time/clock.h"
#include "common/str_cat.h"

namespace duet::worker {
namespace {

std::string ErrnoText(int err) { return std::strerror(err); }

// Waits until `fd` is ready for `events` (POLLIN/POLLOUT) or the deadline.
absl::Status WaitReady(int fd, short events, absl::Time deadline, std::string_view what) {
  while (true) {
    int timeout_ms = -1;
    if (deadline != absl::InfiniteFuture()) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        return absl::DeadlineExceededError(StrCat("timed out ", what));
      }
      // Round up so a sub-millisecond remainder still waits.
      timeout_ms = static_cast<int>(std::min<int64_t>(
          absl::ToInt64Milliseconds(left) + 1, 60 * 60 * 1000));
    }
    pollfd pfd{fd, events, 0};
    const int rc = ::poll(&pfd, 1, timeout_ms);
    if (rc > 0) return absl::OkStatus();  // ready, or an error the I/O call reports
    if (rc < 0 && errno != EINTR) {
      return absl::UnavailableError(StrCat("poll failed ", what, ": ", ErrnoText(errno)));
    }
  }
}

absl::Status IoError(int err, std::string_view what) {
  return absl::UnavailableError(StrCat(what, ": ", ErrnoText(err)));
}

absl::Status WriteAll(int fd, const char* data, size_t size, absl::Time deadline) {
  while (size > 0) {
    if (absl::Status s = WaitReady(fd, POLLOUT, deadline, "writing to the rendezvous peer");
        !s.ok()) {
      return s;
    }
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return IoError(errno, "write to the rendezvous peer failed");
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status ReadAll(int fd, char* data, size_t size, absl::Time deadline) {
  while (size > 0) {
    if (absl::Status s = WaitReady(fd, POLLIN, deadline, "reading from the rendezvous peer");
        !s.ok()) {
      return s;
    }
    const ssize_t n = ::recv(fd, data, size, MSG_DONTWAIT);
    if (n == 0) return absl::UnavailableError("rendezvous peer closed the connection");
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return IoError(errno, "read from the rendezvous peer failed");
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

struct AddrInfoDeleter {
  void operator()(addrinfo* info) const { freeaddrinfo(info); }
};

absl::StatusOr<std::unique_ptr<addrinfo, AddrInfoDeleter>> Resolve(const std::string& host,
                                                                    int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  const std::string service = std::to_string(port);
  const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &result);
  if (rc != 0) {
    return absl::InvalidArgumentError(
        StrCat("cannot resolve host '", host, "': ", gai_strerror(rc)));
  }
  return std::unique_ptr<addrinfo, AddrInfoDeleter>(result);
}

}  // namespace

ScopedFd& ScopedFd::operator=(ScopedFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

ScopedFd::~ScopedFd() {
  if (fd_ >= 0) ::close(fd_);
}

int ScopedFd::release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

absl::StatusOr<ScopedFd> ListenTcp(const std::string& host, int* port) {
  auto resolved = Resolve(host, 0);
  if (!resolved.ok()) return resolved.status();
  absl::Status last = absl::UnavailableError(StrCat("no address for '", host, "'"));
  for (addrinfo* ai = resolved->get(); ai != nullptr; ai = ai->ai_next) {
    ScopedFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (fd.get() < 0) {
      last = IoError(errno, "socket");
      continue;
    }
    const int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      last = IoError(errno, StrCat("bind to ", host));
      continue;
    }
    if (::listen(fd.get(), 64) != 0) {
      last = IoError(errno, StrCat("listen on ", host));
      continue;
    }
    sockaddr_storage bound{};
    socklen_t len = sizeof(bound);
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
      last = IoError(errno, "getsockname");
      continue;
    }
    *port = bound.ss_family == AF_INET6
                ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    return fd;
  }
  return last;
}

absl::StatusOr<ScopedFd> ConnectTcp(const std::string& host, int port, absl::Time deadline) {
  auto resolved = Resolve(host, port);
  if (!resolved.ok()) return resolved.status();
  const std::string where = StrCat(host, ":", port);
  absl::Status last = absl::UnavailableError(StrCat("no address for ", where));
  for (addrinfo* ai = resolved->get(); ai != nullptr; ai = ai->ai_next) {
    ScopedFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                         ai->ai_protocol));
    if (fd.get() < 0) {
      last = IoError(errno, "socket");
      continue;
    }
    if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        last = IoError(errno, StrCat("connect to ", where));
        continue;
      }
      if (absl::Status s = WaitReady(fd.get(), POLLOUT, deadline, StrCat("connecting to ", where));
          !s.ok()) {
        return s;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        last = IoError(err, StrCat("connect to ", where));
        continue;
      }
    }
    const int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
  }
  return last;
}

absl::Status WriteFrame(int fd, std::string_view payload, absl::Time deadline) {
  if (payload.size() > kMaxFrameBytes) {
    return absl::InvalidArgumentError(StrCat("frame of ", payload.size(), " bytes is too large"));
  }
  std::string frame(4, '\0');
  const uint32_t size = static_cast<uint32_t>(payload.size());
  for (int i = 0; i < 4; ++i) frame[i] = static_cast<char>((size >> (8 * i)) & 0xff);
  frame.append(payload);
  return WriteAll(fd, frame.data(), frame.size(), deadline);
}

absl::StatusOr<std::string> ReadFrame(int fd, absl::Time deadline) {
  unsigned char header[4];
  if (absl::Status s = ReadAll(fd, reinterpret_cast<char*>(header), 4, deadline); !s.ok()) {
    return s;
  }
  const uint32_t size = header[0] | (header[1] << 8) | (header[2] << 16) |
                        (static_cast<uint32_t>(header[3]) << 24);
  if (size > kMaxFrameBytes) {
    return absl::DataLossError(StrCat("rendezvous frame of ", size, " bytes is too large"));
  }
  std::string payload(size, '\0');
  if (absl::Status s = ReadAll(fd, payload.data(), size, deadline); !s.ok()) return s;
  return payload;
}

}  // namespace duet::worker
