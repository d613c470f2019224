// The real GPU probe on whatever GPUs this machine has; skipped without one.
// The assertions hold on any GPU machine: one GPU or several, P2P or not.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/doctor/doctor_checks.h"
#include "tools/doctor/gpu_probe.h"

namespace duet::doctor {
namespace {

TEST(GpuProbeCudaTest, ProbesThisMachine) {
  // ProbeGpus must come before anything else touches CUDA in this process.
  GpuProbeOptions options;
  options.nccl_timeout = absl::Seconds(60);
  options.bandwidth_bytes = int64_t{64} << 20;
  const SystemReport report = ProbeGpus(options);
  EXPECT_TRUE(report.cuda_build);
  EXPECT_GT(report.cuda_runtime_version, 0);
  if (report.gpus.empty()) {
    GTEST_SKIP() << "no CUDA device on this machine"
                 << (report.cuda_error.empty() ? "" : ": " + report.cuda_error);
  }
  EXPECT_GT(report.cuda_driver_version, 0);
  for (const GpuInfo& gpu : report.gpus) {
    EXPECT_FALSE(gpu.name.empty());
    EXPECT_GT(gpu.total_memory_bytes, 0);
    EXPECT_GT(gpu.free_memory_bytes, 0);
    EXPECT_LE(gpu.free_memory_bytes, gpu.total_memory_bytes);
    EXPECT_GE(gpu.compute_capability_major, 5);
    EXPECT_THAT(gpu.pci_bus_id,
                ::testing::MatchesRegex("[0-9a-f]{4,}:[0-9a-f]{2}:[0-9a-f]{2}\\.[0-7]"));
  }
  if (report.gpus.size() == 1) {
    EXPECT_FALSE(report.nccl.ran);
    EXPECT_THAT(report.nccl.skipped_reason, ::testing::HasSubstr("needs two"));
    EXPECT_TRUE(report.p2p.empty());
  } else {
    ASSERT_EQ(report.p2p.size(), 2u);
    for (const P2pPair& pair : report.p2p) {
      if (pair.can_access_peer) {
        EXPECT_TRUE(pair.copy_tested) << pair.src << "→" << pair.dst;
      }
    }
    EXPECT_TRUE(report.nccl.ran) << report.nccl.skipped_reason;
    EXPECT_TRUE(report.nccl.ok || report.nccl.timed_out || !report.nccl.error.empty());
    EXPECT_GT(report.nccl.seconds, 0.0);
    ASSERT_EQ(report.bandwidth.size(), 2u);
    for (const Bandwidth& copy : report.bandwidth) {
      EXPECT_TRUE(copy.measured ? copy.gb_per_s > 0.0 : !copy.error.empty());
    }
  }
  const std::vector<Check> checks = GpuChecks(report);
  ASSERT_FALSE(checks.empty());
  EXPECT_EQ(checks.front().id, "gpus");
  EXPECT_NE(checks.front().status, CheckStatus::kFail) << checks.front().detail;
  for (const Check& check : checks) {
    if (check.id == "kernels") {
      EXPECT_EQ(check.status, CheckStatus::kOk) << check.detail;
    }
  }
}

}  // namespace
}  // namespace duet::doctor
