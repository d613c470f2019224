// HttpServer over Boost.Beast/Asio.
//
// Threads and ownership: one io_context run by options.num_threads threads.
// Each accepted socket gets a Connection (shared_ptr) whose socket and timer
// live on their own strand, so everything a Connection does runs serially;
// pending Asio operations hold the shared_ptr, and nothing else does for long.
// A responder holds the connection only weakly and posts onto its strand
// while holding ServerCore::post_mu; once the server has set `stopped`, no
// more posts happen, so the io_context can be torn down safely even while
// engine threads still hold responders.
//
// One connection, one request at a time:
//   kReadingRequest ─ request ─▶ kResponding ─ complete ─▶ kResuming ─▶ kReadingRequest
//          │ 413/400/431/503        │ no keep-alive / client gone
//          ▼                        ▼
//     kFinalWrite ─────────▶ kLingering ─────────▶ kClosed
// While kResponding, a read stays pending on the socket (bytes that arrive
// are kept for the next request) so a client that leaves is seen at once.
#include "router/api/http_server.h"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status_macros.h"
#include "common/str_cat.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"

namespace duet::api {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Strand = asio::strand<asio::io_context::executor_type>;
using Socket = tcp::socket::rebind_executor<Strand>::other;
using Acceptor = tcp::acceptor::rebind_executor<Strand>::other;
using Timer = asio::steady_timer::rebind_executor<Strand>::other;
using Headers = std::map<std::string, std::string>;

constexpr uint32_t kMaxHeaderBytes = 64 << 10;
constexpr size_t kReadChunkBytes = 16 << 10;
// After the last response on a connection: how long, and how much, the
// server reads and discards so that closing does not reset the connection
// (and lose the response) while the client is still sending.
constexpr absl::Duration kLingerTimeout = absl::Seconds(1);
constexpr size_t kMaxLingerBytes = 1 << 20;
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(50);

beast::string_view ToBeast(std::string_view s) { return beast::string_view(s.data(), s.size()); }
std::string_view ToStd(beast::string_view s) { return std::string_view(s.data(), s.size()); }

std::string LowerAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) { return LowerAscii(a) == LowerAscii(b); }

// The OpenAI error envelope.
std::string ErrorBody(std::string_view message, std::string_view type) {
  nlohmann::json error = {{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}};
  return nlohmann::json{{"error", std::move(error)}}.dump();
}

// The status line and headers of a response; a body of `content_length`
// bytes follows, or chunks when it is nullopt.
std::string ResponseHead(int status, std::string_view content_type, const Headers& extra_headers,
                         std::optional<size_t> content_length, bool keep_alive) {
  http::response_header<> head;
  head.version(11);
  head.result(static_cast<unsigned>(status));
  for (const auto& [name, value] : extra_headers) head.set(ToBeast(name), ToBeast(value));
  head.set(http::field::content_type, ToBeast(content_type));
  if (content_length.has_value()) {
    head.set(http::field::content_length, std::to_string(*content_length));
  } else {
    head.set(http::field::transfer_encoding, "chunked");
  }
  if (!keep_alive) head.set(http::field::connection, "close");
  std::ostringstream out;
  out << head;
  return out.str();
}

class Connection;

// What the server, its connections and its responders share. A responder
// may keep it alive after the server is gone.
struct ServerCore {
  ServerCore(HttpServerOptions options_in, HttpHandler handler_in)
      : options(std::move(options_in)), handler(std::move(handler_in)) {}

  const HttpServerOptions options;
  const HttpHandler handler;
  std::atomic<bool> draining{false};
  std::atomic<int> num_in_flight{0};

  // Held while posting onto a connection's strand (and while registering a
  // new connection): once `stopped` is set, nothing reaches the io_context.
  // Lock order: post_mu before connections_mu.
  absl::Mutex post_mu;
  bool stopped ABSL_GUARDED_BY(post_mu) = false;

  absl::Mutex connections_mu;
  std::unordered_map<const Connection*, std::weak_ptr<Connection>> connections ABSL_GUARDED_BY(connections_mu);
};

