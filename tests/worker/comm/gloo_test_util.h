// Helpers for Gloo tests: form a group of ranks as threads of this process
// over 127.0.0.1, and run one function per rank concurrently.
#ifndef DUET_TESTS_WORKER_COMM_GLOO_TEST_UTIL_H_
#define DUET_TESTS_WORKER_COMM_GLOO_TEST_UTIL_H_

#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/comm/communicator.h"
#include "worker/comm/gloo_communicator.h"
#include "worker/comm/rendezvous_server.h"

namespace duet::worker::testing {

// Runs fn(rank) for every rank on its own thread; returns each rank's status.
inline std::vector<absl::Status> OnAllRanks(int world_size,
                                            const std::function<absl::Status(int)>& fn) {
  std::vector<absl::Status> statuses(world_size);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < world_size; ++rank) {
    threads.emplace_back([&, rank] { statuses[rank] = fn(rank); });
  }
  for (std::thread& thread : threads) thread.join();
  return statuses;
}

struct GlooGroup {
  std::unique_ptr<GlooRendezvous> rendezvous;  // outlives the communicators
  std::vector<std::unique_ptr<Communicator>> ranks;
};

inline absl::StatusOr<GlooGroup> ConnectGlooGroup(int world_size,
                                                  const CollectiveOptions& options) {
  GlooGroup group;
  auto rendezvous = GlooRendezvous::Start("127.0.0.1");
  if (!rendezvous.ok()) return rendezvous.status();
  group.rendezvous = *std::move(rendezvous);
  group.ranks.resize(world_size);
  const std::string bootstrap = group.rendezvous->bootstrap();
  const std::vector<absl::Status> statuses = OnAllRanks(world_size, [&](int rank) {
    auto comm = ConnectGloo(bootstrap, rank, world_size, "127.0.0.1", options);
    if (!comm.ok()) return comm.status();
    group.ranks[rank] = *std::move(comm);
    return absl::OkStatus();
  });
  for (const absl::Status& status : statuses) {
    if (!status.ok()) return status;
  }
  return group;
}

}  // namespace duet::worker::testing

#endif  // DUET_TESTS_WORKER_COMM_GLOO_TEST_UTIL_H_
