// The HTTP server, checked byte for byte over raw POSIX sockets: keep-alive,
// pipelining, chunked event streams, the server's own error answers, clients
// that leave mid-response, draining and many connections at once.
#include "router/api/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace duet::api {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr absl::Duration kTimeout = absl::Seconds(5);

// A blocking TCP client on loopback that reads with deadlines.
class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  }
  ~RawClient() { Close(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return connected_; }

  bool Send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Reads until `received_` contains `marker`; returns everything up to and
  // including it (and keeps the rest), or "" at the deadline or EOF.
  std::string ReadThrough(std::string_view marker, absl::Duration timeout = kTimeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (true) {
      const size_t at = received_.find(marker);
      if (at != std::string::npos) {
        std::string out = received_.substr(0, at + marker.size());
        received_.erase(0, at + marker.size());
        return out;
      }
      if (!ReadMore(deadline)) return "";
    }
  }

  // One response with a Content-Length body (headers and body).
  std::string ReadResponse() {
    std::string head = ReadThrough("\r\n\r\n");
    const size_t at = head.find("Content-Length: ");
    if (head.empty() || at == std::string::npos) return head;
    const size_t length = std::stoul(head.substr(at + 16));
    const absl::Time deadline = absl::Now() + kTimeout;
    while (received_.size() < length && ReadMore(deadline)) {
    }
    if (received_.size() < length) return "";
    std::string out = head + received_.substr(0, length);
    received_.erase(0, length);
    return out;
  }

  // Whether the server closes the connection (read returns 0 or an error).
  bool WaitForClose(absl::Duration timeout = kTimeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (ReadMore(deadline)) {
    }
    return eof_;
  }

 private:
  bool ReadMore(absl::Time deadline) {
    if (eof_) return false;
    const int64_t wait_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (wait_ms <= 0) return false;
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(wait_ms)) <= 0) return false;
    char buffer[4096];
    const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    received_.append(buffer, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  std::string received_;
};

std::string Get(std::string_view target, std::string_view extra_headers = "") {
  return StrCat("GET ", target, " HTTP/1.1\r\nHost: test\r\n", extra_headers, "\r\n");
}

std::string Post(std::string_view target, std::string_view body) {
  return StrCat("POST ", target, " HTTP/1.1\r\nHost: test\r\nContent-Length: ", body.size(), "\r\n\r\n", body);
}

std::string BodyOf(const std::string& response) { return response.substr(response.find("\r\n\r\n") + 4); }

// Checks an error answer's OpenAI envelope; returns its message.
std::string EnvelopeMessage(const std::string& response, std::string_view type) {
  const nlohmann::json body = nlohmann::json::parse(BodyOf(response), nullptr, /*allow_exceptions=*/false);
  EXPECT_TRUE(body.is_object()) << response;
  if (!body.is_object() || !body.contains("error")) return "";
  const nlohmann::json& error = body["error"];
  EXPECT_EQ(error.value("type", ""), type);
  EXPECT_TRUE(error.contains("param") && error["param"].is_null());
  EXPECT_TRUE(error.contains("code") && error["code"].is_null());
  return error.value("message", "");
}

// Answers every request with 200 and "<method> <path> <body>".
void Echo(const HttpRequest& request, std::shared_ptr<HttpResponder> responder) {
  responder->Send(200, "text/plain", StrCat(request.method, " ", request.path, " ", request.body));
}

class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(HttpHandler handler, HttpServerOptions options = {}) {
    options.port = 0;
    absl::StatusOr<std::unique_ptr<HttpServer>> server = HttpServer::Start(options, std::move(handler));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  bool WaitForInFlight(int expected) {
    const absl::Time deadline = absl::Now() + kTimeout;
    while (server_->num_in_flight() != expected) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return true;
  }

  std::unique_ptr<HttpServer> server_;
};

// Hands each request's responder to the test, which answers it.
class HeldResponders {
 public:
  HttpHandler Handler() {
    return [this](const HttpRequest& request, std::shared_ptr<HttpResponder> responder) {
      absl::MutexLock lock(&mu_);
      requests_.push_back(request);
      responders_.push_back(std::move(responder));
    };
  }
  // Waits for the n-th request (0-based).
  std::shared_ptr<HttpResponder> Await(size_t n) {
    absl::MutexLock lock(&mu_);
    const auto arrived = [this, n]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return responders_.size() > n; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&arrived), kTimeout)) return nullptr;
    return responders_[n];
  }
  HttpRequest request(size_t n) {
    absl::MutexLock lock(&mu_);
    return requests_.at(n);
  }
  size_t size() {
    absl::MutexLock lock(&mu_);
    return responders_.size();
  }

 private:
  absl::Mutex mu_;
  std::vector<HttpRequest> requests_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<HttpResponder>> responders_ ABSL_GUARDED_BY(mu_);
};