// One request's fate, shared by its responder (any thread) and its
// connection (strand). Thread-safe.
class Exchange {
 public:
  // Runs `callback` now, on the caller's thread, if the client is already
  // gone; drops it if the response is already complete.
  void SetGoneCallback(std::function<void()> callback) {
    {
      absl::MutexLock lock(&mu_);
      if (complete_) return;
      if (!gone_) {
        on_gone_ = std::move(callback);
        return;
      }
    }
    if (callback) callback();
  }

  // The client left before the response was complete: runs the callback
  // (at most once over the exchange's life).
  void MarkGone() {
    std::function<void()> callback;
    {
      absl::MutexLock lock(&mu_);
      if (complete_ || gone_) return;
      gone_ = true;
      callback = std::move(on_gone_);
    }
    if (callback) callback();
  }

  void MarkComplete() {
    std::function<void()> dropped;
    absl::MutexLock lock(&mu_);
    complete_ = true;
    dropped = std::move(on_gone_);
  }

  bool gone() const {
    absl::MutexLock lock(&mu_);
    return gone_;
  }

 private:
  mutable absl::Mutex mu_;
  bool gone_ ABSL_GUARDED_BY(mu_) = false;
  bool complete_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void()> on_gone_ ABSL_GUARDED_BY(mu_);
};

