#include "tools/bench_serve/http_stream.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "common/str_cat.h"

namespace duet::bench {
namespace {

using Clock = std::chrono::steady_clock;

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = absl::ascii_tolower(static_cast<unsigned char>(c));
  return out;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) text.remove_suffix(1);
  return text;
}

// A connected socket, closed on destruction.
class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

int MillisecondsLeft(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, 1 << 30));
}

// Waits until fd is ready for `events` or the deadline passes.
absl::Status Wait(int fd, short events, Clock::time_point deadline, std::string_view what) {
  for (;;) {
    pollfd p{.fd = fd, .events = events, .revents = 0};
    const int ready = poll(&p, 1, MillisecondsLeft(deadline));
    if (ready > 0) return absl::OkStatus();
    if (ready == 0) return absl::DeadlineExceededError(StrCat("timed out ", what));
    if (errno != EINTR) return absl::UnavailableError(StrCat("poll: ", std::strerror(errno)));
  }
}

absl::StatusOr<int> Connect(const HttpUrl& url, Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int error = getaddrinfo(url.host.c_str(), url.port.c_str(), &hints, &found); error != 0) {
    return absl::UnavailableError(StrCat("cannot resolve ", url.host, ": ", gai_strerror(error)));
  }
  std::string last_error = "no address";
  int connected = -1;
  for (addrinfo* a = found; a != nullptr && connected < 0; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      connected = fd;
      break;
    }
    if (errno == EINPROGRESS) {
      absl::Status ready = Wait(fd, POLLOUT, deadline, "connecting");
      int error = 0;
      socklen_t length = sizeof(error);
      if (ready.ok() && getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0) {
        connected = fd;
        break;
      }
      last_error = ready.ok() ? std::strerror(error) : std::string(ready.message());
    } else {
      last_error = std::strerror(errno);
    }
    close(fd);
  }
  freeaddrinfo(found);
  if (connected < 0) {
    return absl::UnavailableError(StrCat("cannot connect to ", url.host, ":", url.port, ": ", last_error));
  }
  return connected;
}

}  // namespace

absl::StatusOr<HttpUrl> ParseHttpUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (!url.starts_with(kScheme)) {
    return absl::InvalidArgumentError(StrCat("URL must start with http:// (got '", url, "')"));
  }
  std::string_view rest = url.substr(kScheme.size());
  const size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  HttpUrl out;
  out.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  const size_t colon = authority.rfind(':');
  out.host = std::string(authority.substr(0, colon));
  out.port = colon == std::string_view::npos ? "80" : std::string(authority.substr(colon + 1));
  int port = 0;
  if (out.host.empty()) return absl::InvalidArgumentError(StrCat("URL has no host: ", url));
  if (!absl::SimpleAtoi(out.port, &port) || port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(StrCat("URL has a bad port: ", url));
  }
  return out;
}

std::string ResponseDecoder::Header(std::string_view name) const {
  const std::string key = Lower(name);
  for (const auto& [n, v] : headers_) {
    if (n == key) return v;
  }
  return "";
}

absl::Status ResponseDecoder::ParseHeaders(std::string_view block) {
  const size_t line_end = block.find("\r\n");
  const std::string_view status_line = block.substr(0, line_end);
  // "HTTP/1.1 200 OK"
  if (!status_line.starts_with("HTTP/1.") || status_line.size() < 12 || status_line[8] != ' ' ||
      !absl::SimpleAtoi(std::string(status_line.substr(9, 3)), &status_code_)) {
    return absl::InvalidArgumentError(StrCat("malformed HTTP status line '", status_line, "'"));
  }
  std::string_view rest = line_end == std::string_view::npos ? "" : block.substr(line_end + 2);
  while (!rest.empty()) {
    const size_t end = rest.find("\r\n");
    const std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? "" : rest.substr(end + 2);
    if (line.empty()) continue;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return absl::InvalidArgumentError(StrCat("malformed HTTP header '", line, "'"));
    }
    headers_.emplace_back(Lower(Trim(line.substr(0, colon))), std::string(Trim(line.substr(colon + 1))));
  }
  if (Lower(Header("transfer-encoding")).find("chunked") != std::string::npos) {
    state_ = State::kChunkSize;
  } else if (const std::string length = Header("content-length"); !length.empty()) {
    if (!absl::SimpleAtoi(length, &remaining_)) {
      return absl::InvalidArgumentError(StrCat("malformed Content-Length '", length, "'"));
    }
    state_ = remaining_ == 0 ? State::kDone : State::kIdentity;
  } else {
    state_ = State::kUntilClose;
  }
  return absl::OkStatus();
}