// Sends `request` and returns the responder the handler holds for it;
// nullptr when the send or the wait failed.
std::shared_ptr<HttpResponder> SendAndAwait(RawClient& client, HeldResponders& held, const std::string& request) {
  const size_t index = held.size();
  if (!client.Send(request)) return nullptr;
  return held.Await(index);
}

TEST_F(HttpServerTest, TwoRequestsOnOneKeepAliveConnection) {
  HeldResponders held;
  StartServer(held.Handler());
  RawClient client(server_->port());
  ASSERT_TRUE(client.connected());

  ASSERT_TRUE(client.Send(Get("/v1/models?limit=3", "X-Request-Tag: Abc\r\n")));
  held.Await(0)->Send(200, "application/json", "{}", {{"X-Extra", "1"}});
  EXPECT_EQ(client.ReadResponse(),
            "HTTP/1.1 200 OK\r\nX-Extra: 1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
  const HttpRequest first = held.request(0);
  EXPECT_EQ(first.method, "GET");
  EXPECT_EQ(first.target, "/v1/models?limit=3");
  EXPECT_EQ(first.path, "/v1/models");
  EXPECT_EQ(first.headers.at("x-request-tag"), "Abc");
  EXPECT_EQ(first.headers.at("host"), "test");

  ASSERT_TRUE(client.Send(Post("/v1/completions", "hello")));
  ASSERT_NE(held.Await(1), nullptr);
  EXPECT_EQ(held.request(1).body, "hello");
  held.Await(1)->Send(404, "text/plain", "no");
  EXPECT_EQ(client.ReadResponse(), "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nno");
  EXPECT_TRUE(WaitForInFlight(0));
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  StartServer(Echo);
  RawClient client(server_->port());
  ASSERT_TRUE(client.Send(Post("/a", "1") + Post("/b", "22") + Get("/c")));
  EXPECT_EQ(BodyOf(client.ReadResponse()), "POST /a 1");
  EXPECT_EQ(BodyOf(client.ReadResponse()), "POST /b 22");
  EXPECT_EQ(BodyOf(client.ReadResponse()), "GET /c ");
}

TEST_F(HttpServerTest, ConnectionCloseIsHonoured) {
  StartServer(Echo);
  RawClient client(server_->port());
  ASSERT_TRUE(client.Send(Get("/x", "Connection: close\r\n")));
  const std::string response = client.ReadResponse();
  EXPECT_THAT(response, HasSubstr("\r\nConnection: close\r\n"));
  EXPECT_EQ(BodyOf(response), "GET /x ");
  EXPECT_TRUE(client.WaitForClose());
}

TEST_F(HttpServerTest, ExpectContinueGetsAnInterimResponse) {
  StartServer(Echo);
  RawClient client(server_->port());
  ASSERT_TRUE(client.Send("POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"));
  EXPECT_EQ(client.ReadThrough("\r\n\r\n"), "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_TRUE(client.Send("abc"));
  EXPECT_EQ(BodyOf(client.ReadResponse()), "POST /e abc");
}

TEST_F(HttpServerTest, StreamIsChunkedAndTheConnectionIsReused) {
  StartServer([](const HttpRequest& request, std::shared_ptr<HttpResponder> responder) {
    if (request.path != "/stream") return Echo(request, std::move(responder));
    responder->StartStream(200, "text/event-stream");
    responder->Write("data: x\n\n");
    responder->Write("data: yz\n\n");
    responder->FinishStream();
  });
  RawClient client(server_->port());
  ASSERT_TRUE(client.Send(Get("/stream")));
  const std::string head = client.ReadThrough("\r\n\r\n");
  EXPECT_THAT(head, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(head, HasSubstr("\r\nContent-Type: text/event-stream\r\n"));
  EXPECT_THAT(head, HasSubstr("\r\nTransfer-Encoding: chunked\r\n"));
  EXPECT_THAT(head, HasSubstr("\r\nCache-Control: no-cache\r\n"));
  EXPECT_THAT(head, HasSubstr("\r\nX-Accel-Buffering: no\r\n"));
  EXPECT_THAT(head, Not(HasSubstr("Content-Length")));
  EXPECT_EQ(client.ReadThrough("0\r\n\r\n"), "9\r\ndata: x\n\n\r\na\r\ndata: yz\n\n\r\n0\r\n\r\n");

  ASSERT_TRUE(client.Send(Get("/after")));
  EXPECT_EQ(BodyOf(client.ReadResponse()), "GET /after ");
  EXPECT_TRUE(WaitForInFlight(0));
}

TEST_F(HttpServerTest, StreamWrittenFromAnotherThreadArrivesAsWritten) {
  HeldResponders held;
  StartServer(held.Handler());
  RawClient client(server_->port());
  std::shared_ptr<HttpResponder> responder = SendAndAwait(client, held, Get("/stream"));
  ASSERT_NE(responder, nullptr);

  absl::Notification first_event_seen;
  std::thread engine([responder, &first_event_seen] {
    responder->StartStream(200, "text/event-stream");
    responder->Write("data: 0\n\n");
    // The first event must reach the client before the stream ends.
    first_event_seen.WaitForNotificationWithTimeout(kTimeout);
    for (int i = 1; i < 5; ++i) {
      absl::SleepFor(absl::Milliseconds(20));
      responder->Write(StrCat("data: ", i, "\n\n"));
    }
    responder->FinishStream();
  });
  client.ReadThrough("\r\n\r\n");
  EXPECT_EQ(client.ReadThrough("data: 0\n\n\r\n"), "9\r\ndata: 0\n\n\r\n");
  first_event_seen.Notify();
  EXPECT_EQ(client.ReadThrough("0\r\n\r\n"),
            "9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n9\r\ndata: 3\n\n\r\n9\r\ndata: 4\n\n\r\n0\r\n\r\n");
  engine.join();
  EXPECT_TRUE(WaitForInFlight(0));
}

TEST_F(HttpServerTest, OversizedBodyGets413AndTheConnectionCloses) {
  std::atomic<int> num_handled{0};
  HttpServerOptions options;
  options.max_body_bytes = 1024;
  StartServer([&](const HttpRequest& r, std::shared_ptr<HttpResponder> responder) {
    ++num_handled;
    Echo(r, std::move(responder));
  }, options);

  RawClient client(server_->port());
  ASSERT_TRUE(client.Send("POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n"));
  const std::string response = client.ReadResponse();
  EXPECT_THAT(response, StartsWith("HTTP/1.1 413 "));
  EXPECT_THAT(response, HasSubstr("\r\nConnection: close\r\n"));
  EXPECT_THAT(EnvelopeMessage(response, "invalid_request_error"), HasSubstr("1024"));
  EXPECT_TRUE(client.WaitForClose());

  // A chunked body is counted as it arrives.
  RawClient chunked(server_->port());
  ASSERT_TRUE(chunked.Send("POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"));
  ASSERT_TRUE(chunked.Send(StrCat("800\r\n", std::string(2048, 'a'), "\r\n")));
  EXPECT_THAT(chunked.ReadResponse(), StartsWith("HTTP/1.1 413 "));
  EXPECT_TRUE(chunked.WaitForClose());

  // A body at the limit is fine.
  RawClient at_limit(server_->port());
  ASSERT_TRUE(at_limit.Send(Post("/ok", std::string(1024, 'b'))));
  EXPECT_THAT(at_limit.ReadResponse(), StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_EQ(num_handled.load(), 1);
}

TEST_F(HttpServerTest, GarbageGets400WithoutEchoAndCloses) {
  StartServer(Echo);
  RawClient client(server_->port());
  ASSERT_TRUE(client.Send("SECRETGARBAGE\x01\x02 nonsense\r\n\r\n"));
  const std::string response = client.ReadResponse();
  EXPECT_THAT(response, StartsWith("HTTP/1.1 400 Bad Request\r\n"));
  EXPECT_THAT(response, Not(HasSubstr("SECRET")));
  EXPECT_THAT(EnvelopeMessage(response, "invalid_request_error"), Not(testing::IsEmpty()));
  EXPECT_TRUE(client.WaitForClose());
}

TEST_F(HttpServerTest, ClientLeavingMidStreamIsNoticedAtOnce) {
  HeldResponders held;
  StartServer(held.Handler());
  RawClient client(server_->port());
  std::shared_ptr<HttpResponder> responder = SendAndAwait(client, held, Get("/stream"));
  ASSERT_NE(responder, nullptr);
  absl::Notification gone;
  responder->OnClientGone([&gone] { gone.Notify(); });
  responder->StartStream(200, "text/event-stream");
  responder->Write("data: 1\n\n");
  EXPECT_EQ(client.ReadThrough("data: 1\n\n\r\n").substr(0, 15), "HTTP/1.1 200 OK");
  EXPECT_FALSE(responder->client_gone());
  EXPECT_EQ(server_->num_in_flight(), 1);

  client.Close();
  EXPECT_TRUE(gone.WaitForNotificationWithTimeout(absl::Seconds(1)));
  EXPECT_TRUE(responder->client_gone());
  EXPECT_TRUE(WaitForInFlight(0));
  responder->Write("data: 2\n\n");  // harmless
  responder->FinishStream();
  int num_late_callbacks = 0;
  responder->OnClientGone([&num_late_callbacks] { ++num_late_callbacks; });  // at once
  EXPECT_EQ(num_late_callbacks, 1);
}

TEST_F(HttpServerTest, ClientThatStopsReadingAStreamIsCutOffAtTheBufferBound) {
  HeldResponders held;
  HttpServerOptions options;
  options.max_stream_buffer_bytes = 256 << 10;
  StartServer(held.Handler(), options);
  RawClient client(server_->port());
  std::shared_ptr<HttpResponder> responder = SendAndAwait(client, held, Get("/stream"));
  ASSERT_NE(responder, nullptr);
  absl::Notification gone;
  responder->OnClientGone([&gone] { gone.Notify(); });
  responder->StartStream(200, "text/event-stream");
  // The client reads nothing. Writes never block; once the kernel's socket
  // buffers and then the server's 256 KiB are full, the client counts as gone.
  const std::string event = duet::StrCat("data: ", std::string(16 << 10, 'x'), "\n\n");
  int64_t written = 0;
  while (!gone.HasBeenNotified() && written < (int64_t{256} << 20)) {
    responder->Write(event);
    written += static_cast<int64_t>(event.size());
    absl::SleepFor(absl::Microseconds(100));
  }
  EXPECT_TRUE(gone.WaitForNotificationWithTimeout(kTimeout)) << written << " bytes written";
  EXPECT_TRUE(responder->client_gone());
  EXPECT_TRUE(WaitForInFlight(0));
  EXPECT_TRUE(client.WaitForClose());
}

TEST_F(HttpServerTest, HandlerThatNeverAnswersDoesNotOutliveItsClient) {
  HeldResponders held;
  StartServer(held.Handler());
  RawClient client(server_->port());
  std::shared_ptr<HttpResponder> responder = SendAndAwait(client, held, Post("/v1/chat/completions", "{}"));
  ASSERT_NE(responder, nullptr);
  absl::Notification gone;
  responder->OnClientGone([&gone] { gone.Notify(); });
  client.Close();
  EXPECT_TRUE(gone.WaitForNotificationWithTimeout(absl::Seconds(1)));
  EXPECT_TRUE(WaitForInFlight(0));
}

TEST_F(HttpServerTest, CompletedResponseNeverReportsTheClientGone) {
  HeldResponders held;
  StartServer(held.Handler());
  RawClient client(server_->port());
  std::shared_ptr<HttpResponder> responder = SendAndAwait(client, held, Get("/x"));
  ASSERT_NE(responder, nullptr);
  std::atomic<int> num_gone{0};
  responder->OnClientGone([&num_gone] { ++num_gone; });
  responder->Send(200, "text/plain", "done");
  EXPECT_EQ(BodyOf(client.ReadResponse()), "done");
  EXPECT_TRUE(WaitForInFlight(0));
  client.Close();
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(num_gone.load(), 0);
  EXPECT_FALSE(responder->client_gone());
}

TEST_F(HttpServerTest, DrainingAnswers503WhileStreamsInProgressFinish) {
  HeldResponders held;
  StartServer(held.Handler());
  RawClient streaming(server_->port());
  ASSERT_TRUE(streaming.Send(Get("/stream")));
  std::shared_ptr<HttpResponder> responder = held.Await(0);
  ASSERT_NE(responder, nullptr);
  responder->StartStream(200, "text/event-stream");
  responder->Write("data: a\n\n");
  streaming.ReadThrough("data: a\n\n\r\n");

  server_->StopAccepting();
  RawClient late(server_->port());
  ASSERT_TRUE(late.Send(Post("/v1/completions", "{}")));
  const std::string response = late.ReadResponse();
  EXPECT_THAT(response, StartsWith("HTTP/1.1 503 Service Unavailable\r\n"));
  EXPECT_EQ(EnvelopeMessage(response, "server_error"), "the server is shutting down");
  EXPECT_TRUE(late.WaitForClose());
  EXPECT_EQ(held.size(), 1u);
  EXPECT_EQ(server_->num_in_flight(), 1);

  responder->Write("data: b\n\n");
  responder->FinishStream();
  EXPECT_EQ(streaming.ReadThrough("0\r\n\r\n"), "9\r\ndata: b\n\n\r\n0\r\n\r\n");
  EXPECT_TRUE(WaitForInFlight(0));
}

TEST_F(HttpServerTest, FiftyConcurrentConnectionsAreAllServed) {
  HttpServerOptions options;
  options.num_threads = 4;
  StartServer(Echo, options);
  constexpr int kNumClients = 50;
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < kNumClients; ++i) {
    clients.push_back(std::make_unique<RawClient>(server_->port()));
    ASSERT_TRUE(clients.back()->connected());
  }
  for (int i = 0; i < kNumClients; ++i) ASSERT_TRUE(clients[i]->Send(Post(StrCat("/c", i), StrCat(i))));
  for (int i = 0; i < kNumClients; ++i) {
    EXPECT_EQ(BodyOf(clients[i]->ReadResponse()), StrCat("POST /c", i, " ", i));
  }
}

TEST_F(HttpServerTest, BodiesReachTheHandlerUntouched) {
  HeldResponders held;
  StartServer(held.Handler());
  const std::string body("\xff\xfe\xc3\x28 \x00 \xed\xa0\x80", 10);
  RawClient client(server_->port());
  ASSERT_TRUE(client.Send(Post("/v1/completions", body)));
  ASSERT_NE(held.Await(0), nullptr);
  EXPECT_EQ(held.request(0).body, body);
  held.Await(0)->Send(200, "application/octet-stream", body);
  EXPECT_EQ(BodyOf(client.ReadResponse()), body);
}

TEST_F(HttpServerTest, IdleConnectionIsClosed) {
  HttpServerOptions options;
  options.idle_timeout = absl::Milliseconds(100);
  StartServer(Echo, options);
  RawClient client(server_->port());
  ASSERT_TRUE(client.Send(Get("/x")));
  EXPECT_EQ(BodyOf(client.ReadResponse()), "GET /x ");
  EXPECT_TRUE(client.WaitForClose(absl::Seconds(2)));
}

TEST_F(HttpServerTest, DestroyingTheServerEndsResponsesAndLeavesRespondersHarmless) {
  HeldResponders held;
  StartServer(held.Handler());
  RawClient client(server_->port());
  std::shared_ptr<HttpResponder> responder = SendAndAwait(client, held, Get("/stream"));
  ASSERT_NE(responder, nullptr);
  std::atomic<int> num_gone{0};
  responder->OnClientGone([&num_gone] { ++num_gone; });
  responder->StartStream(200, "text/event-stream");

  server_.reset();
  EXPECT_EQ(num_gone.load(), 1);
  EXPECT_TRUE(responder->client_gone());
  EXPECT_TRUE(client.WaitForClose());
  responder->Write("data: late\n\n");
  responder->FinishStream();
  responder->Send(200, "text/plain", "x");
}

TEST(HttpServerStartTest, RejectsBadOptions) {
  {
    HttpServerOptions options;
    options.port = 0;
    options.max_stream_buffer_bytes = 0;
    EXPECT_FALSE(HttpServer::Start(options, [](const HttpRequest&, std::shared_ptr<HttpResponder>) {}).ok());
  }
  HttpServerOptions options;
  options.num_threads = 0;
  EXPECT_EQ(HttpServer::Start(options, Echo).status().code(), absl::StatusCode::kInvalidArgument);
  options.num_threads = 1;
  options.port = 70000;
  EXPECT_EQ(HttpServer::Start(options, Echo).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(HttpServerStartTest, APortInUseIsAnError) {
  HttpServerOptions options;
  options.port = 0;
  absl::StatusOr<std::unique_ptr<HttpServer>> first = HttpServer::Start(options, Echo);
  ASSERT_TRUE(first.ok()) << first.status();
  options.port = (*first)->port();
  EXPECT_EQ(HttpServer::Start(options, Echo).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace duet::api
