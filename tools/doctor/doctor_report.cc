#include "tools/doctor/doctor_report.h"

#include <map>
#include <string_view>

#include "common/str_cat.h"
#include "tools/doctor/fit_report.h"

namespace duet::doctor {
namespace {

using Json = nlohmann::ordered_json;

constexpr size_t kTitleColumns = 26;

std::string_view Mark(CheckStatus status) {
  switch (status) {
    case CheckStatus::kOk:
      return "✓";
    case CheckStatus::kWarn:
      return "!";
    case CheckStatus::kFail:
      return "✗";
    case CheckStatus::kInfo:
      return "·";
    case CheckStatus::kSkipped:
      return "-";
  }
  return "?";
}

Json LinkJson(const PcieLink& link) {
  if (!link.read) return nullptr;
  return Json{{"current_width", link.current_width},
              {"max_width", link.max_width},
              {"current_generation", link.current_generation},
              {"max_generation", link.max_generation},
              {"port_max_width", link.port_max_width},
              {"port_max_generation", link.port_max_generation}};
}

Json GpuJson(const GpuInfo& gpu) {
  Json json = {{"index", gpu.index},
               {"name", gpu.name},
               {"total_memory_bytes", gpu.total_memory_bytes},
               {"free_memory_bytes", gpu.free_memory_bytes},
               {"compute_capability",
                StrCat(gpu.compute_capability_major, ".", gpu.compute_capability_minor)},
               {"pci_bus_id", gpu.pci_bus_id}};
  json["nvlink_active_links"] =
      gpu.nvlink_active_links < 0 ? Json(nullptr) : Json(gpu.nvlink_active_links);
  json["pcie"] = {{"idle", LinkJson(gpu.pcie_idle)}, {"under_load", LinkJson(gpu.pcie_under_load)}};
  if (!gpu.pcie_idle.read) json["pcie"]["error"] = gpu.pcie_idle.error;
  return json;
}

std::string CudaVersion(int32_t version) {
  if (version <= 0) return "";
  return StrCat(version / 1000, ".", (version % 1000) / 10);
}

Json CudaJson(const SystemReport& system) {
  Json p2p = Json::array();
  for (const P2pPair& pair : system.p2p) {
    p2p.push_back({{"src", pair.src},
                   {"dst", pair.dst},
                   {"can_access_peer", pair.can_access_peer},
                   {"copy_tested", pair.copy_tested},
                   {"copy_ok", pair.copy_ok},
                   {"error", pair.error}});
  }
  Json bandwidth = Json::array();
  for (const Bandwidth& copy : system.bandwidth) {
    bandwidth.push_back({{"src", copy.src},
                         {"dst", copy.dst},
                         {"measured", copy.measured},
                         {"gb_per_s", copy.gb_per_s},
                         {"bytes", copy.bytes},
                         {"repetitions", copy.repetitions},
                         {"error", copy.error}});
  }
  const NcclCheck& nccl = system.nccl;
  return Json{{"build", system.cuda_build},
              {"error", system.cuda_error},
              {"driver_version", system.driver_version},
              {"driver_cuda_version", CudaVersion(system.cuda_driver_version)},
              {"runtime_version", CudaVersion(system.cuda_runtime_version)},
              {"architectures", system.cuda_architectures},
              {"nvml", {{"loaded", system.nvml_loaded}, {"error", system.nvml_error}}},
              {"nccl_p2p_disable", system.nccl_p2p_disable},
              {"p2p", p2p},
              {"nccl",
               {{"ran", nccl.ran},
                {"ok", nccl.ok},
                {"timed_out", nccl.timed_out},
                {"value_correct", nccl.value_correct},
                {"seconds", nccl.seconds},
                {"error", nccl.error},
                {"skipped_reason", nccl.skipped_reason}}},
              {"bandwidth", bandwidth},
              {"bandwidth_skipped", system.bandwidth_skipped},
              {"copy_hung", system.copy_hung}};
}

Json CpuJson(const CpuReport& cpu) {
  return Json{{"model", cpu.model},
              {"logical_cores", cpu.logical_cores},
              {"isa", cpu.isa},
              {"ram_total_bytes", cpu.ram_total_bytes},
              {"ram_available_bytes", cpu.ram_available_bytes},
              {"shm_bytes", cpu.shm_bytes},
              {"matmul",
               {{"ran", cpu.matmul_ran},
                {"ok", cpu.matmul_ok},
                {"max_error", cpu.matmul_max_error},
                {"error", cpu.matmul_error}}},
              {"gloo",
               {{"ran", cpu.gloo_ran},
                {"ok", cpu.gloo_ok},
                {"seconds", cpu.gloo_seconds},
                {"error", cpu.gloo_error}}}};
}

std::map<CheckStatus, int> CountByStatus(const std::vector<Check>& checks) {
  std::map<CheckStatus, int> counts;
  for (const Check& check : checks) ++counts[check.status];
  return counts;
}

}  // namespace

Json DoctorJson(const SystemReport& system, const CpuReport& cpu, const std::vector<Check>& checks,
                const DoctorFit* fit) {
  Json gpus = Json::array();
  for (const GpuInfo& gpu : system.gpus) gpus.push_back(GpuJson(gpu));
  Json check_list = Json::array();
  for (const Check& check : checks) {
    check_list.push_back({{"id", check.id},
                          {"status", CheckStatusName(check.status)},
                          {"title", check.title},
                          {"detail", check.detail},
                          {"fix", check.fix}});
  }
  std::map<CheckStatus, int> counts = CountByStatus(checks);
  Json summary = Json::object();
  for (CheckStatus status : {CheckStatus::kOk, CheckStatus::kWarn, CheckStatus::kFail,
                             CheckStatus::kInfo, CheckStatus::kSkipped}) {
    summary[std::string(CheckStatusName(status))] = counts[status];
  }
  Json json = {{"gpus", gpus},
               {"cuda", CudaJson(system)},
               {"cpu", CpuJson(cpu)},
               {"checks", check_list},
               {"summary", summary}};
  if (fit != nullptr) {
    json["fit"] = FitReportJson(fit->report, fit->model_name);
    json["fit"]["gpus_source"] = fit->gpus_source;
  }
  return json;
}

std::string DoctorTable(const std::vector<Check>& checks, const DoctorFit* fit) {
  std::string out;
  for (const Check& check : checks) {
    out += StrCat(Mark(check.status), " ", PadToColumns(check.title, kTitleColumns), check.detail,
                  "\n");
    if ((check.status == CheckStatus::kFail || check.status == CheckStatus::kWarn) &&
        !check.fix.empty()) {
      out += StrCat("    fix: ", check.fix, "\n");
    }
  }
  std::map<CheckStatus, int> counts = CountByStatus(checks);
  const auto counted = [](int count, std::string_view one, std::string_view many) {
    return StrCat(count, " ", count == 1 ? one : many);
  };
  out += StrCat("\n", counted(static_cast<int>(checks.size()), "check", "checks"), ": ",
                counts[CheckStatus::kOk], " ok, ",
                counted(counts[CheckStatus::kWarn], "warning", "warnings"), ", ",
                counts[CheckStatus::kFail], " failed, ",
                counted(counts[CheckStatus::kInfo], "note", "notes"), ", ",
                counts[CheckStatus::kSkipped], " skipped\n");
  if (fit != nullptr) {
    out += StrCat("\nFit (", fit->gpus_source, "):\n");
    out += FitReportTable(fit->report, fit->model_name);
  }
  return out;
}

}  // namespace duet::doctor
