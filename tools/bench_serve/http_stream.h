// A minimal HTTP/1.1 client for `duet bench serve`: one POST per connection,
// the response body handed over as it arrives (so the caller can time each
// server-sent event), every wait bounded by a deadline. Only what the
// benchmark needs: http:// URLs, identity or chunked bodies, or a body that
// ends when the server closes the connection.
#ifndef DUET_TOOLS_BENCH_SERVE_HTTP_STREAM_H_
#define DUET_TOOLS_BENCH_SERVE_HTTP_STREAM_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace duet::bench {

struct HttpUrl {
  std::string host;
  std::string port;  // "80" when the URL names none
  std::string path;  // "/" when the URL names none
};

// "http://host[:port][/path]"; InvalidArgument naming the URL otherwise.
absl::StatusOr<HttpUrl> ParseHttpUrl(std::string_view url);

// Incremental decoder of one HTTP/1.1 response: the status line and headers,
// then the body (Content-Length, chunked, or until the connection closes).
class ResponseDecoder {
 public:
  // Consumes `bytes`; appends decoded body bytes to *body. InvalidArgument for
  // a malformed status line, header block or chunk framing.
  absl::Status Feed(std::string_view bytes, std::string* body);
  // The connection closed: an error unless the response was complete or its
  // body runs to the close.
  absl::Status Close();

  bool headers_done() const { return state_ > State::kHeaders; }
  bool done() const { return state_ == State::kDone; }
  int status_code() const { return status_code_; }
  // Lower-cased name; empty when absent.
  std::string Header(std::string_view name) const;

 private:
  enum class State { kHeaders, kIdentity, kUntilClose, kChunkSize, kChunkData, kChunkDataEnd, kTrailers, kDone };
  absl::Status ParseHeaders(std::string_view block);

  State state_ = State::kHeaders;
  std::string pending_;  // bytes not yet consumed (headers, chunk-size lines)
  int status_code_ = 0;
  std::vector<std::pair<std::string, std::string>> headers_;
  uint64_t remaining_ = 0;  // of the identity body or the current chunk
};

struct HttpRequest {
  HttpUrl url;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Host, Content-Length
};

// POSTs `request` and calls `on_body` with each piece of the decoded body as
// it arrives; returns the status code once the response is complete.
// DeadlineExceeded when `deadline` passes first, Unavailable when the server
// cannot be reached or closes the connection early.
absl::StatusOr<int> PostStreaming(const HttpRequest& request,
                                  std::chrono::steady_clock::time_point deadline,
                                  const std::function<void(std::string_view)>& on_body);

}  // namespace duet::bench

#endif  // DUET_TOOLS_BENCH_SERVE_HTTP_STREAM_H_
