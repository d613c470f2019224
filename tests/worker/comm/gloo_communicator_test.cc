// Gloo collectives between ranks that are threads of this process, over
// 127.0.0.1: results of every op for 2 and 3 ranks, and the failure paths
// that need no second process (timeouts, refused or bad bootstraps).
#include "worker/comm/gloo_communicator.h"

#include <atomic>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "tests/worker/comm/gloo_test_util.h"
#include "worker/comm/rendezvous_protocol.h"
#include "worker/comm/rendezvous_server.h"

namespace duet::worker {
namespace {

using testing::ConnectGlooGroup;
using testing::GlooGroup;
using testing::OnAllRanks;
using ::testing::HasSubstr;

CollectiveOptions TestOptions() {
  CollectiveOptions options;
  options.connect_timeout = absl::Seconds(30);
  options.op_timeout = absl::Seconds(30);
  return options;
}

std::vector<float> RankInput(int rank, int64_t count) {
  std::mt19937 random(1234 + rank);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> data(count);
  for (float& x : data) x = uniform(random);
  return data;
}

class GlooCollectivesTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    auto group = ConnectGlooGroup(GetParam(), TestOptions());
    ASSERT_TRUE(group.ok()) << group.status();
    group_ = *std::move(group);
  }
  int world_size() const { return GetParam(); }
  Communicator& rank(int r) { return *group_.ranks[r]; }

  GlooGroup group_;
};

TEST_P(GlooCollectivesTest, Identity) {
  for (int r = 0; r < world_size(); ++r) {
    EXPECT_EQ(rank(r).rank(), r);
    EXPECT_EQ(rank(r).world_size(), world_size());
    EXPECT_EQ(rank(r).name(), "gloo");
  }
}

void CheckAllReduce(int world_size, GlooGroup& group, int64_t count) {
  std::vector<std::vector<float>> data(world_size);
  for (int r = 0; r < world_size; ++r) data[r] = RankInput(r, count);
  std::vector<float> expected(count, 0.0f);
  for (int r = 0; r < world_size; ++r) {
    for (int64_t i = 0; i < count; ++i) expected[i] += data[r][i];
  }
  for (const absl::Status& s : OnAllRanks(world_size, [&](int r) {
         return group.ranks[r]->AllReduceSum(data[r].data(), count);
       })) {
    ASSERT_TRUE(s.ok()) << s;
  }
  for (int64_t i = 0; i < count; ++i) {
    ASSERT_NEAR(data[0][i], expected[i], 1e-5f) << "element " << i;
  }
  for (int r = 1; r < world_size; ++r) {
    ASSERT_EQ(std::memcmp(data[r].data(), data[0].data(), count * sizeof(float)), 0)
        << "rank " << r << " differs bitwise from rank 0";
  }
}

TEST_P(GlooCollectivesTest, AllReduceSumMatchesPlainSumAndIsBitwiseEqual) {
  for (int64_t count : {1, 2, 3, 7, 1000, 4097}) {
    SCOPED_TRACE(count);
    CheckAllReduce(world_size(), group_, count);
  }
}

TEST_P(GlooCollectivesTest, AllReduceSumOfIntegersIsExact) {
  const int64_t count = 513;
  std::vector<std::vector<float>> data(world_size(), std::vector<float>(count));
  for (int r = 0; r < world_size(); ++r) {
    for (int64_t i = 0; i < count; ++i) data[r][i] = static_cast<float>((r + 1) * 1000 + i);
  }
  for (const absl::Status& s : OnAllRanks(world_size(), [&](int r) {
         return rank(r).AllReduceSum(data[r].data(), count);
       })) {
    ASSERT_TRUE(s.ok()) << s;
  }
  const int rank_sum = world_size() * (world_size() + 1) / 2;
  for (int r = 0; r < world_size(); ++r) {
    for (int64_t i = 0; i < count; ++i) {
      ASSERT_EQ(data[r][i], static_cast<float>(rank_sum * 1000 + world_size() * i));
    }
  }
}

TEST_P(GlooCollectivesTest, LargeAllReduce) {
  CheckAllReduce(world_size(), group_, 1 << 20);
}

TEST_P(GlooCollectivesTest, AllGather) {
  const int64_t count = 1001;
  std::vector<std::vector<float>> input(world_size()), output(world_size());
  for (int r = 0; r < world_size(); ++r) {
    input[r] = RankInput(r, count);
    output[r].assign(count * world_size(), -1.0f);
  }
  for (const absl::Status& s : OnAllRanks(world_size(), [&](int r) {
         return rank(r).AllGather(input[r].data(), count, output[r].data());
       })) {
    ASSERT_TRUE(s.ok()) << s;
  }
  for (int r = 0; r < world_size(); ++r) {
    for (int from = 0; from < world_size(); ++from) {
      const std::vector<float> slice(output[r].begin() + from * count,
                                     output[r].begin() + (from + 1) * count);
      EXPECT_EQ(slice, input[from]) << "rank " << r << " slice " << from;
    }
  }
}

