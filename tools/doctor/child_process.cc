#include "tools/doctor/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "absl/time/clock.h"
#include "common/str_cat.h"

namespace duet::doctor {
namespace {

// How long a child that has answered may take to exit before it is killed.
constexpr absl::Duration kExitGrace = absl::Seconds(5);

// Reads until EOF or `deadline`; false on timeout.
bool ReadUntil(int fd, absl::Time deadline, std::string* answer) {
  char buffer[512];
  while (true) {
    const int64_t wait_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (wait_ms <= 0) return false;
    pollfd poll_fd{fd, POLLIN, 0};
    const int ready = poll(&poll_fd, 1, static_cast<int>(std::min<int64_t>(wait_ms, 1000)));
    if (ready <= 0) continue;  // timeout slice or EINTR: check the deadline again
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return true;  // EOF (or an error: the child is gone)
    answer->append(buffer, static_cast<size_t>(n));
  }
}

// Waits for the child until `deadline`, then kills it; returns its status.
int Reap(pid_t pid, absl::Time deadline) {
  int status = 0;
  while (true) {
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid || (done < 0 && errno != EINTR)) return status;
    if (absl::Now() > deadline) {
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return status;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

[[noreturn]] void ChildMain(int write_fd, const std::function<std::string()>& body) {
  const std::string answer = body();
  size_t written = 0;
  while (written < answer.size()) {
    const ssize_t n = write(write_fd, answer.data() + written, answer.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  close(write_fd);  // EOF for the parent now, not after the exit's cleanup
  _exit(0);
}

}  // namespace

ChildResult RunInChild(const std::function<std::string()>& body, absl::Duration timeout) {
  ChildResult result;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    result.error = StrCat("cannot create a pipe: ", std::strerror(errno));
    return result;
  }
  const absl::Time start = absl::Now();
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    result.error = StrCat("cannot fork: ", std::strerror(errno));
    return result;
  }
  if (pid == 0) {
    close(fds[0]);
    ChildMain(fds[1], body);
  }
  result.started = true;
  close(fds[1]);
  const bool answered = ReadUntil(fds[0], start + timeout, &result.answer);
  close(fds[0]);
  int status = 0;
  if (answered) {
    result.seconds = absl::ToDoubleSeconds(absl::Now() - start);
    status = Reap(pid, absl::Now() + kExitGrace);
  } else {
    result.timed_out = true;
    result.seconds = absl::ToDoubleSeconds(timeout);
    kill(pid, SIGKILL);
    status = Reap(pid, absl::InfinitePast());
  }
  if (WIFSIGNALED(status)) result.exit_signal = WTERMSIG(status);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

}  // namespace duet::doctor
