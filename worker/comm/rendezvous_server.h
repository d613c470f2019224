// The key-value server Gloo ranks rendezvous through (rank 0 owns it).
//
// Rank 0 calls GlooRendezvous::Start, hands bootstrap() to every rank (the
// router carries it in Init), and keeps the object alive while the group
// forms; the worker keeps it as long as its communicator lives. Destroying it
// stops the server: the listening socket and every client connection are
// shut down and the server threads joined.
//
// Keys are set once (a second set of the same key is refused, so a rank that
// joins twice is an error rather than a silent overwrite). Clients must send
// the bootstrap's token first; a wrong token is refused with a message.
//
// Thread-safe; the server runs one accept thread plus one thread per client
// connection (one per rank).
#ifndef DUET_WORKER_COMM_RENDEZVOUS_SERVER_H_
#define DUET_WORKER_COMM_RENDEZVOUS_SERVER_H_

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "worker/comm/socket_io.h"

namespace duet::worker {

class GlooRendezvous {
 public:
  // Listens on host:0 (an ephemeral port). `host` is the address other ranks
  // reach rank 0 by ("127.0.0.1" on one machine, a hostname in docker).
  static absl::StatusOr<std::unique_ptr<GlooRendezvous>> Start(const std::string& host);

  ~GlooRendezvous();
  GlooRendezvous(const GlooRendezvous&) = delete;
  GlooRendezvous& operator=(const GlooRendezvous&) = delete;

  // "<host>:<port>/<token>".
  const std::string& bootstrap() const { return bootstrap_; }

 private:
  GlooRendezvous(ScopedFd listen_fd, std::string token, std::string bootstrap);

  void AcceptLoop();
  void Serve(int fd);
  // Answers one request; false closes the connection.
  bool Handle(std::string_view request, bool* greeted, std::string* reply);

  const ScopedFd listen_fd_;
  const std::string token_;
  const std::string bootstrap_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int world_size_ ABSL_GUARDED_BY(mu_) = 0;  // from the first hello
  std::map<std::string, std::string> values_ ABSL_GUARDED_BY(mu_);
  std::vector<ScopedFd> connections_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> connection_threads_ ABSL_GUARDED_BY(mu_);

  std::thread accept_thread_;
};

}  // namespace duet::worker

#endif  // DUET_WORKER_COMM_RENDEZVOUS_SERVER_H_
