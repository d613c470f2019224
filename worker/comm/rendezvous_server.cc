#include "worker/comm/rendezvous_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <utility>

#include "common/str_cat.h"
#include "glog/logging.h"
#include "worker/comm/rendezvous_protocol.h"

namespace duet::worker {

absl::StatusOr<std::unique_ptr<GlooRendezvous>> GlooRendezvous::Start(const std::string& host) {
  int port = 0;
  auto listen_fd = ListenTcp(host, &port);
  if (!listen_fd.ok()) {
    return absl::Status(listen_fd.status().code(),
                        StrCat("gloo rendezvous cannot listen on ", host, ": ",
                               listen_fd.status().message()));
  }
  std::string token = rendezvous::MakeToken();
  std::string bootstrap = rendezvous::FormatBootstrap({host, port, token});
  return std::unique_ptr<GlooRendezvous>(
      new GlooRendezvous(*std::move(listen_fd), std::move(token), std::move(bootstrap)));
}

GlooRendezvous::GlooRendezvous(ScopedFd listen_fd, std::string token, std::string bootstrap)
    : listen_fd_(std::move(listen_fd)),
      token_(std::move(token)),
      bootstrap_(std::move(bootstrap)) {
  accept_thread_ = std::thread([this] { AcceptLoop(); });
}

GlooRendezvous::~GlooRendezvous() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    // shutdown() wakes the threads blocked in accept()/recv(); the fds are
    // closed only after the threads are joined.
    ::shutdown(listen_fd_.get(), SHUT_RDWR);
    for (const ScopedFd& fd : connections_) ::shutdown(fd.get(), SHUT_RDWR);
  }
  accept_thread_.join();
  {
    absl::MutexLock lock(&mu_);
    threads = std::move(connection_threads_);
  }
  for (std::thread& thread : threads) thread.join();
}

void GlooRendezvous::AcceptLoop() {
  while (true) {
    const int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      if (fd >= 0) ::close(fd);
      return;
    }
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      LOG(ERROR) << "gloo rendezvous accept failed: " << std::strerror(errno);
      return;
    }
    connections_.emplace_back(fd);
    connection_threads_.emplace_back([this, fd] { Serve(fd); });
  }
}

void GlooRendezvous::Serve(int fd) {
  bool greeted = false;
  while (true) {
    auto request = ReadFrame(fd, absl::InfiniteFuture());
    if (!request.ok()) return;  // the client left, or the server is stopping
    std::string reply;
    const bool keep = Handle(*request, &greeted, &reply);
    if (!WriteFrame(fd, reply, absl::InfiniteFuture()).ok() || !keep) {
      ::shutdown(fd, SHUT_RDWR);  // the fd itself is closed with connections_
      return;
    }
  }
}

bool GlooRendezvous::Handle(std::string_view request, bool* greeted, std::string* reply) {
  const auto error = [&](std::string_view message) {
    *reply = StrCat(rendezvous::kReplyError, message);
    return false;
  };
  if (request.empty()) return error("empty request");
  const char op = request.front();
  request.remove_prefix(1);
  if (!*greeted) {
    uint32_t rank = 0, world_size = 0;
    if (op != rendezvous::kHello || !rendezvous::ConsumeU32(&request, &rank) ||
        !rendezvous::ConsumeU32(&request, &world_size)) {
      return error("expected a hello first");
    }
    if (request != std::string_view(token_)) {
      return error("wrong bootstrap token: this bootstrap belongs to another (older?) group");
    }
    absl::MutexLock lock(&mu_);
    if (world_size_ == 0) world_size_ = static_cast<int>(world_size);
    if (static_cast<int>(world_size) != world_size_) {
      return error(StrCat("rank ", rank, " says world size ", world_size,
                          " but the group was formed with ", world_size_));
    }
    *greeted = true;
    *reply = std::string(1, rendezvous::kReplyOk);
    return true;
  }
  if (op == rendezvous::kSet) {
    uint32_t key_size = 0;
    if (!rendezvous::ConsumeU32(&request, &key_size) || key_size > request.size()) {
      return error("malformed set");
    }
    std::string key(request.substr(0, key_size));
    absl::MutexLock lock(&mu_);
    if (!values_.emplace(key, std::string(request.substr(key_size))).second) {
      return error(StrCat("key '", key, "' is already set (did a rank join twice?)"));
    }
    *reply = std::string(1, rendezvous::kReplyOk);
    return true;
  }
  if (op == rendezvous::kGet) {
    absl::MutexLock lock(&mu_);
    const auto it = values_.find(std::string(request));
    *reply = it == values_.end() ? std::string(1, rendezvous::kReplyMissing)
                                 : StrCat(rendezvous::kReplyOk, it->second);
    return true;
  }
  return error("unknown request");
}

}  // namespace duet::worker
