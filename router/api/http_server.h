// A small asynchronous HTTP/1.1 server (Boost.Beast over Asio) for the
// router's OpenAI-compatible gateway: keep-alive, a request-body limit,
// complete and streamed (server-sent events) responses, and notice of a
// client that goes away mid-stream.
//
// The server knows nothing about OpenAI: every request goes to one
// HttpHandler, which answers through an HttpResponder, now or later and from
// any thread (the engine's output thread streams events through it).
//
// A streamed response never waits for a slow client: its bytes are queued,
// and past max_stream_buffer_bytes the client counts as gone.
//
// Errors the server answers itself, without calling the handler: 413 for a
// body over max_body_bytes, 400 for a request that is not HTTP, 503 while
// draining (see StopAccepting). Their bodies are the OpenAI error envelope.
#ifndef DUET_ROUTER_API_HTTP_SERVER_H_
#define DUET_ROUTER_API_HTTP_SERVER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace duet::api {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: path and query
  std::string path;    // target without the query
  // Header names in lower case.
  std::map<std::string, std::string> headers;
  std::string body;
};

// How one request is answered. Thread-safe; every call returns at once (the
// bytes are queued for the connection). Exactly one of Send or
// StartStream ... FinishStream per request; calls after the client went away
// are ignored.
class HttpResponder {
 public:
  virtual ~HttpResponder() = default;

  // A complete response. `headers` adds to Content-Type and Content-Length.
  virtual void Send(int status, std::string content_type, std::string body,
                    std::map<std::string, std::string> headers = {}) = 0;

  // A streamed response (chunked transfer encoding), e.g. text/event-stream.
  virtual void StartStream(int status, std::string content_type,
                           std::map<std::string, std::string> headers = {}) = 0;
  // Appends to the stream (one SSE event: "data: {...}\n\n").
  virtual void Write(std::string data) = 0;
  // Ends the stream; the connection stays open for the next request.
  virtual void FinishStream() = 0;

  // `callback` runs once, on a server thread, if the client disconnects
  // before the response is complete (at once if it already has).
  virtual void OnClientGone(std::function<void()> callback) = 0;
  virtual bool client_gone() const = 0;
};

using HttpHandler = std::function<void(const HttpRequest& request, std::shared_ptr<HttpResponder> responder)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;  // 0 picks a free port
  int64_t max_body_bytes = int64_t{8} << 20;
  int num_threads = 2;
  // A keep-alive connection with no request for this long is closed.
  absl::Duration idle_timeout = absl::Seconds(60);
  // A stream whose bytes not yet taken by the client pass this (a client
  // that stopped reading) is ended: the connection closes and the handler
  // sees the client gone, so that its work is aborted and freed. Bytes in
  // the kernel's socket buffers do not count.
  int64_t max_stream_buffer_bytes = int64_t{4} << 20;
};

class HttpServer {
 public:
  // Binds and starts serving on its own threads. The handler is called on
  // those threads and must not block.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                           HttpHandler handler);
  // Closes every connection and joins the threads.
  virtual ~HttpServer() = default;

  virtual int port() const = 0;
  // Draining: new requests get 503 (the OpenAI envelope) while responses
  // in progress go on.
  virtual void StopAccepting() = 0;
  // Responses still in progress (requests handed to the handler and not yet
  // answered completely).
  virtual int num_in_flight() const = 0;
};

}  // namespace duet::api

#endif  // DUET_ROUTER_API_HTTP_SERVER_H_
