// The CPU path of duet doctor: the /proc parsers, and a real probe of this
// machine (CPU matmul against the reference, Gloo over 127.0.0.1).
#include "tools/doctor/cpu_checks.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/test_files.h"
#include "tools/doctor/doctor_checks.h"

namespace duet::doctor {
namespace {

using ::duet::testing::TempDir;

TEST(CpuChecksTest, ParsesMemInfo) {
  int64_t total = 0;
  int64_t available = 0;
  ParseMemInfo(
      "MemTotal:       131072000 kB\nMemFree:         1000 kB\nMemAvailable:   65536000 kB\n",
      &total, &available);
  EXPECT_EQ(total, int64_t{131072000} * 1024);
  EXPECT_EQ(available, int64_t{65536000} * 1024);
  ParseMemInfo("MemTotal: 1024 kB\n", &total, &available);
  EXPECT_EQ(total, 1024 * 1024);
  EXPECT_EQ(available, -1);
  ParseMemInfo("", &total, &available);
  EXPECT_EQ(total, -1);
}

TEST(CpuChecksTest, ParsesCpuModel) {
  EXPECT_EQ(ParseCpuModel("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD Ryzen 9 "
                          "7950X 16-Core Processor  \nmodel name\t: other\n"),
            "AMD Ryzen 9 7950X 16-Core Processor");
  EXPECT_EQ(ParseCpuModel("processor : 0\n"), "");
}

TEST(CpuChecksTest, ProbesThisMachine) {
  const CpuReport cpu = ProbeCpu(CpuProbeOptions{});
  EXPECT_GT(cpu.logical_cores, 0);
  EXPECT_FALSE(cpu.isa.empty());
  EXPECT_GT(cpu.ram_total_bytes, 0);
  EXPECT_GT(cpu.ram_available_bytes, 0);
  EXPECT_TRUE(cpu.matmul_ran);
  EXPECT_TRUE(cpu.matmul_ok) << cpu.matmul_error << " max error " << cpu.matmul_max_error;
  EXPECT_TRUE(cpu.gloo_ran);
  EXPECT_TRUE(cpu.gloo_ok) << cpu.gloo_error;
  for (const Check& check : CpuChecks(cpu)) {
    if (check.id == "cpu_matmul" || check.id == "gloo") {
      EXPECT_EQ(check.status, CheckStatus::kOk) << check.id << ": " << check.detail;
    }
  }
}

TEST(CpuChecksTest, MissingProcAndShmAreUnknown) {
  TempDir empty;
  CpuProbeOptions options;
  options.proc_root = empty.path().string();
  options.shm_path = (empty.path() / "no-shm").string();
  const CpuReport cpu = ProbeCpu(options);
  EXPECT_EQ(cpu.model, "");
  EXPECT_EQ(cpu.ram_total_bytes, -1);
  EXPECT_EQ(cpu.shm_bytes, -1);
  for (const Check& check : CpuChecks(cpu)) {
    if (check.id == "ram" || check.id == "shm") {
      EXPECT_EQ(check.status, CheckStatus::kSkipped) << check.id;
    }
  }
}

}  // namespace
}  // namespace duet::doctor