TEST_P(GlooCollectivesTest, BroadcastFromEachRoot) {
  for (int root = 0; root < world_size(); ++root) {
    SCOPED_TRACE(root);
    const int64_t bytes = 12345;  // not a multiple of 4
    std::vector<std::string> data(world_size());
    for (int r = 0; r < world_size(); ++r) {
      data[r].assign(bytes, static_cast<char>('a' + r));
    }
    data[root][7] = '!';
    const std::string expected = data[root];
    for (const absl::Status& s : OnAllRanks(world_size(), [&](int r) {
           return rank(r).Broadcast(data[r].data(), bytes, root);
         })) {
      ASSERT_TRUE(s.ok()) << s;
    }
    for (int r = 0; r < world_size(); ++r) EXPECT_EQ(data[r], expected) << "rank " << r;
  }
}

TEST_P(GlooCollectivesTest, BroadcastRejectsBadRoot) {
  char byte = 0;
  EXPECT_EQ(rank(0).Broadcast(&byte, 1, world_size()).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(GlooCollectivesTest, BarrierWaitsForEveryRank) {
  // The last rank arrives late; nobody may leave the barrier before it came.
  std::atomic<bool> last_arrived{false};
  std::atomic<int> left_early{0};
  for (const absl::Status& s : OnAllRanks(world_size(), [&](int r) {
         if (r == world_size() - 1) {
           absl::SleepFor(absl::Milliseconds(200));
           last_arrived = true;
         }
         absl::Status status = rank(r).Barrier();
         if (!last_arrived) ++left_early;
         return status;
       })) {
    ASSERT_TRUE(s.ok()) << s;
  }
  EXPECT_EQ(left_early, 0);
}

TEST_P(GlooCollectivesTest, ZeroCountsAreFine) {
  for (const absl::Status& s : OnAllRanks(world_size(), [&](int r) {
         absl::Status a = rank(r).AllReduceSum(nullptr, 0);
         if (!a.ok()) return a;
         a = rank(r).AllGather(nullptr, 0, nullptr);
         if (!a.ok()) return a;
         return rank(r).Broadcast(nullptr, 0, 0);
       })) {
    ASSERT_TRUE(s.ok()) << s;
  }
  // The group still works afterwards.
  CheckAllReduce(world_size(), group_, 5);
}

INSTANTIATE_TEST_SUITE_P(WorldSizes, GlooCollectivesTest, ::testing::Values(2, 3),
                         [](const auto& info) { return "Ranks" + std::to_string(info.param); });

TEST(GlooFaultTest, SilentPeerTimesOutThenCommunicatorIsBroken) {
  CollectiveOptions options = TestOptions();
  options.op_timeout = absl::Milliseconds(500);
  auto group = ConnectGlooGroup(2, options);
  ASSERT_TRUE(group.ok()) << group.status();
  std::vector<float> data(1024, 1.0f);

  // Rank 1 never calls the all-reduce.
  const absl::Time start = absl::Now();
  const absl::Status status = group->ranks[0]->AllReduceSum(data.data(), 1024);
  const absl::Duration took = absl::Now() - start;
  RecordProperty("error", status.ToString());
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_THAT(status.message(), HasSubstr("all_reduce (1024 floats)"));
  EXPECT_GE(took, absl::Milliseconds(450));
  EXPECT_LT(took, absl::Seconds(10));

  // Broken: later calls fail at once without touching the network.
  const absl::Time again = absl::Now();
  EXPECT_EQ(group->ranks[0]->Barrier().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(group->ranks[0]->AllReduceSum(data.data(), 1024).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(group->ranks[0]->AllReduceSum(data.data(), 0).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_LT(absl::Now() - again, absl::Milliseconds(400));

  // The silent rank now finds its peer gone instead of hanging.
  const absl::Status late = group->ranks[1]->Barrier();
  RecordProperty("peer_status", late.ToString());
  EXPECT_FALSE(late.ok());
  EXPECT_EQ(group->ranks[1]->Barrier().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(GlooConnectTest, MissingRankTimesOut) {
  auto rendezvous = GlooRendezvous::Start("127.0.0.1");
  ASSERT_TRUE(rendezvous.ok()) << rendezvous.status();
  CollectiveOptions options = TestOptions();
  options.connect_timeout = absl::Milliseconds(500);
  const absl::Time start = absl::Now();
  auto comm = ConnectGloo((*rendezvous)->bootstrap(), 0, 2, "127.0.0.1", options);
  RecordProperty("error", comm.status().ToString());
  EXPECT_EQ(comm.status().code(), absl::StatusCode::kDeadlineExceeded) << comm.status();
  EXPECT_THAT(comm.status().message(), HasSubstr((*rendezvous)->bootstrap()));
  EXPECT_THAT(comm.status().message(), HasSubstr("rank 0 of 2"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST(GlooConnectTest, ServerGoneFailsFast) {
  auto rendezvous = GlooRendezvous::Start("127.0.0.1");
  ASSERT_TRUE(rendezvous.ok()) << rendezvous.status();
  const std::string bootstrap = (*rendezvous)->bootstrap();
  rendezvous->reset();
  CollectiveOptions options = TestOptions();
  options.connect_timeout = absl::Seconds(5);
  const absl::Time start = absl::Now();
  auto comm = ConnectGloo(bootstrap, 1, 2, "127.0.0.1", options);
  RecordProperty("error", comm.status().ToString());
  EXPECT_FALSE(comm.ok());
  EXPECT_THAT(comm.status().code(), ::testing::AnyOf(absl::StatusCode::kUnavailable,
                                                     absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(comm.status().message(), HasSubstr(bootstrap));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5) + absl::Seconds(2));
}

TEST(GlooConnectTest, WrongTokenIsRefused) {
  auto rendezvous = GlooRendezvous::Start("127.0.0.1");
  ASSERT_TRUE(rendezvous.ok()) << rendezvous.status();
  auto bootstrap = rendezvous::ParseBootstrap((*rendezvous)->bootstrap());
  ASSERT_TRUE(bootstrap.ok());
  bootstrap->token = "0123456789abcdef0123456789abcdef";  // another group's
  CollectiveOptions options = TestOptions();
  options.connect_timeout = absl::Seconds(5);
  const absl::Time start = absl::Now();
  auto comm = ConnectGloo(rendezvous::FormatBootstrap(*bootstrap), 0, 2, "127.0.0.1", options);
  RecordProperty("error", comm.status().ToString());
  EXPECT_EQ(comm.status().code(), absl::StatusCode::kFailedPrecondition) << comm.status();
  EXPECT_THAT(comm.status().message(), HasSubstr("token"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
}

TEST(GlooConnectTest, WorldSizeMismatchIsRefused) {
  auto rendezvous = GlooRendezvous::Start("127.0.0.1");
  ASSERT_TRUE(rendezvous.ok()) << rendezvous.status();
  CollectiveOptions options = TestOptions();
  options.connect_timeout = absl::Seconds(2);
  const std::vector<absl::Status> statuses = OnAllRanks(2, [&](int r) {
    if (r == 1) absl::SleepFor(absl::Milliseconds(100));  // rank 0 says hello first
    return ConnectGloo((*rendezvous)->bootstrap(), r, r == 0 ? 2 : 3, "127.0.0.1", options)
        .status();
  });
  EXPECT_EQ(statuses[1].code(), absl::StatusCode::kFailedPrecondition) << statuses[1];
  EXPECT_THAT(statuses[1].message(), HasSubstr("world size"));
  EXPECT_FALSE(statuses[0].ok());  // rank 1 never joined
}

TEST(GlooConnectTest, InvalidArguments) {
  auto rendezvous = GlooRendezvous::Start("127.0.0.1");
  ASSERT_TRUE(rendezvous.ok()) << rendezvous.status();
  const std::string bootstrap = (*rendezvous)->bootstrap();
  const CollectiveOptions options = TestOptions();
  EXPECT_EQ(ConnectGloo(bootstrap, 2, 2, "127.0.0.1", options).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ConnectGloo(bootstrap, -1, 2, "127.0.0.1", options).status().code(),
            absl::StatusCode::kInvalidArgument);
  for (const char* garbage : {"", "garbage", "127.0.0.1:80", "127.0.0.1/abc", ":80/abc",
                              "127.0.0.1:0/abc", "127.0.0.1:99999/abc", "127.0.0.1:80x/abc",
                              "127.0.0.1:80/"}) {
    auto comm = ConnectGloo(garbage, 0, 2, "127.0.0.1", options);
    EXPECT_EQ(comm.status().code(), absl::StatusCode::kInvalidArgument) << garbage;
  }
}

TEST(RendezvousProtocolTest, BootstrapRoundTrips) {
  for (const rendezvous::Bootstrap& b :
       {rendezvous::Bootstrap{"127.0.0.1", 4242, "abc"},
        rendezvous::Bootstrap{"worker-0", 1, "t"}, rendezvous::Bootstrap{"::1", 65535, "x"}}) {
    auto parsed = rendezvous::ParseBootstrap(rendezvous::FormatBootstrap(b));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->host, b.host);
    EXPECT_EQ(parsed->port, b.port);
    EXPECT_EQ(parsed->token, b.token);
  }
  EXPECT_NE(rendezvous::MakeToken(), rendezvous::MakeToken());
}

TEST(GlooConnectTest, SingleRankGroupWorks) {
  auto group = ConnectGlooGroup(1, TestOptions());
  ASSERT_TRUE(group.ok()) << group.status();
  std::vector<float> data = {1.0f, 2.0f};
  ASSERT_TRUE(group->ranks[0]->AllReduceSum(data.data(), 2).ok());
  EXPECT_EQ(data, (std::vector<float>{1.0f, 2.0f}));
  std::vector<float> out(2);
  ASSERT_TRUE(group->ranks[0]->AllGather(data.data(), 2, out.data()).ok());
  EXPECT_EQ(out, data);
  EXPECT_TRUE(group->ranks[0]->Barrier().ok());
}

}  // namespace
}  // namespace duet::worker