// One client connection. Every method but the constructor, the destructor
// and strand() runs on the connection's strand.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<ServerCore> core, Socket socket)
      : core_(std::move(core)), strand_(socket.get_executor()), socket_(std::move(socket)), timer_(strand_) {}

  ~Connection() {
    absl::MutexLock lock(&core_->connections_mu);
    core_->connections.erase(this);
  }

  const Strand& strand() const { return strand_; }

  void Start() {
    if (phase_ == Phase::kClosed) return;  // the server stopped first
    beast::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);  // events go out as they are written
    ReadRequest();
  }

  // Closes the socket at once; a response in progress ends as if the client
  // had left.
  void Close() {
    if (phase_ == Phase::kClosed) return;
    const bool was_responding = phase_ == Phase::kResponding;
    phase_ = Phase::kClosed;
    CancelTimer();
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    out_queue_.clear();  // writing_batch_ stays until its write completes
    queued_bytes_ = BytesOf(writing_batch_);
    if (was_responding && exchange_ != nullptr) {
      core_->num_in_flight.fetch_sub(1);
      std::shared_ptr<Exchange> exchange = std::move(exchange_);
      exchange->MarkGone();
    }
  }

  // The responder's calls, posted onto the strand. Calls for an exchange
  // that is no longer current (completed, or its client gone) are ignored.
  void Send(const Exchange* exchange, int status, std::string_view content_type, std::string body,
            const Headers& headers) {
    if (!IsCurrent(exchange)) return;
    if (response_started_) {
      LOG(DFATAL) << "HttpResponder::Send after the response was started";
      return;
    }
    response_started_ = true;
    response_finished_ = true;
    std::string bytes = ResponseHead(status, content_type, headers, body.size(), keep_alive_);
    bytes += body;
    Enqueue(std::move(bytes));
  }

  void StartStream(const Exchange* exchange, int status, std::string_view content_type, Headers headers) {
    if (!IsCurrent(exchange)) return;
    if (response_started_) {
      LOG(DFATAL) << "HttpResponder::StartStream after the response was started";
      return;
    }
    response_started_ = true;
    if (LowerAscii(content_type).rfind("text/event-stream", 0) == 0) {
      // Proxies must pass events on as they come.
      headers.emplace("Cache-Control", "no-cache");
      headers.emplace("X-Accel-Buffering", "no");
    }
    Enqueue(ResponseHead(status, content_type, headers, std::nullopt, keep_alive_));
  }

  void Write(const Exchange* exchange, std::string_view data) {
    if (!IsCurrent(exchange)) return;
    if (!response_started_ || response_finished_) {
      LOG(DFATAL) << "HttpResponder::Write outside StartStream ... FinishStream";
      return;
    }
    if (data.empty()) return;  // an empty chunk would end the stream
    if (queued_bytes_ + data.size() > static_cast<size_t>(core_->options.max_stream_buffer_bytes)) {
      LOG(WARNING) << "a client stopped reading its stream (" << queued_bytes_
                   << " bytes unsent): closing the connection";
      Close();
      return;
    }
    Enqueue(duet::StrCat(absl::Hex(data.size()), "\r\n", data, "\r\n"));
  }

  void FinishStream(const Exchange* exchange) {
    if (!IsCurrent(exchange)) return;
    if (!response_started_ || response_finished_) {
      LOG(DFATAL) << "HttpResponder::FinishStream outside StartStream ... FinishStream";
      return;
    }
    response_finished_ = true;
    Enqueue("0\r\n\r\n");
  }

 private:
  enum class Phase { kReadingRequest, kResponding, kResuming, kFinalWrite, kLingering, kClosed };

  bool IsCurrent(const Exchange* exchange) const {
    return phase_ == Phase::kResponding && exchange != nullptr && exchange == exchange_.get();
  }

  // ---- Reading a request.

  void ReadRequest() {
    phase_ = Phase::kReadingRequest;
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    parser_->body_limit(static_cast<uint64_t>(core_->options.max_body_bytes));
    ArmTimer(core_->options.idle_timeout);
    reading_ = true;
    http::async_read_header(socket_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeaderRead(ec); });
  }

  void OnHeaderRead(beast::error_code ec) {
    reading_ = false;
    if (phase_ == Phase::kClosed) return;
    if (ec) {
      OnRequestFailed(ec);
      return;
    }
    const auto& fields = parser_->get();
    const auto expect = fields.find(http::field::expect);
    if (expect != fields.end() && EqualsIgnoreCase(ToStd(expect->value()), "100-continue")) {
      Enqueue("HTTP/1.1 100 Continue\r\n\r\n");
    }
    ArmTimer(core_->options.idle_timeout);
    reading_ = true;
    http::async_read(socket_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->OnBodyRead(ec); });
  }

  void OnBodyRead(beast::error_code ec) {
    reading_ = false;
    if (phase_ == Phase::kClosed) return;
    CancelTimer();
    if (ec) {
      OnRequestFailed(ec);
      return;
    }
    HandleRequest();
  }

  void OnRequestFailed(beast::error_code ec) {
    static const beast::error_category& http_category = make_error_code(http::error::bad_target).category();
    if (ec == http::error::body_limit) {
      RespondAndClose(413, ErrorBody(duet::StrCat("the request body is larger than the limit of ",
                                                  core_->options.max_body_bytes, " bytes"),
                                     "invalid_request_error"));
    } else if (ec == http::error::header_limit) {
      RespondAndClose(431, ErrorBody(duet::StrCat("the request headers are larger than the limit of ",
                                                  kMaxHeaderBytes, " bytes"),
                                     "invalid_request_error"));
    } else if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
               &ec.category() != &http_category) {
      Close();  // the client left, the socket failed, or the idle timer closed it
    } else {
      RespondAndClose(400, ErrorBody("the request is not valid HTTP/1.1", "invalid_request_error"));
    }
  }

  void HandleRequest() {
    http::request<http::string_body> message = parser_->release();
    parser_.reset();
    keep_alive_ = message.keep_alive();
    if (core_->draining.load()) {
      RespondAndClose(503, ErrorBody("the server is shutting down", "server_error"));
      return;
    }

    HttpRequest request;
    request.method = std::string(ToStd(message.method_string()));
    request.target = std::string(ToStd(message.target()));
    request.path = request.target.substr(0, request.target.find('?'));
    for (const auto& field : message) {
      std::string& value = request.headers[LowerAscii(ToStd(field.name_string()))];
      if (!value.empty()) value += ", ";
      value += ToStd(field.value());
    }
    request.body = std::move(message.body());

    phase_ = Phase::kResponding;
    exchange_ = std::make_shared<Exchange>();
    response_started_ = false;
    response_finished_ = false;
    core_->num_in_flight.fetch_add(1);
    ReadSome();  // watches for the client leaving
    core_->handler(request, MakeResponder());
  }

  std::shared_ptr<HttpResponder> MakeResponder();

  // ---- Reading while not parsing: watching a response, or lingering.

  void ReadSome() {
    reading_ = true;
    socket_.async_read_some(buffer_.prepare(kReadChunkBytes), [self = shared_from_this()](beast::error_code ec,
                                                                                          size_t num_bytes) {
      self->OnReadSome(ec, num_bytes);
    });
  }

  void OnReadSome(beast::error_code ec, size_t num_bytes) {
    reading_ = false;
    if (phase_ == Phase::kClosed) return;
    if (!ec) buffer_.commit(num_bytes);
    switch (phase_) {
      case Phase::kResponding: {
        // Pipelined bytes are kept for the next request, up to one request.
        const size_t max_buffered_bytes = static_cast<size_t>(core_->options.max_body_bytes) + kMaxHeaderBytes;
        if (ec || buffer_.size() > max_buffered_bytes) {
          Close();
          return;
        }
        ReadSome();
        return;
      }
      case Phase::kResuming:
        if (ec && ec != asio::error::operation_aborted) {
          Close();
          return;
        }
        ReadRequest();
        return;
      case Phase::kLingering:
        lingered_bytes_ += num_bytes;
        buffer_.consume(buffer_.size());
        if (ec || lingered_bytes_ > kMaxLingerBytes) {
          Close();
          return;
        }
        ReadSome();
        return;
      default:
        LOG(DFATAL) << "a plain read completed while parsing or writing an error";
        Close();
    }
  }

  // ---- Writing.

  static size_t BytesOf(const std::deque<std::string>& queue) {
    size_t bytes = 0;
    for (const std::string& piece : queue) bytes += piece.size();
    return bytes;
  }

  void Enqueue(std::string bytes) {
    queued_bytes_ += bytes.size();
    out_queue_.push_back(std::move(bytes));
    if (!writing_) WriteQueued();
  }

  void WriteQueued() {
    writing_batch_ = std::move(out_queue_);
    out_queue_.clear();
    std::vector<asio::const_buffer> buffers;
    buffers.reserve(writing_batch_.size());
    for (const std::string& bytes : writing_batch_) buffers.push_back(asio::buffer(bytes));
    writing_ = true;
    asio::async_write(socket_, buffers,
                      [self = shared_from_this()](beast::error_code ec, size_t) { self->OnWrite(ec); });
  }

  void OnWrite(beast::error_code ec) {
    writing_ = false;
    queued_bytes_ -= BytesOf(writing_batch_);
    writing_batch_.clear();
    if (phase_ == Phase::kClosed) return;
    if (ec) {
      Close();
      return;
    }
    if (!out_queue_.empty()) {
      WriteQueued();
    } else if (phase_ == Phase::kResponding && response_finished_) {
      FinishExchange();
    } else if (phase_ == Phase::kFinalWrite) {
      StartLinger();
    }
  }

  // The response is out: on to the next request, or close.
  void FinishExchange() {
    exchange_->MarkComplete();
    exchange_.reset();
    core_->num_in_flight.fetch_sub(1);
    if (!keep_alive_) {
      StartLinger();
    } else if (reading_) {
      // The watching read must finish before the parser reads.
      phase_ = Phase::kResuming;
      beast::error_code ignored;
      socket_.cancel(ignored);
    } else {
      ReadRequest();
    }
  }

  // An answer the server gives itself, after which it closes.
  void RespondAndClose(int status, std::string body) {
    phase_ = Phase::kFinalWrite;
    keep_alive_ = false;
    std::string bytes = ResponseHead(status, "application/json", {}, body.size(), /*keep_alive=*/false);
    bytes += body;
    Enqueue(std::move(bytes));
  }

  void StartLinger() {
    phase_ = Phase::kLingering;
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    if (ec) {
      Close();
      return;
    }
    lingered_bytes_ = 0;
    buffer_.consume(buffer_.size());
    ArmTimer(kLingerTimeout);
    if (!reading_) ReadSome();
  }

  // ---- The one timer: idle between requests, or the end of lingering.

  void ArmTimer(absl::Duration timeout) {
    CancelTimer();
    if (timeout == absl::InfiniteDuration()) return;
    timer_.expires_after(absl::ToChronoNanoseconds(timeout));
    timer_.async_wait([self = shared_from_this(), generation = timer_generation_](beast::error_code ec) {
      if (!ec && generation == self->timer_generation_) self->Close();
    });
  }

  void CancelTimer() {
    ++timer_generation_;
    timer_.cancel();
  }

  const std::shared_ptr<ServerCore> core_;
  const Strand strand_;
  Socket socket_;
  Timer timer_;
  uint64_t timer_generation_ = 0;

  Phase phase_ = Phase::kReadingRequest;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool reading_ = false;  // a read (of any kind) is pending on socket_
  size_t lingered_bytes_ = 0;

  // The request being answered (kResponding only).
  std::shared_ptr<Exchange> exchange_;
  bool keep_alive_ = true;
  bool response_started_ = false;
  bool response_finished_ = false;  // its last bytes are queued

  std::deque<std::string> out_queue_;
  std::deque<std::string> writing_batch_;  // what the pending write sends
  size_t queued_bytes_ = 0;                // in out_queue_ and writing_batch_
  bool writing_ = false;
};

