#include "tools/duet/healthcheck_command.h"

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "boost/asio/connect.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/core/tcp_stream.hpp"
#include "boost/beast/http.hpp"
#include "common/str_cat.h"
#include "tools/bench_serve/http_stream.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace duet::cli {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

absl::Status ProbeHttp(const std::string& url, absl::Duration timeout) {
  absl::StatusOr<bench::HttpUrl> url_parts = bench::ParseHttpUrl(url);
  if (!url_parts.ok()) return absl::InvalidArgumentError(StrCat("--url: ", url_parts.status().message()));
  const bench::HttpUrl& parsed = *url_parts;
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(absl::ToChronoMilliseconds(timeout));
  beast::error_code error;
  asio::ip::tcp::resolver resolver(io);
  const auto endpoints = resolver.resolve(parsed.host, parsed.port, error);
  if (error) return absl::UnavailableError(StrCat("cannot resolve ", parsed.host, ": ", error.message()));
  stream.connect(endpoints, error);
  if (error) return absl::UnavailableError(StrCat("cannot connect to ", url, ": ", error.message()));
  http::request<http::empty_body> request(http::verb::get, parsed.path, 11);
  request.set(http::field::host, parsed.host);
  request.set(http::field::connection, "close");
  http::write(stream, request, error);
  if (error) return absl::UnavailableError(StrCat("cannot send to ", url, ": ", error.message()));
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response, error);
  if (error) return absl::UnavailableError(StrCat("no answer from ", url, ": ", error.message()));
  if (response.result() != http::status::ok) {
    return absl::UnavailableError(StrCat(url, " answered ", response.result_int(), ": ", response.body()));
  }
  return absl::OkStatus();
}

absl::Status ProbeGrpc(const std::string& address, const std::string& service, absl::Duration timeout) {
  std::shared_ptr<grpc::Channel> channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  std::unique_ptr<grpc::health::v1::Health::Stub> stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) {
    return absl::UnavailableError(
        StrCat("health check of ", address, " failed: ", status.error_message(), " (code ",
               static_cast<int>(status.error_code()), ")"));
  }
  if (response.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    return absl::UnavailableError(StrCat(
        address, " is ", grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status())));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RunHealthcheck(const HealthcheckOptions& options) {
  if (options.url.empty() && options.grpc_address.empty()) {
    return absl::InvalidArgumentError("give --url, --grpc-address or both");
  }
  if (options.timeout <= absl::ZeroDuration()) return absl::InvalidArgumentError("--timeout must be positive");
  if (!options.url.empty()) {
    if (absl::Status status = ProbeHttp(options.url, options.timeout); !status.ok()) return status;
  }
  if (!options.grpc_address.empty()) {
    return ProbeGrpc(options.grpc_address, options.grpc_service, options.timeout);
  }
  return absl::OkStatus();
}

}  // namespace duet::cli
