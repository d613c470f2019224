// Fuzzes the router's HTTP server as clients meet it: each input is the
// byte stream of one TCP connection to a live HttpServer on loopback
// (headers, chunked bodies, pipelined requests, garbage), sent whole, then
// the client half-closes and reads until the server closes.
//
// The handler behind the server echoes what it was given (method, path, body
// size, header count) as JSON; the path /stream answers with a chunked event
// stream instead, so both kinds of response are written while more requests
// wait in the buffer.
//
// Invariants: the server closes the connection within the deadline (no hang);
// everything it wrote parses as a sequence of HTTP/1.1 responses (only the
// last may be cut short, by the client's half-close), each a status the
// server or the handler gives; the handler only ever sees a path that is the
// target without its query, lower-case header names and a body within the
// limit; and once the connection is gone no response is left in flight.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "router/api/http_server.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace api = duet::api;
namespace http = boost::beast::http;

constexpr int64_t kMaxBodyBytes = 4096;
constexpr absl::Duration kDeadline = absl::Seconds(10);

void Handle(const api::HttpRequest& request, std::shared_ptr<api::HttpResponder> responder) {
  FUZZ_CHECK(request.target.compare(0, request.path.size(), request.path) == 0);
  FUZZ_CHECK(request.path.find('?') == std::string::npos);
  FUZZ_CHECK(static_cast<int64_t>(request.body.size()) <= kMaxBodyBytes);
  for (const auto& [name, value] : request.headers) {
    for (const char c : name) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
  }
  if (request.path == "/stream") {
    responder->StartStream(200, "text/event-stream");
    responder->Write("data: {\"n\": 1}\n\n");
    responder->Write("data: [DONE]\n\n");
    responder->FinishStream();
    return;
  }
  const nlohmann::json echo = {{"method", request.method},
                               {"path", request.path},
                               {"body_bytes", request.body.size()},
                               {"headers", request.headers.size()}};
  responder->Send(200, "application/json", echo.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

api::HttpServer& Server() {
  static api::HttpServer* const server = [] {
    api::HttpServerOptions options;
    options.port = 0;
    options.max_body_bytes = kMaxBodyBytes;
    options.idle_timeout = absl::Seconds(2);
    absl::StatusOr<std::unique_ptr<api::HttpServer>> started = api::HttpServer::Start(options, Handle);
    if (!started.ok()) {
      std::fprintf(stderr, "cannot start the server: %s\n", started.status().ToString().c_str());
      std::abort();
    }
    return started->release();
  }();
  return *server;
}

int Connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  FUZZ_CHECK(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) return fd;
  // A signal (libFuzzer's timer) can interrupt a connect that waits for a
  // slow accept; the connection then completes on its own.
  if (errno == EINTR) {
    pollfd poll_fd{fd, POLLOUT, 0};
    int error = 0;
    socklen_t length = sizeof(error);
    if (::poll(&poll_fd, 1, static_cast<int>(absl::ToInt64Milliseconds(kDeadline))) == 1 &&
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0) {
      return fd;
    }
    errno = error;
  }
  std::fprintf(stderr, "connect to the server failed: %s\n", std::strerror(errno));
  std::abort();
}

// Sends `input` (the server may stop reading: errors end the sending), then
// half-closes and reads everything until the server closes.
std::string Exchange(int fd, std::string_view input) {
  std::string received;
  char buffer[16384];
  const absl::Time deadline = absl::Now() + kDeadline;
  bool sending = true;
  while (true) {
    pollfd poll_fd{fd, static_cast<short>(POLLIN | (sending ? POLLOUT : 0)), 0};
    const int ready = ::poll(&poll_fd, 1, 100);
    FUZZ_CHECK(absl::Now() < deadline);  // the server must answer or close
    if (ready <= 0) continue;
    if (sending && (poll_fd.revents & POLLOUT) != 0) {
      const ssize_t n = input.empty() ? 0 : ::send(fd, input.data(), input.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) input.remove_prefix(static_cast<size_t>(n));
      if (n < 0 || input.empty()) {
        ::shutdown(fd, SHUT_WR);
        sending = false;
      }
    }
    if ((poll_fd.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      const ssize_t n = ::recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) break;
      if (n > 0) received.append(buffer, static_cast<size_t>(n));
    }
  }
  return received;
}

bool KnownStatus(unsigned status) {
  return status == 100 || status == 200 || status == 400 || status == 413 || status == 431 || status == 503;
}

// The bytes must be whole responses, but for a cut-short last one.
void CheckResponses(std::string_view bytes) {
  while (!bytes.empty()) {
    http::response_parser<http::string_body> parser;
    parser.eager(true);
    parser.body_limit(1 << 20);
    boost::beast::error_code ec;
    const size_t used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
    if (ec == http::error::need_more) return;  // the last response, cut short
    FUZZ_CHECK(!ec);
    FUZZ_CHECK(parser.is_header_done());
    FUZZ_CHECK(KnownStatus(parser.get().result_int()));
    if (!parser.is_done()) return;
    FUZZ_CHECK(used > 0);
    bytes.remove_prefix(used);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  api::HttpServer& server = Server();
  const int fd = Connect(server.port());
  const std::string received = Exchange(fd, std::string_view(reinterpret_cast<const char*>(data), size));
  // Close with a reset: the half-close above made this side the first to
  // send FIN, and hundreds of exchanges a second would otherwise fill the
  // ephemeral port range with TIME_WAIT sockets until connect fails.
  const linger reset{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  ::close(fd);
  CheckResponses(received);
  // The connection is closed, so every exchange it held has ended.
  const absl::Time deadline = absl::Now() + kDeadline;
  while (server.num_in_flight() != 0) {
    FUZZ_CHECK(absl::Now() < deadline);
    absl::SleepFor(absl::Milliseconds(1));
  }
  return 0;
}
