// The two outputs of `duet doctor`: a short table for a person and a JSON
// document for programs. Pure functions; safe from any thread.
//
// Table: one line per check, "<mark> <title> <detail>", marks ✓ ok,
// ! warn, ✗ fail, · info, - skipped; the fix is printed under every warning
// and failure; then a one-line count; then the fit table when there is one.
//
// JSON (sizes in bytes):
//   {"gpus": [{"index", "name", "total_memory_bytes", "free_memory_bytes",
//              "compute_capability": "8.9", "pci_bus_id",
//              "nvlink_active_links" (null: unknown),
//              "pcie": {"idle": LINK, "under_load": LINK | null}}],
//    "cuda": {"build", "error", "driver_version", "driver_cuda_version",
//             "runtime_version", "architectures", "nvml": {"loaded", "error"},
//             "nccl_p2p_disable",
//             "p2p": [{"src", "dst", "can_access_peer", "copy_tested",
//                      "copy_ok", "error"}],
//             "nccl": {"ran", "ok", "timed_out", "value_correct", "seconds",
//                      "error", "skipped_reason"},
//             "bandwidth": [{"src", "dst", "measured", "gb_per_s", "bytes",
//                            "repetitions", "error"}],
//             "bandwidth_skipped", "copy_hung"},
//    "cpu": {"model", "logical_cores", "isa", "ram_total_bytes",
//            "ram_available_bytes", "shm_bytes", "matmul": {...},
//            "gloo": {...}},
//    "checks": [{"id", "status", "title", "detail", "fix"}],
//    "summary": {"ok", "warn", "fail", "info", "skipped"},
//    "fit": FitReportJson (fit_report.h) plus "gpus_source"}   (with --model)
//   LINK = {"current_width", "max_width", "current_generation",
//           "max_generation", "port_max_width", "port_max_generation"}
//   (0: unknown) or null when not read.
#ifndef DUET_TOOLS_DOCTOR_DOCTOR_REPORT_H_
#define DUET_TOOLS_DOCTOR_DOCTOR_REPORT_H_

#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "tools/doctor/doctor_checks.h"
#include "tools/doctor/fit.h"
#include "tools/doctor/system_report.h"

namespace duet::doctor {

// The fit part of a doctor run (with --model).
struct DoctorFit {
  std::string model_name;
  FitReport report;
  // How the GPU count and memory were chosen, e.g. "detected: 2 × 24.0 GiB".
  std::string gpus_source;
};

nlohmann::ordered_json DoctorJson(const SystemReport& system, const CpuReport& cpu,
                                  const std::vector<Check>& checks, const DoctorFit* fit);

std::string DoctorTable(const std::vector<Check>& checks, const DoctorFit* fit);

}  // namespace duet::doctor

#endif  // DUET_TOOLS_DOCTOR_DOCTOR_REPORT_H_