class Responder final : public HttpResponder {
 public:
  Responder(std::shared_ptr<ServerCore> core, std::weak_ptr<Connection> connection,
            std::shared_ptr<Exchange> exchange)
      : core_(std::move(core)), connection_(std::move(connection)), exchange_(std::move(exchange)) {}

  void Send(int status, std::string content_type, std::string body, Headers headers) override {
    CHECK(status >= 100 && status <= 999) << "HTTP status " << status;
    Post([status, content_type = std::move(content_type), body = std::move(body),
          headers = std::move(headers)](Connection& connection, const Exchange* exchange) mutable {
      connection.Send(exchange, status, content_type, std::move(body), headers);
    });
  }

  void StartStream(int status, std::string content_type, Headers headers) override {
    CHECK(status >= 100 && status <= 999) << "HTTP status " << status;
    Post([status, content_type = std::move(content_type), headers = std::move(headers)](
             Connection& connection, const Exchange* exchange) mutable {
      connection.StartStream(exchange, status, content_type, std::move(headers));
    });
  }

  void Write(std::string data) override {
    Post([data = std::move(data)](Connection& connection, const Exchange* exchange) {
      connection.Write(exchange, data);
    });
  }

  void FinishStream() override {
    Post([](Connection& connection, const Exchange* exchange) { connection.FinishStream(exchange); });
  }

