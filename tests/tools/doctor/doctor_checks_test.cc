// The rules of duet doctor on synthetic reports: one test per rule, each
// starting from a healthy dual RTX 4090 workstation and breaking one thing.
#include "tools/doctor/doctor_checks.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/tools/doctor/doctor_test_reports.h"

namespace duet::doctor {
namespace {

using testing::DualGpuWithP2p;
using testing::DualRtx4090;
using testing::FindCheck;
using testing::HasCheck;
using ::testing::HasSubstr;
using testing::HealthyCpu;
using testing::kTestGiB;
using ::testing::Not;

TEST(DoctorChecksTest, HealthyWorkstationHasNoFailure) {
  const std::vector<Check> checks = RunChecks(DualRtx4090(), HealthyCpu());
  EXPECT_FALSE(AnyFailed(checks));
  EXPECT_EQ(FindCheck(checks, "gpus").status, CheckStatus::kOk);
  EXPECT_THAT(FindCheck(checks, "gpus").detail, HasSubstr("2 GPUs"));
  EXPECT_EQ(FindCheck(checks, "driver").status, CheckStatus::kOk);
  EXPECT_EQ(FindCheck(checks, "kernels").status, CheckStatus::kOk);
  EXPECT_EQ(FindCheck(checks, "nccl").status, CheckStatus::kOk);
  EXPECT_EQ(FindCheck(checks, "gpu_memory").status, CheckStatus::kOk);
  EXPECT_EQ(FindCheck(checks, "cpu_matmul").status, CheckStatus::kOk);
  EXPECT_EQ(FindCheck(checks, "gloo").status, CheckStatus::kOk);
}

TEST(DoctorChecksTest, NoGpuSaysSoAndTheCpuChecksDecide) {
  SystemReport system;
  system.cuda_build = true;
  system.cuda_runtime_version = 12040;
  const std::vector<Check> checks = RunChecks(system, HealthyCpu());
  const Check gpus = FindCheck(checks, "gpus");
  EXPECT_EQ(gpus.status, CheckStatus::kInfo);
  EXPECT_EQ(gpus.detail, "no NVIDIA GPU found: duet will run on the CPU");
  EXPECT_FALSE(HasCheck(checks, "p2p"));
  EXPECT_FALSE(HasCheck(checks, "nccl"));
  EXPECT_FALSE(HasCheck(checks, "driver"));
  EXPECT_FALSE(AnyFailed(checks));

  SystemReport cpu_build;
  EXPECT_EQ(FindCheck(GpuChecks(cpu_build), "gpus").detail,
            "no NVIDIA GPU found: duet will run on the CPU (this duet was built without CUDA)");

  CpuReport broken_cpu = HealthyCpu();
  broken_cpu.gloo_ok = false;
  broken_cpu.gloo_error = "rank 1: connection refused";
  EXPECT_TRUE(AnyFailed(RunChecks(system, broken_cpu)));
}

TEST(DoctorChecksTest, CudaErrorWithoutGpusFails) {
  SystemReport system;
  system.cuda_build = true;
  system.cuda_error = "cudaErrorInsufficientDriver: CUDA driver version is insufficient";
  const Check gpus = FindCheck(GpuChecks(system), "gpus");
  EXPECT_EQ(gpus.status, CheckStatus::kFail);
  EXPECT_THAT(gpus.detail, HasSubstr("cudaErrorInsufficientDriver"));
  EXPECT_THAT(gpus.fix, HasSubstr("nvidia-smi"));
}

TEST(DoctorChecksTest, OneGpuWarns) {
  SystemReport system = DualRtx4090();
  system.gpus.resize(1);
  system.p2p.clear();
  system.bandwidth.clear();
  const std::vector<Check> checks = GpuChecks(system);
  const Check gpus = FindCheck(checks, "gpus");
  EXPECT_EQ(gpus.status, CheckStatus::kWarn);
  EXPECT_THAT(gpus.fix, HasSubstr("two GPUs"));
  EXPECT_FALSE(HasCheck(checks, "nccl"));
  EXPECT_FALSE(HasCheck(checks, "nvlink"));
}

TEST(DoctorChecksTest, BuildWithoutCudaOnAGpuMachineWarns) {
  SystemReport system = DualRtx4090();
  system.cuda_build = false;
  system.cuda_runtime_version = 0;
  system.p2p.clear();
  system.bandwidth.clear();
  system.nccl = NcclCheck{};
  const std::vector<Check> checks = GpuChecks(system);
  const Check gpus = FindCheck(checks, "gpus");
  EXPECT_EQ(gpus.status, CheckStatus::kWarn);
  EXPECT_THAT(gpus.detail, HasSubstr("built without CUDA"));
  EXPECT_THAT(gpus.fix, HasSubstr("-DDUET_CUDA=ON"));
  EXPECT_FALSE(HasCheck(checks, "nccl"));
  EXPECT_FALSE(HasCheck(checks, "kernels"));
}

TEST(DoctorChecksTest, DriverOlderThanTheRuntimeFails) {
  SystemReport system = DualRtx4090();
  system.cuda_driver_version = 12040;
  system.cuda_runtime_version = 13000;
  const Check driver = FindCheck(GpuChecks(system), "driver");
  EXPECT_EQ(driver.status, CheckStatus::kFail);
  EXPECT_THAT(driver.detail, HasSubstr("supports CUDA 12.4"));
  EXPECT_THAT(driver.fix, HasSubstr("install an NVIDIA driver that supports CUDA 13.0"));
}

TEST(DoctorChecksTest, DriverOlderMinorWarnsUnderMinorVersionCompatibility) {
  SystemReport system = DualRtx4090();
  system.cuda_driver_version = 12020;
  system.cuda_runtime_version = 12060;
  const Check driver = FindCheck(GpuChecks(system), "driver");
  EXPECT_EQ(driver.status, CheckStatus::kWarn);
  EXPECT_THAT(driver.fix, HasSubstr("CUDA 12.6"));
}

TEST(DoctorChecksTest, NewerDriverIsOk) {
  SystemReport system = DualRtx4090();
  system.cuda_driver_version = 13000;
  system.cuda_runtime_version = 12040;
  EXPECT_EQ(FindCheck(GpuChecks(system), "driver").status, CheckStatus::kOk);
}

TEST(DoctorChecksTest, ComputeCapabilityWithoutKernelImageFails) {
  SystemReport system = DualRtx4090();
  for (GpuInfo& gpu : system.gpus) {
    gpu.compute_capability_major = 8;
    gpu.compute_capability_minor = 6;  // RTX 3090
  }
  const Check kernels = FindCheck(GpuChecks(system), "kernels");
  EXPECT_EQ(kernels.status, CheckStatus::kFail);
  EXPECT_THAT(kernels.detail, HasSubstr("sm_86"));
  EXPECT_THAT(kernels.fix, HasSubstr("CMAKE_CUDA_ARCHITECTURES"));
}

TEST(DoctorChecksTest, KernelImageRules) {
  EXPECT_TRUE(HasKernelImage("89", 8, 9));
  EXPECT_FALSE(HasKernelImage("89", 8, 6));
  EXPECT_TRUE(HasKernelImage("89", 9, 0));        // PTX, JIT-compiled
  EXPECT_FALSE(HasKernelImage("89-real", 9, 0));  // SASS only
  EXPECT_TRUE(HasKernelImage("86-real", 8, 9));   // same major, older minor
  EXPECT_TRUE(HasKernelImage("86,89", 8, 6));
  EXPECT_TRUE(HasKernelImage("86;89;90;120", 12, 0));
  EXPECT_TRUE(HasKernelImage("90a", 9, 0));
  EXPECT_FALSE(HasKernelImage("90a", 10, 0));
  EXPECT_TRUE(HasKernelImage("70-virtual", 8, 9));
  EXPECT_FALSE(HasKernelImage("90-virtual", 8, 9));
  EXPECT_TRUE(HasKernelImage("native", 8, 9));
  EXPECT_FALSE(HasKernelImage("", 8, 9));
}

TEST(DoctorChecksTest, NoNvlinkIsNotAFailure) {
  const std::vector<Check> checks = GpuChecks(DualRtx4090());
  const Check nvlink = FindCheck(checks, "nvlink");
  EXPECT_EQ(nvlink.status, CheckStatus::kInfo);
  EXPECT_EQ(nvlink.detail, "no NVLink: expected on GeForce cards; traffic goes over PCIe");

  SystemReport unknown = DualRtx4090();
  for (GpuInfo& gpu : unknown.gpus) gpu.nvlink_active_links = -1;
  unknown.nvml_error = "cannot load libnvidia-ml.so.1";
  EXPECT_EQ(FindCheck(GpuChecks(unknown), "nvlink").status, CheckStatus::kSkipped);

  SystemReport linked = DualRtx4090();
  for (GpuInfo& gpu : linked.gpus) gpu.nvlink_active_links = 4;
  EXPECT_EQ(FindCheck(GpuChecks(linked), "nvlink").status, CheckStatus::kOk);
}

TEST(DoctorChecksTest, P2pNotReportedIsInfoNotFailure) {
  const Check p2p = FindCheck(GpuChecks(DualRtx4090()), "p2p");
  EXPECT_EQ(p2p.status, CheckStatus::kInfo);
  EXPECT_THAT(p2p.detail, HasSubstr("NCCL uses host memory"));
  EXPECT_THAT(p2p.detail, HasSubstr("RTX 4090"));
}

TEST(DoctorChecksTest, P2pReportedAndVerifiedIsOk) {
  EXPECT_EQ(FindCheck(GpuChecks(DualGpuWithP2p()), "p2p").status, CheckStatus::kOk);
}

TEST(DoctorChecksTest, P2pReportedButCopyBrokenAdvisesP2pDisable) {
  SystemReport system = DualGpuWithP2p();
  system.p2p[0].copy_ok = false;
  system.p2p[0].error = "word 0 of 1048576 came back wrong";
  const Check p2p = FindCheck(GpuChecks(system), "p2p");
  EXPECT_EQ(p2p.status, CheckStatus::kFail);
  EXPECT_THAT(p2p.detail, HasSubstr("reported but broken"));
  EXPECT_THAT(p2p.detail, HasSubstr("GPU 0→1"));
  EXPECT_THAT(p2p.fix, HasSubstr("NCCL_P2P_DISABLE=1"));
  EXPECT_THAT(p2p.fix, HasSubstr("docker-compose: environment"));
}

TEST(DoctorChecksTest, P2pReportedOneWayWarns) {
  SystemReport system = DualGpuWithP2p();
  system.p2p[1] = P2pPair{1, 0, false, false, false, ""};
  EXPECT_EQ(FindCheck(GpuChecks(system), "p2p").status, CheckStatus::kWarn);
}

TEST(DoctorChecksTest, NcclTimeoutWithP2pOnAdvisesP2pDisable) {
  SystemReport system = DualGpuWithP2p();
  system.nccl.ok = false;
  system.nccl.value_correct = false;
  system.nccl.timed_out = true;
  system.nccl.seconds = 20;
  const Check nccl = FindCheck(GpuChecks(system), "nccl");
  EXPECT_EQ(nccl.status, CheckStatus::kFail);
  EXPECT_THAT(nccl.detail, HasSubstr("timed out after 20 s"));
  EXPECT_THAT(nccl.fix, HasSubstr("NCCL_P2P_DISABLE=1"));
}

TEST(DoctorChecksTest, NcclWrongSumWithP2pOnAdvisesP2pDisable) {
  SystemReport system = DualGpuWithP2p();
  system.nccl.value_correct = false;
  const Check nccl = FindCheck(GpuChecks(system), "nccl");
  EXPECT_EQ(nccl.status, CheckStatus::kFail);
  EXPECT_THAT(nccl.detail, HasSubstr("sum is wrong"));
  EXPECT_THAT(nccl.fix, HasSubstr("NCCL_P2P_DISABLE=1"));
}

TEST(DoctorChecksTest, NcclFailureWithP2pOffPointsAtDebugAndShm) {
  SystemReport system = DualRtx4090();
  system.nccl.ok = false;
  system.nccl.value_correct = false;
  system.nccl.error = "ncclCommInitAll: unhandled system error";
  const Check nccl = FindCheck(GpuChecks(system), "nccl");
  EXPECT_EQ(nccl.status, CheckStatus::kFail);
  EXPECT_THAT(nccl.detail, HasSubstr("unhandled system error"));
  EXPECT_THAT(nccl.fix, HasSubstr("NCCL_DEBUG=INFO"));
  EXPECT_THAT(nccl.fix, HasSubstr("/dev/shm"));
  EXPECT_THAT(nccl.fix, HasSubstr("shm_size"));
  EXPECT_THAT(nccl.fix, Not(HasSubstr("NCCL_P2P_DISABLE")));
}

TEST(DoctorChecksTest, NcclFailureWithP2pAlreadyDisabledPointsAtDebug) {
  SystemReport system = DualGpuWithP2p();
  system.nccl_p2p_disable = "1";
  system.nccl.ok = false;
  system.nccl.error = "ncclCommInitAll: internal error";
  const Check nccl = FindCheck(GpuChecks(system), "nccl");
  EXPECT_EQ(nccl.status, CheckStatus::kFail);
  EXPECT_THAT(nccl.fix, HasSubstr("NCCL_DEBUG=INFO"));
}

TEST(DoctorChecksTest, NcclNotRunIsSkipped) {
  SystemReport system = DualRtx4090();
  system.nccl = NcclCheck{};
  system.nccl.skipped_reason = "1 GPU found: the all-reduce needs two";
  const Check nccl = FindCheck(GpuChecks(system), "nccl");
  EXPECT_EQ(nccl.status, CheckStatus::kSkipped);
  EXPECT_THAT(nccl.detail, HasSubstr("needs two"));
}

TEST(DoctorChecksTest, X4LinkWarnsStrongly) {
  SystemReport system = DualRtx4090();
  system.gpus[1].pcie_under_load.current_width = 4;
  system.gpus[1].pcie_under_load.port_max_width = 4;
  const Check width = FindCheck(GpuChecks(system), "pcie_width_1");
  EXPECT_EQ(width.status, CheckStatus::kWarn);
  EXPECT_THAT(width.detail, HasSubstr("x4"));
  EXPECT_THAT(width.fix, HasSubstr("CPU-attached slot"));
  EXPECT_THAT(width.fix, HasSubstr("bifurcation"));
}

TEST(DoctorChecksTest, X8InAnX16SlotWarns) {
  // The slot is x8 (consumer board, two cards): the usual x8/x8.
  const Check slot_x8 = FindCheck(GpuChecks(DualRtx4090()), "pcie_width_0");
  EXPECT_EQ(slot_x8.status, CheckStatus::kWarn);
  EXPECT_THAT(slot_x8.detail, HasSubstr("x8"));
  EXPECT_THAT(slot_x8.detail, HasSubstr("two GPUs on a consumer board usually run x8/x8"));

  // Slot and card x16, link x8: trained narrower than both.
  SystemReport system = DualRtx4090();
  system.gpus[0].pcie_under_load.port_max_width = 16;
  const Check trained = FindCheck(GpuChecks(system), "pcie_width_0");
  EXPECT_EQ(trained.status, CheckStatus::kWarn);
  EXPECT_THAT(trained.detail, HasSubstr("x8 in an x16 slot"));
  EXPECT_THAT(trained.fix, HasSubstr("reseat"));
}

TEST(DoctorChecksTest, FullWidthIsOk) {
  SystemReport system = DualRtx4090();
  system.gpus[0].pcie_under_load.current_width = 16;
  system.gpus[0].pcie_under_load.port_max_width = 16;
  EXPECT_EQ(FindCheck(GpuChecks(system), "pcie_width_0").status, CheckStatus::kOk);
}

TEST(DoctorChecksTest, Gen1AtIdleButGen4UnderLoadIsNotAWarning) {
  const SystemReport system = DualRtx4090();
  ASSERT_EQ(system.gpus[0].pcie_idle.current_generation, 1);
  const Check gen = FindCheck(GpuChecks(system), "pcie_gen_0");
  EXPECT_EQ(gen.status, CheckStatus::kOk);
  EXPECT_THAT(gen.detail, HasSubstr("gen4 under load"));
}

TEST(DoctorChecksTest, Gen1AtIdleWithoutALoadReadingIsInfo) {
  SystemReport system = DualRtx4090();
  system.bandwidth_skipped = true;
  for (GpuInfo& gpu : system.gpus) gpu.pcie_under_load = PcieLink{};
  for (Bandwidth& copy : system.bandwidth) {
    copy.measured = false;
    copy.gb_per_s = 0.0;
  }
  const std::vector<Check> checks = GpuChecks(system);
  const Check gen = FindCheck(checks, "pcie_gen_0");
  EXPECT_EQ(gen.status, CheckStatus::kInfo);
  EXPECT_THAT(gen.detail, HasSubstr("gen1 at idle"));
  EXPECT_EQ(FindCheck(checks, "bandwidth_0_1").status, CheckStatus::kSkipped);
  EXPECT_FALSE(AnyFailed(checks));
}

TEST(DoctorChecksTest, LowGenerationUnderLoadWarns) {
  SystemReport system = DualRtx4090();
  system.gpus[1].pcie_under_load.current_generation = 3;
  system.bandwidth[0].gb_per_s = 7.0;  // what gen3 x8 gives
  system.bandwidth[1].gb_per_s = 7.0;
  const std::vector<Check> checks = GpuChecks(system);
  const Check gen = FindCheck(checks, "pcie_gen_1");
  EXPECT_EQ(gen.status, CheckStatus::kWarn);
  EXPECT_THAT(gen.detail, HasSubstr("gen3 under load"));
  EXPECT_THAT(gen.fix, HasSubstr("BIOS"));
  // The bandwidth is judged against the gen3 link it ran on.
  EXPECT_EQ(FindCheck(checks, "bandwidth_0_1").status, CheckStatus::kOk);
}

TEST(DoctorChecksTest, ExpectedBandwidthFromTheLink) {
  EXPECT_NEAR(ExpectedPcieGbPerSecond(4, 8), 12.6, 0.05);
  EXPECT_NEAR(ExpectedPcieGbPerSecond(4, 8) / kPcieEfficiency, 15.76, 0.01);
  EXPECT_NEAR(ExpectedPcieGbPerSecond(3, 16), 12.6, 0.05);
  EXPECT_NEAR(ExpectedPcieGbPerSecond(5, 16), 50.4, 0.1);
  EXPECT_EQ(ExpectedPcieGbPerSecond(0, 16), 0.0);
  EXPECT_EQ(ExpectedPcieGbPerSecond(4, 0), 0.0);
}

TEST(DoctorChecksTest, BandwidthWithinExpectationIsOk) {
  const Check copy = FindCheck(GpuChecks(DualRtx4090()), "bandwidth_0_1");
  EXPECT_EQ(copy.status, CheckStatus::kOk);
  EXPECT_THAT(copy.detail, HasSubstr("14.2 GB/s"));
  EXPECT_THAT(copy.detail, HasSubstr("gen4 x8"));
}

TEST(DoctorChecksTest, LowBandwidthWarns) {
  SystemReport system = DualRtx4090();
  system.bandwidth[1].gb_per_s = 5.0;  // < 60 % of 12.6
  const std::vector<Check> checks = GpuChecks(system);
  EXPECT_EQ(FindCheck(checks, "bandwidth_0_1").status, CheckStatus::kOk);
  const Check low = FindCheck(checks, "bandwidth_1_0");
  EXPECT_EQ(low.status, CheckStatus::kWarn);
  EXPECT_THAT(low.detail, HasSubstr("5.0 GB/s"));
  EXPECT_THAT(low.fix, HasSubstr("host memory"));  // P2P is off here
  EXPECT_THAT(low.fix, HasSubstr("iommu=pt"));
}

TEST(DoctorChecksTest, BandwidthJudgedByTheNarrowerLink) {
  SystemReport system = DualRtx4090();
  system.gpus[0].pcie_under_load.current_width = 16;
  system.gpus[0].pcie_under_load.port_max_width = 16;
  system.bandwidth[0].gb_per_s = 14.0;  // fine for x8, low for x16
  EXPECT_EQ(FindCheck(GpuChecks(system), "bandwidth_0_1").status, CheckStatus::kOk);
}

TEST(DoctorChecksTest, FailedCopyFails) {
  SystemReport system = DualGpuWithP2p();
  system.bandwidth[0].measured = false;
  system.bandwidth[0].error = "copy did not finish within 20s";
  const Check copy = FindCheck(GpuChecks(system), "bandwidth_0_1");
  EXPECT_EQ(copy.status, CheckStatus::kFail);
  EXPECT_THAT(copy.fix, HasSubstr("NCCL_P2P_DISABLE=1"));
}

TEST(DoctorChecksTest, BusyGpuMemoryWarns) {
  SystemReport system = DualRtx4090();
  system.gpus[1].free_memory_bytes = 12 * kTestGiB;
  const Check memory = FindCheck(GpuChecks(system), "gpu_memory");
  EXPECT_EQ(memory.status, CheckStatus::kWarn);
  EXPECT_THAT(memory.detail, HasSubstr("GPU 1"));
  EXPECT_THAT(memory.fix, HasSubstr("--gpu-memory-utilization"));
}

TEST(DoctorChecksTest, CpuRules) {
  CpuReport cpu = HealthyCpu();
  cpu.vector_isa = false;
  cpu.isa = "scalar";
  cpu.shm_bytes = 64 << 20;  // docker's default
  cpu.ram_available_bytes = 2 * kTestGiB;
  cpu.matmul_ok = false;
  cpu.matmul_max_error = 0.5;
  const std::vector<Check> checks = CpuChecks(cpu);
  EXPECT_EQ(FindCheck(checks, "cpu_isa").status, CheckStatus::kWarn);
  const Check shm = FindCheck(checks, "shm");
  EXPECT_EQ(shm.status, CheckStatus::kWarn);
  EXPECT_THAT(shm.fix, HasSubstr("shm_size"));
  EXPECT_EQ(FindCheck(checks, "ram").status, CheckStatus::kWarn);
  EXPECT_EQ(FindCheck(checks, "cpu_matmul").status, CheckStatus::kFail);
  EXPECT_EQ(FindCheck(checks, "gloo").status, CheckStatus::kOk);

  const std::vector<Check> healthy = CpuChecks(HealthyCpu());
  for (const Check& check : healthy) EXPECT_EQ(check.status, CheckStatus::kOk) << check.id;
}

// Every check that is not ok tells the user what to do.
TEST(DoctorChecksTest, EveryNonOkCheckHasAFix) {
  std::vector<SystemReport> systems = {DualRtx4090(), DualGpuWithP2p(), SystemReport{}};
  SystemReport broken = DualGpuWithP2p();
  broken.cuda_driver_version = 11080;
  broken.cuda_runtime_version = 12040;
  broken.cuda_architectures = "90-real";
  broken.p2p[0].copy_ok = false;
  broken.nccl.ok = false;
  broken.nccl.timed_out = true;
  broken.gpus[0].free_memory_bytes = 0;
  broken.gpus[0].pcie_under_load.current_width = 4;
  broken.gpus[1].pcie_under_load.current_generation = 2;
  broken.gpus[1].nvlink_active_links = -1;
  broken.bandwidth[0].gb_per_s = 1.0;
  broken.bandwidth[1].measured = false;
  systems.push_back(broken);
  SystemReport no_links = DualRtx4090();
  for (GpuInfo& gpu : no_links.gpus) gpu.pcie_under_load = gpu.pcie_idle = PcieLink{};
  systems.push_back(no_links);
  CpuReport cpu;
  cpu.shm_bytes = 1;
  int non_ok = 0;
  for (const SystemReport& system : systems) {
    for (const Check& check : RunChecks(system, cpu)) {
      EXPECT_FALSE(check.id.empty());
      EXPECT_FALSE(check.title.empty()) << check.id;
      EXPECT_FALSE(check.detail.empty()) << check.id;
      if (check.status != CheckStatus::kOk) {
        ++non_ok;
        EXPECT_FALSE(check.fix.empty()) << check.id << ": " << check.detail;
      }
    }
  }
  EXPECT_GT(non_ok, 20);
}

}  // namespace
}  // namespace duet::doctor
