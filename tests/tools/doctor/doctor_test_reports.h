// Synthetic reports for the doctor tests: a healthy dual RTX 4090
// workstation (x8/x8 on a consumer board, no P2P, NCCL fine) and a healthy
// CPU, which each test then breaks in one way.
#ifndef DUET_TESTS_TOOLS_DOCTOR_DOCTOR_TEST_REPORTS_H_
#define DUET_TESTS_TOOLS_DOCTOR_DOCTOR_TEST_REPORTS_H_

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tools/doctor/doctor_checks.h"
#include "tools/doctor/system_report.h"

namespace duet::doctor {

// gtest prints statuses by name.
inline void PrintTo(CheckStatus status, std::ostream* out) { *out << CheckStatusName(status); }

}  // namespace duet::doctor

namespace duet::doctor::testing {

inline constexpr int64_t kTestGiB = int64_t{1} << 30;

// gen4 x8 under load in an x8 slot (card x16), gen1 at idle.
inline PcieLink X8Link(bool under_load) {
  PcieLink link;
  link.read = true;
  link.current_width = 8;
  link.max_width = 16;
  link.current_generation = under_load ? 4 : 1;
  link.max_generation = 4;
  link.port_max_width = 8;
  link.port_max_generation = 4;
  return link;
}

inline SystemReport DualRtx4090() {
  SystemReport report;
  report.cuda_build = true;
  report.driver_version = "550.54.14";
  report.cuda_driver_version = 12040;
  report.cuda_runtime_version = 12040;
  report.cuda_architectures = "89";
  report.nvml_loaded = true;
  for (int i = 0; i < 2; ++i) {
    GpuInfo gpu;
    gpu.index = i;
    gpu.name = "NVIDIA GeForce RTX 4090";
    gpu.total_memory_bytes = 24 * kTestGiB;
    gpu.free_memory_bytes = 23 * kTestGiB + kTestGiB / 2;
    gpu.compute_capability_major = 8;
    gpu.compute_capability_minor = 9;
    gpu.pci_bus_id = i == 0 ? "0000:01:00.0" : "0000:02:00.0";
    gpu.nvlink_active_links = 0;
    gpu.pcie_idle = X8Link(/*under_load=*/false);
    gpu.pcie_under_load = X8Link(/*under_load=*/true);
    report.gpus.push_back(gpu);
  }
  report.p2p = {P2pPair{0, 1, false, false, false, ""}, P2pPair{1, 0, false, false, false, ""}};
  report.nccl.ran = true;
  report.nccl.ok = true;
  report.nccl.value_correct = true;
  report.nccl.seconds = 2.5;
  for (const auto& [src, dst] : {std::pair{0, 1}, std::pair{1, 0}}) {
    Bandwidth copy;
    copy.src = src;
    copy.dst = dst;
    copy.measured = true;
    copy.gb_per_s = 14.2;
    copy.bytes = int64_t{256} << 20;
    copy.repetitions = 5;
    report.bandwidth.push_back(copy);
  }
  return report;
}

// P2P reported both ways and verified.
inline SystemReport DualGpuWithP2p() {
  SystemReport report = DualRtx4090();
  for (P2pPair& pair : report.p2p) {
    pair.can_access_peer = true;
    pair.copy_tested = true;
    pair.copy_ok = true;
  }
  return report;
}

inline CpuReport HealthyCpu() {
  CpuReport cpu;
  cpu.model = "AMD Ryzen 9 7950X 16-Core Processor";
  cpu.logical_cores = 32;
  cpu.isa = "avx512";
  cpu.vector_isa = true;
  cpu.ram_total_bytes = 128 * kTestGiB;
  cpu.ram_available_bytes = 100 * kTestGiB;
  cpu.shm_bytes = 64 * kTestGiB;
  cpu.matmul_ran = true;
  cpu.matmul_ok = true;
  cpu.matmul_max_error = 1e-7;
  cpu.gloo_ran = true;
  cpu.gloo_ok = true;
  cpu.gloo_seconds = 0.05;
  return cpu;
}

// The check with `id`; fails the test when there is none.
inline Check FindCheck(const std::vector<Check>& checks, const std::string& id) {
  for (const Check& check : checks) {
    if (check.id == id) return check;
  }
  ADD_FAILURE() << "no check " << id;
  return Check{};
}

inline bool HasCheck(const std::vector<Check>& checks, const std::string& id) {
  for (const Check& check : checks) {
    if (check.id == id) return true;
  }
  return false;
}

}  // namespace duet::doctor::testing

#endif  // DUET_TESTS_TOOLS_DOCTOR_DOCTOR_TEST_REPORTS_H_