  void OnClientGone(std::function<void()> callback) override { exchange_->SetGoneCallback(std::move(callback)); }

  bool client_gone() const override { return exchange_->gone(); }

 private:
  template <typename Fn>
  void Post(Fn fn) {
    if (exchange_->gone()) return;
    absl::MutexLock lock(&core_->post_mu);
    if (core_->stopped) return;
    // Locked and released under post_mu: the server cannot finish stopping
    // while this thread holds the connection.
    std::shared_ptr<Connection> connection = connection_.lock();
    if (connection == nullptr) return;
    const Strand strand = connection->strand();
    asio::post(strand, [connection = std::move(connection), exchange = exchange_, fn = std::move(fn)]() mutable {
      fn(*connection, exchange.get());
    });
  }

  const std::shared_ptr<ServerCore> core_;
  const std::weak_ptr<Connection> connection_;
  const std::shared_ptr<Exchange> exchange_;
};

std::shared_ptr<HttpResponder> Connection::MakeResponder() {
  return std::make_shared<Responder>(core_, weak_from_this(), exchange_);
}

class AsioHttpServer final : public HttpServer {
 public:
  explicit AsioHttpServer(std::shared_ptr<ServerCore> core)
      : core_(std::move(core)), acceptor_(asio::make_strand(io_context_)), retry_timer_(acceptor_.get_executor()) {}

