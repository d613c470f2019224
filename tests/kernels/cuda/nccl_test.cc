// NCCL is linked into CUDA builds and works: its version is the one the build
// found, and a one-rank all-reduce on the GPU returns its input.
#include <nccl.h>

#include <vector>

#include <gtest/gtest.h>

#include "tests/kernels/cuda/cuda_test_util.h"

namespace duet {
namespace {

using testing::DeviceBuffer;

TEST(NcclTest, LinkedLibraryMatchesHeader) {
  int version = 0;
  ASSERT_EQ(ncclGetVersion(&version), ncclSuccess);
  EXPECT_EQ(version / 100, NCCL_VERSION_CODE / 100);  // same major.minor
  EXPECT_GE(version, NCCL_VERSION(2, 18, 0));
}

TEST(NcclTest, SingleRankAllReduce) {
  DUET_SKIP_WITHOUT_GPU();
  ncclComm_t comm;
  int device = 0;
  ASSERT_EQ(ncclCommInitAll(&comm, 1, &device), ncclSuccess);
  std::vector<float> host(1000);
  for (size_t i = 0; i < host.size(); ++i) host[i] = 0.5f * static_cast<float>(i);
  DeviceBuffer<float> send(host), recv(host.size());
  ASSERT_EQ(ncclAllReduce(send.get(), recv.get(), host.size(), ncclFloat, ncclSum,
                          comm, nullptr),
            ncclSuccess);
  DUET_CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_EQ(recv.ToHost(), host);
  ncclCommDestroy(comm);
}

}  // namespace
}  // namespace duet
