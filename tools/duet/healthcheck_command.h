// `duet healthcheck`: one probe of a running duet process, for container
// healthchecks (docker-compose) and scripts. Exit 0 when healthy, 1 when not
// (with the reason on stderr).
//   --url http://HOST:PORT/PATH   an HTTP GET that must answer 200 (the
//                                 router's /health)
//   --grpc-address HOST:PORT      grpc.health.v1 Check that must answer
//                                 SERVING (duet-worker, duet-router's gRPC)
#ifndef DUET_TOOLS_DUET_HEALTHCHECK_COMMAND_H_
#define DUET_TOOLS_DUET_HEALTHCHECK_COMMAND_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace duet::cli {

struct HealthcheckOptions {
  std::string url;           // http://host:port/path; empty: no HTTP probe
  std::string grpc_address;  // host:port; empty: no gRPC probe
  std::string grpc_service;  // "" asks about the server as a whole
  absl::Duration timeout = absl::Seconds(3);
};

// OK when every probe asked for passes; InvalidArgument for bad options,
// Unavailable naming what failed otherwise.
absl::Status RunHealthcheck(const HealthcheckOptions& options);

}  // namespace duet::cli

#endif  // DUET_TOOLS_DUET_HEALTHCHECK_COMMAND_H_
