// Communicator over Gloo's TCP transport, for CPU workers.
//
// Forming a group: rank 0 starts a GlooRendezvous (rendezvous_server.h) and
// hands its bootstrap() to every rank; every rank, rank 0 included, calls
// ConnectGloo with it. Buffers are host memory.
//
// AllReduceSum uses Gloo's ring algorithm: each element's sum is finished on
// one rank and then copied to the others, so every rank holds the same bits
// for any world size (the order of the additions, and so the rounding,
// differs from a plain rank-0-first sum when world_size > 2).
//
// Process-wide side effect: ConnectGloo ignores SIGPIPE, because Gloo writes
// with writev(), which would otherwise kill the process when a peer dies.
#ifndef DUET_WORKER_COMM_GLOO_COMMUNICATOR_H_
#define DUET_WORKER_COMM_GLOO_COMMUNICATOR_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "worker/comm/communicator.h"

namespace duet::worker {

// Joins the group described by `bootstrap`. `host` is the address this
// rank's Gloo TCP device binds and advertises to its peers ("127.0.0.1" on
// one machine, the container's hostname in docker). Blocks until all
// world_size ranks have joined; DeadlineExceeded after
// options.connect_timeout, Unavailable when the rendezvous server is gone,
// FailedPrecondition when it refuses this rank (wrong token: a stale
// bootstrap), InvalidArgument for rank outside [0, world_size) or a malformed
// bootstrap. Errors name the bootstrap and the rank. Collectives then fail
// with DeadlineExceeded after options.op_timeout.
absl::StatusOr<std::unique_ptr<Communicator>> ConnectGloo(std::string_view bootstrap, int rank,
                                                          int world_size,
                                                          const std::string& host,
                                                          const CollectiveOptions& options);

}  // namespace duet::worker

#endif  // DUET_WORKER_COMM_GLOO_COMMUNICATOR_H_
