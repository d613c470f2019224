#include "worker/comm/rendezvous_protocol.h"

#include <charconv>
#include <random>

#include "common/str_cat.h"

namespace duet::worker::rendezvous {

std::string FormatBootstrap(const Bootstrap& bootstrap) {
  const bool ipv6 = bootstrap.host.find(':') != std::string::npos;
  return ipv6 ? StrCat("[", bootstrap.host, "]:", bootstrap.port, "/", bootstrap.token)
              : StrCat(bootstrap.host, ":", bootstrap.port, "/", bootstrap.token);
}

absl::StatusOr<Bootstrap> ParseBootstrap(std::string_view text) {
  const auto invalid = [&](std::string_view why) {
    return absl::InvalidArgumentError(StrCat("malformed gloo bootstrap '", text, "': ", why,
                                             " (expected <host>:<port>/<token>)"));
  };
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) return invalid("no token");
  const std::string_view address = text.substr(0, slash);
  Bootstrap bootstrap;
  bootstrap.token = std::string(text.substr(slash + 1));
  if (bootstrap.token.empty()) return invalid("empty token");
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return invalid("no host:port");
  std::string_view host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) return invalid("empty host");
  bootstrap.host = std::string(host);
  const std::string_view port = address.substr(colon + 1);
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), bootstrap.port);
  if (ec != std::errc() || end != port.data() + port.size() || bootstrap.port < 1 ||
      bootstrap.port > 65535) {
    return invalid("bad port");
  }
  return bootstrap;
}

std::string MakeToken() {
  std::random_device random;
  std::string token;
  constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 4; ++i) {
    const uint32_t word = random();
    for (int nibble = 0; nibble < 8; ++nibble) token.push_back(kHex[(word >> (4 * nibble)) & 15]);
  }
  return token;
}

void AppendU32(std::string* out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

bool ConsumeU32(std::string_view* in, uint32_t* value) {
  if (in->size() < 4) return false;
  *value = 0;
  for (int i = 0; i < 4; ++i) {
    *value |= static_cast<uint32_t>(static_cast<unsigned char>((*in)[i])) << (8 * i);
  }
  in->remove_prefix(4);
  return true;
}

}  // namespace duet::worker::rendezvous
