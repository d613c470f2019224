// The world-size-1 communicator: every collective is the identity.
#include <vector>

#include <gtest/gtest.h>

#include "worker/comm/communicator.h"

namespace duet::worker {
namespace {

TEST(LocalCommunicatorTest, CollectivesAreIdentities) {
  std::unique_ptr<Communicator> comm = MakeLocalCommunicator();
  EXPECT_EQ(comm->rank(), 0);
  EXPECT_EQ(comm->world_size(), 1);
  EXPECT_EQ(comm->name(), "local");

  std::vector<float> data = {1.5f, -2.0f, 3.25f};
  const std::vector<float> original = data;
  ASSERT_TRUE(comm->AllReduceSum(data.data(), 3).ok());
  EXPECT_EQ(data, original);

  std::vector<float> gathered(3, 0.0f);
  ASSERT_TRUE(comm->AllGather(data.data(), 3, gathered.data()).ok());
  EXPECT_EQ(gathered, original);

  std::vector<char> bytes = {'a', 'b'};
  ASSERT_TRUE(comm->Broadcast(bytes.data(), 2, 0).ok());
  EXPECT_EQ(bytes, (std::vector<char>{'a', 'b'}));
  EXPECT_EQ(comm->Broadcast(bytes.data(), 2, 1).code(), absl::StatusCode::kInvalidArgument);

  EXPECT_TRUE(comm->Barrier().ok());
  EXPECT_TRUE(comm->AllReduceSum(nullptr, 0).ok());
  EXPECT_TRUE(comm->AllGather(nullptr, 0, nullptr).ok());
}

}  // namespace
}  // namespace duet::worker
