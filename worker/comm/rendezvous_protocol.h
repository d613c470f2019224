// What the Gloo rendezvous server (rendezvous_server.h) and its clients
// (rendezvous_store.h) agree on: the bootstrap string and the request/reply
// bytes inside socket_io.h frames.
//
// Bootstrap: "<host>:<port>/<token>"; the token is random per group so a stale
// bootstrap from an earlier group is refused instead of joining the wrong one.
//
// Requests (first byte = op):
//   'H' <u32 rank> <u32 world_size> <token>   hello; must come first
//   'S' <u32 key length> <key> <value>         set (each key once)
//   'G' <key>                                  get (does not wait)
// Replies: 'Y' <value or nothing>, 'N' (no such key), 'E' <message>.
#ifndef DUET_WORKER_COMM_RENDEZVOUS_PROTOCOL_H_
#define DUET_WORKER_COMM_RENDEZVOUS_PROTOCOL_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace duet::worker::rendezvous {

inline constexpr char kHello = 'H';
inline constexpr char kSet = 'S';
inline constexpr char kGet = 'G';
inline constexpr char kReplyOk = 'Y';
inline constexpr char kReplyMissing = 'N';
inline constexpr char kReplyError = 'E';

struct Bootstrap {
  std::string host;
  int port = 0;
  std::string token;
};

std::string FormatBootstrap(const Bootstrap& bootstrap);
// InvalidArgument unless `text` is "<host>:<port>/<token>" with a port in
// 1..65535 and a non-empty token. An IPv6 host may be written in brackets.
absl::StatusOr<Bootstrap> ParseBootstrap(std::string_view text);

// 32 hex digits from std::random_device.
std::string MakeToken();

void AppendU32(std::string* out, uint32_t value);
// Reads a u32 at the front of *in and drops it; false when too short.
bool ConsumeU32(std::string_view* in, uint32_t* value);

}  // namespace duet::worker::rendezvous

#endif  // DUET_WORKER_COMM_RENDEZVOUS_PROTOCOL_H_
