// RunInChild: the answer of a child that finishes, and the kill of one that
// hangs or dies, which is what keeps duet doctor's NCCL check from hanging.
#include "tools/doctor/child_process.h"

#include <signal.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"

namespace duet::doctor {
namespace {

TEST(ChildProcessTest, ReturnsTheAnswer) {
  const ChildResult result =
      RunInChild([] { return std::string(100000, 'x') + "end"; }, absl::Seconds(30));
  ASSERT_TRUE(result.started) << result.error;
  EXPECT_FALSE(result.timed_out);
  EXPECT_EQ(result.answer.size(), 100003u);  // more than one pipe buffer
  EXPECT_EQ(result.answer.substr(100000), "end");
  EXPECT_EQ(result.exit_signal, 0);
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_LT(result.seconds, 30.0);
}

TEST(ChildProcessTest, KillsAChildThatHangs) {
  const ChildResult result = RunInChild(
      [] {
        while (true) pause();
        return std::string("never");
      },
      absl::Milliseconds(300));
  ASSERT_TRUE(result.started) << result.error;
  EXPECT_TRUE(result.timed_out);
  EXPECT_EQ(result.answer, "");
  EXPECT_EQ(result.exit_signal, SIGKILL);
  EXPECT_DOUBLE_EQ(result.seconds, 0.3);
}

TEST(ChildProcessTest, ReportsAChildThatDies) {
  const ChildResult result = RunInChild(
      [] {
        raise(SIGTERM);  // no core file
        return std::string("unreached");
      },
      absl::Seconds(30));
  ASSERT_TRUE(result.started) << result.error;
  EXPECT_FALSE(result.timed_out);
  EXPECT_EQ(result.answer, "");
  EXPECT_EQ(result.exit_signal, SIGTERM);
}

}  // namespace
}  // namespace duet::doctor
