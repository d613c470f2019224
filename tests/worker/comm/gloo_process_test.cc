// Gloo between real processes: rank 1 is a forked child, so the rendezvous
// and the collectives cross a process boundary, and a peer can really die.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "worker/comm/gloo_communicator.h"
#include "worker/comm/rendezvous_server.h"

namespace duet::worker {
namespace {

constexpr int64_t kCount = 100000;

CollectiveOptions TestOptions() {
  CollectiveOptions options;
  options.connect_timeout = absl::Seconds(15);
  options.op_timeout = absl::Seconds(30);
  return options;
}

float Value(int rank, int64_t i) { return static_cast<float>((rank + 1) * (i % 1000)); }

enum class ChildPlan { kAllReduce, kDieAfterBarrier };

// Forks rank 1. It reads the bootstrap from a pipe, joins, follows `plan`
// and exits with 0 on success (or a code saying which step failed).
pid_t ForkRank1(ChildPlan plan, int* bootstrap_pipe_write) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  const pid_t pid = fork();
  if (pid != 0) {
    close(fds[0]);
    *bootstrap_pipe_write = fds[1];
    return pid;
  }
  close(fds[1]);
  alarm(30);  // never outlive a broken parent
  std::string bootstrap;
  char c;
  while (read(fds[0], &c, 1) == 1 && c != '\n') bootstrap.push_back(c);
  auto comm = ConnectGloo(bootstrap, 1, 2, "127.0.0.1", TestOptions());
  if (!comm.ok()) _exit(10);
  if (plan == ChildPlan::kDieAfterBarrier) {
    if (!(*comm)->Barrier().ok()) _exit(11);
    // Let the parent get into its all-reduce, then die without any cleanup.
    absl::SleepFor(absl::Milliseconds(100));
    raise(SIGKILL);
  }
  std::vector<float> data(kCount);
  for (int64_t i = 0; i < kCount; ++i) data[i] = Value(1, i);
  if (!(*comm)->AllReduceSum(data.data(), kCount).ok()) _exit(12);
  for (int64_t i = 0; i < kCount; ++i) {
    if (data[i] != Value(0, i) + Value(1, i)) _exit(13);
  }
  _exit(0);
}

void SendBootstrap(int fd, const std::string& bootstrap) {
  const std::string line = bootstrap + "\n";
  ASSERT_EQ(write(fd, line.data(), line.size()), static_cast<ssize_t>(line.size()));
  close(fd);
}

TEST(GlooProcessTest, AllReduceAcrossProcesses) {
  int pipe_fd = -1;
  const pid_t child = ForkRank1(ChildPlan::kAllReduce, &pipe_fd);
  ASSERT_GT(child, 0);
  auto rendezvous = GlooRendezvous::Start("127.0.0.1");
  ASSERT_TRUE(rendezvous.ok()) << rendezvous.status();
  SendBootstrap(pipe_fd, (*rendezvous)->bootstrap());

  auto comm = ConnectGloo((*rendezvous)->bootstrap(), 0, 2, "127.0.0.1", TestOptions());
  ASSERT_TRUE(comm.ok()) << comm.status();
  std::vector<float> data(kCount);
  for (int64_t i = 0; i < kCount; ++i) data[i] = Value(0, i);
  ASSERT_TRUE((*comm)->AllReduceSum(data.data(), kCount).ok());
  for (int64_t i = 0; i < kCount; ++i) ASSERT_EQ(data[i], Value(0, i) + Value(1, i));

  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(GlooProcessTest, PeerDeathDuringAllReduceIsUnavailableNotAHang) {
  int pipe_fd = -1;
  const pid_t child = ForkRank1(ChildPlan::kDieAfterBarrier, &pipe_fd);
  ASSERT_GT(child, 0);
  auto rendezvous = GlooRendezvous::Start("127.0.0.1");
  ASSERT_TRUE(rendezvous.ok()) << rendezvous.status();
  SendBootstrap(pipe_fd, (*rendezvous)->bootstrap());

  auto comm = ConnectGloo((*rendezvous)->bootstrap(), 0, 2, "127.0.0.1", TestOptions());
  ASSERT_TRUE(comm.ok()) << comm.status();
  ASSERT_TRUE((*comm)->Barrier().ok());
  std::vector<float> data(kCount, 1.0f);
  const absl::Time start = absl::Now();
  const absl::Status result = (*comm)->AllReduceSum(data.data(), kCount);
  const absl::Duration took = absl::Now() - start;
  RecordProperty("error", result.ToString());
  // op_timeout is 30 s: failing well before it means the death was noticed.
  EXPECT_EQ(result.code(), absl::StatusCode::kUnavailable) << result;
  EXPECT_LT(took, absl::Seconds(10));
  EXPECT_EQ((*comm)->Barrier().code(), absl::StatusCode::kFailedPrecondition);

  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
}

}  // namespace
}  // namespace duet::worker
