// NCCL communicator with one rank on one GPU: every collective gives the
// right answer and bad arguments are refused. Skips without a GPU.
#include "worker/comm/nccl_communicator.h"

#include <vector>

#include <gtest/gtest.h>

#include "tests/kernels/cuda/cuda_test_util.h"

namespace duet::worker {
namespace {

using duet::testing::DeviceBuffer;

std::unique_ptr<Communicator> ConnectOneRank() {
  auto bootstrap = CreateNcclBootstrap();
  EXPECT_TRUE(bootstrap.ok()) << bootstrap.status();
  if (!bootstrap.ok()) return nullptr;
  CollectiveOptions options;
  options.connect_timeout = absl::Seconds(60);
  options.op_timeout = absl::Seconds(60);
  auto comm = ConnectNccl(*bootstrap, 0, 1, /*device=*/0, options);
  EXPECT_TRUE(comm.ok()) << comm.status();
  return comm.ok() ? *std::move(comm) : nullptr;
}

TEST(NcclCommunicatorTest, RejectsBadArguments) {
  const CollectiveOptions options;
  EXPECT_EQ(ConnectNccl("short", 0, 1, 0, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ConnectNccl(std::string(128, '\0'), 1, 1, 0, options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(NcclCommunicatorTest, SingleRankCollectives) {
  DUET_SKIP_WITHOUT_GPU();
  std::unique_ptr<Communicator> comm = ConnectOneRank();
  ASSERT_NE(comm, nullptr);
  EXPECT_EQ(comm->rank(), 0);
  EXPECT_EQ(comm->world_size(), 1);
  EXPECT_EQ(comm->name(), "nccl");

  std::vector<float> host(4099);
  for (size_t i = 0; i < host.size(); ++i) host[i] = 0.25f * static_cast<float>(i) - 7.0f;
  DeviceBuffer<float> data(host);
  ASSERT_TRUE(comm->AllReduceSum(data.get(), host.size()).ok());
  EXPECT_EQ(data.ToHost(), host);

  DeviceBuffer<float> gathered(host.size());
  ASSERT_TRUE(comm->AllGather(data.get(), host.size(), gathered.get()).ok());
  EXPECT_EQ(gathered.ToHost(), host);

  ASSERT_TRUE(comm->Broadcast(data.get(), 7, 0).ok());
  EXPECT_EQ(data.ToHost(), host);
  EXPECT_EQ(comm->Broadcast(data.get(), 7, 1).code(), absl::StatusCode::kInvalidArgument);

  EXPECT_TRUE(comm->Barrier().ok());
  EXPECT_TRUE(comm->AllReduceSum(data.get(), 0).ok());
  EXPECT_TRUE(comm->AllGather(data.get(), 0, gathered.get()).ok());
}

}  // namespace
}  // namespace duet::worker