  ~AsioHttpServer() override {
    {
      absl::MutexLock lock(&core_->post_mu);
      core_->stopped = true;
    }
    asio::post(acceptor_.get_executor(), [this] {
      beast::error_code ignored;
      acceptor_.close(ignored);
      retry_timer_.cancel();
    });
    std::vector<std::shared_ptr<Connection>> connections;
    {
      absl::MutexLock lock(&core_->connections_mu);
      for (const auto& [key, weak] : core_->connections) {
        if (std::shared_ptr<Connection> connection = weak.lock()) connections.push_back(std::move(connection));
      }
    }
    for (std::shared_ptr<Connection>& connection : connections) {
      const Strand strand = connection->strand();
      asio::post(strand, [connection = std::move(connection)] { connection->Close(); });
    }
    // With the acceptor and every connection closed, run() runs out of work.
    for (std::thread& thread : threads_) thread.join();
  }

  absl::Status Listen() {
    const HttpServerOptions& options = core_->options;
    beast::error_code ec;
    tcp::resolver resolver(io_context_);
    const auto endpoints = resolver.resolve(options.host, std::to_string(options.port),
                                            tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec || endpoints.empty()) {
      return absl::InvalidArgumentError(duet::StrCat("cannot resolve HTTP host '", options.host, "': ", ec.message()));
    }
    const tcp::endpoint endpoint = endpoints.begin()->endpoint();
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError(
          duet::StrCat("cannot listen on ", options.host, ":", options.port, ": ", ec.message()));
    }
    port_ = acceptor_.local_endpoint().port();
    return absl::OkStatus();
  }

  void Run() {
    Accept();  // before the threads start, so that run() has work
    for (int i = 0; i < core_->options.num_threads; ++i) {
      threads_.emplace_back([this] { io_context_.run(); });
    }
  }

  int port() const override { return port_; }
  void StopAccepting() override { core_->draining.store(true); }
  int num_in_flight() const override { return core_->num_in_flight.load(); }

 private:
  void Accept() {
    acceptor_.async_accept(asio::make_strand(io_context_), [this](beast::error_code ec, Socket socket) {
      OnAccept(ec, std::move(socket));
    });
  }

  void OnAccept(beast::error_code ec, Socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (ec) {
      // Out of file descriptors, say: try again shortly rather than spin.
      LOG(WARNING) << "HTTP accept failed: " << ec.message();
      retry_timer_.expires_after(kAcceptRetryDelay);
      retry_timer_.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec) Accept();
      });
      return;
    }
    auto connection = std::make_shared<Connection>(core_, std::move(socket));
    {
      absl::MutexLock lock(&core_->post_mu);
      if (core_->stopped) return;
      absl::MutexLock connections_lock(&core_->connections_mu);
      core_->connections.emplace(connection.get(), connection);
    }
    const Strand strand = connection->strand();
    asio::post(strand, [connection = std::move(connection)] { connection->Start(); });
    Accept();
  }

  asio::io_context io_context_;  // first member: destroyed last
  const std::shared_ptr<ServerCore> core_;
  Acceptor acceptor_;
  Timer retry_timer_;
  std::vector<std::thread> threads_;
  int port_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                              HttpHandler handler) {
  if (options.num_threads < 1) return absl::InvalidArgumentError("HTTP server needs at least one thread");
  if (options.max_body_bytes < 0) return absl::InvalidArgumentError("max_body_bytes must not be negative");
  if (options.max_stream_buffer_bytes < 1) {
    return absl::InvalidArgumentError("max_stream_buffer_bytes must be positive");
  }
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(duet::StrCat("invalid HTTP port ", options.port));
  }
  CHECK(handler != nullptr);
  auto server = std::make_unique<AsioHttpServer>(std::make_shared<ServerCore>(options, std::move(handler)));
  DUET_RETURN_IF_ERROR(server->Listen());
  server->Run();
  return server;
}

}  // namespace duet::api