absl::Status ResponseDecoder::Feed(std::string_view bytes, std::string* body) {
  pending_.append(bytes);
  size_t at = 0;
  while (at < pending_.size() && state_ != State::kDone) {
    const std::string_view data = std::string_view(pending_).substr(at);
    switch (state_) {
      case State::kHeaders: {
        const size_t end = data.find("\r\n\r\n");
        if (end == std::string_view::npos) {
          if (data.size() > 64 * 1024) return absl::InvalidArgumentError("HTTP header block over 64 KiB");
          pending_.erase(0, at);
          return absl::OkStatus();
        }
        if (absl::Status status = ParseHeaders(data.substr(0, end)); !status.ok()) return status;
        at += end + 4;
        break;
      }
      case State::kIdentity:
      case State::kChunkData: {
        const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, data.size()));
        body->append(data.substr(0, take));
        at += take;
        remaining_ -= take;
        if (remaining_ == 0) state_ = state_ == State::kIdentity ? State::kDone : State::kChunkDataEnd;
        break;
      }
      case State::kUntilClose:
        body->append(data);
        at = pending_.size();
        break;
      case State::kChunkSize:
      case State::kChunkDataEnd:
      case State::kTrailers: {
        const size_t end = data.find("\r\n");
        if (end == std::string_view::npos) {
          if (data.size() > 4096) return absl::InvalidArgumentError("HTTP chunk line over 4 KiB");
          pending_.erase(0, at);
          return absl::OkStatus();
        }
        const std::string_view line = data.substr(0, end);
        at += end + 2;
        if (state_ == State::kChunkDataEnd) {
          if (!line.empty()) return absl::InvalidArgumentError("HTTP chunk not followed by CRLF");
          state_ = State::kChunkSize;
        } else if (state_ == State::kTrailers) {
          if (line.empty()) state_ = State::kDone;
        } else {
          const std::string_view size = Trim(line.substr(0, line.find(';')));
          uint64_t value = 0;
          if (size.empty() || size.size() > 15 ||
              !absl::SimpleHexAtoi(absl::string_view(size.data(), size.size()), &value)) {
            return absl::InvalidArgumentError(StrCat("malformed HTTP chunk size '", line, "'"));
          }
          remaining_ = value;
          state_ = value == 0 ? State::kTrailers : State::kChunkData;
        }
        break;
      }
      case State::kDone:
        break;
    }
  }
  pending_.erase(0, at);
  return absl::OkStatus();
}

absl::Status ResponseDecoder::Close() {
  if (state_ == State::kUntilClose) state_ = State::kDone;
  if (state_ == State::kDone) return absl::OkStatus();
  return absl::UnavailableError(state_ == State::kHeaders ? "the server closed the connection before answering"
                                                          : "the server closed the connection mid-response");
}

absl::StatusOr<int> PostStreaming(const HttpRequest& request, Clock::time_point deadline,
                                  const std::function<void(std::string_view)>& on_body) {
  absl::StatusOr<int> fd = Connect(request.url, deadline);
  if (!fd.ok()) return fd.status();
  Socket socket(*fd);
  std::string head = StrCat("POST ", request.url.path, " HTTP/1.1\r\nHost: ", request.url.host, ":",
                            request.url.port, "\r\nContent-Length: ", request.body.size(), "\r\n");
  for (const auto& [name, value] : request.headers) head += StrCat(name, ": ", value, "\r\n");
  head += "Connection: close\r\n\r\n";
  const std::string out = head + request.body;
  for (size_t sent = 0; sent < out.size();) {
    const ssize_t n = send(socket.fd(), out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (absl::Status s = Wait(socket.fd(), POLLOUT, deadline, "sending the request"); !s.ok()) return s;
      continue;
    }
    return absl::UnavailableError(StrCat("send: ", std::strerror(errno)));
  }
  ResponseDecoder decoder;
  std::string body;
  char buffer[16384];
  while (!decoder.done()) {
    const ssize_t n = recv(socket.fd(), buffer, sizeof(buffer), 0);
    if (n > 0) {
      body.clear();
      if (absl::Status s = decoder.Feed(std::string_view(buffer, static_cast<size_t>(n)), &body); !s.ok()) return s;
      if (!body.empty()) on_body(body);
      continue;
    }
    if (n == 0) {
      if (absl::Status s = decoder.Close(); !s.ok()) return s;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (absl::Status s = Wait(socket.fd(), POLLIN, deadline, "waiting for the response"); !s.ok()) return s;
      continue;
    }
    return absl::UnavailableError(StrCat("recv: ", std::strerror(errno)));
  }
  return decoder.status_code();
}

}  // namespace duet::bench
