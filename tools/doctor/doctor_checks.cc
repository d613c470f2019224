#include "tools/doctor/doctor_checks.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/str_cat.h"

namespace duet::doctor {
namespace {

constexpr double kGiBytes = 1024.0 * 1024.0 * 1024.0;

std::string Format(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), format, value);
  return buffer;
}

std::string Gib(int64_t bytes) { return Format("%.1f GiB", static_cast<double>(bytes) / kGiBytes); }

// 12040 → "12.4".
std::string CudaVersionText(int32_t version) {
  return StrCat(version / 1000, ".", (version % 1000) / 10);
}

Check MakeCheck(std::string id, std::string title, CheckStatus status, std::string detail,
                std::string fix = "") {
  return Check{std::move(id), std::move(title), status, std::move(detail), std::move(fix)};
}

std::string GpuLabel(const GpuInfo& gpu) { return StrCat("GPU ", gpu.index); }

// The smaller of two capabilities, ignoring unknown (0) ones.
int32_t MinKnown(int32_t a, int32_t b) {
  if (a == 0) return b;
  if (b == 0) return a;
  return std::min(a, b);
}

// What card and slot both support.
int32_t LinkCapabilityGeneration(const PcieLink& link) {
  return MinKnown(link.max_generation, link.port_max_generation);
}

// The reading that says most about the link in use: under load if taken.
const PcieLink& LinkInUse(const GpuInfo& gpu) {
  return gpu.pcie_under_load.read ? gpu.pcie_under_load : gpu.pcie_idle;
}

// Generation a copy runs at: the reading under load, or (idle readings are
// power-saving) the capability.
int32_t CopyGeneration(const GpuInfo& gpu) {
  if (gpu.pcie_under_load.read) return gpu.pcie_under_load.current_generation;
  return LinkCapabilityGeneration(gpu.pcie_idle);
}

bool AnyP2pReported(const SystemReport& system) {
  return std::any_of(system.p2p.begin(), system.p2p.end(),
                     [](const P2pPair& pair) { return pair.can_access_peer; });
}

constexpr char kP2pDisableFix[] =
    "set NCCL_P2P_DISABLE=1 for the workers (docker-compose: environment: "
    "NCCL_P2P_DISABLE: \"1\"); NCCL then goes through host memory, which works on every board";

Check GpusCheck(const SystemReport& system) {
  const std::string title = "GPUs";
  if (system.gpus.empty()) {
    if (!system.cuda_error.empty()) {
      return MakeCheck("gpus", title, CheckStatus::kFail,
                       StrCat("CUDA cannot use the GPUs: ", system.cuda_error),
                       "check that nvidia-smi lists the GPUs and that the driver supports this "
                       "CUDA (see the driver check); in docker, run with --gpus all (NVIDIA "
                       "Container Toolkit)");
    }
    return MakeCheck("gpus", title, CheckStatus::kInfo,
                     StrCat("no NVIDIA GPU found: duet will run on the CPU",
                            system.cuda_build ? "" : " (this duet was built without CUDA)"),
                     "nothing to fix for CPU serving; for GPUs, install the NVIDIA driver and "
                     "check nvidia-smi");
  }
  const auto describe = [](const GpuInfo& gpu) {
    std::string text = StrCat(gpu.name, ", ", Gib(gpu.total_memory_bytes));
    if (gpu.compute_capability_major > 0) {
      text += StrCat(", sm_", gpu.compute_capability_major, gpu.compute_capability_minor);
    }
    return text;
  };
  std::string detail;
  const std::string first = describe(system.gpus.front());
  const bool all_alike = std::all_of(system.gpus.begin(), system.gpus.end(),
                                     [&](const GpuInfo& gpu) { return describe(gpu) == first; });
  if (all_alike) {
    detail = StrCat(system.gpus.size(), system.gpus.size() == 1 ? " GPU: " : " GPUs: ", first);
  } else {
    detail = StrCat(system.gpus.size(), " GPUs: ");
    for (size_t i = 0; i < system.gpus.size(); ++i) {
      detail += StrCat(i > 0 ? "; " : "", system.gpus[i].index, ": ", describe(system.gpus[i]));
    }
  }
  if (!system.cuda_build) {
    return MakeCheck("gpus", title, CheckStatus::kWarn,
                     StrCat(detail, "; this duet was built without CUDA and runs on the CPU"),
                     "rebuild with cmake -DDUET_CUDA=ON (needs the CUDA toolkit and NCCL)");
  }
  if (system.gpus.size() == 1) {
    return MakeCheck("gpus", title, CheckStatus::kWarn, detail,
                     "tensor parallel 2 and expert parallel 2 need two GPUs; one GPU serves a "
                     "model that fits in it alone (--tensor-parallel-size 1)");
  }
  return MakeCheck("gpus", title, CheckStatus::kOk, detail);
}

void AddMemoryCheck(const SystemReport& system, std::vector<Check>* checks) {
  std::string busy;
  std::string all;
  bool known = false;
  for (const GpuInfo& gpu : system.gpus) {
    if (gpu.free_memory_bytes < 0 || gpu.total_memory_bytes <= 0) continue;
    known = true;
    const int64_t used = gpu.total_memory_bytes - gpu.free_memory_bytes;
    const std::string text = StrCat(GpuLabel(gpu), " ", Gib(gpu.free_memory_bytes), " free of ",
                                    Gib(gpu.total_memory_bytes));
    all += all.empty() ? text : "; " + text;
    if (static_cast<double>(used) >
        kBusyMemoryFraction * static_cast<double>(gpu.total_memory_bytes)) {
      busy += busy.empty() ? text : "; " + text;
    }
  }
  if (!known) return;
  if (!busy.empty()) {
    checks->push_back(MakeCheck(
        "gpu_memory", "GPU memory", CheckStatus::kWarn, StrCat("in use by other processes: ", busy),
        "nvidia-smi lists the processes; stop them (a desktop session takes a little) or lower "
        "--gpu-memory-utilization so duet's budget fits in what is free"));
    return;
  }
  checks->push_back(MakeCheck("gpu_memory", "GPU memory", CheckStatus::kOk, all));
}

void AddDriverCheck(const SystemReport& system, std::vector<Check>* checks) {
  const std::string title = "driver and CUDA";
  if (system.cuda_driver_version <= 0 || system.cuda_runtime_version <= 0) {
    if (system.gpus.empty() || !system.cuda_build) return;
    checks->push_back(MakeCheck("driver", title, CheckStatus::kSkipped,
                                "the driver's CUDA version is unknown",
                                "check nvidia-smi: its header shows the driver and CUDA versions"));
    return;
  }
  const std::string driver =
      system.driver_version.empty() ? "driver" : StrCat("driver ", system.driver_version);
  const std::string detail =
      StrCat(driver, " supports CUDA ", CudaVersionText(system.cuda_driver_version),
             "; duet was built with CUDA ", CudaVersionText(system.cuda_runtime_version));
  const std::string install = StrCat(
      "install an NVIDIA driver that supports CUDA ", CudaVersionText(system.cuda_runtime_version),
      " or newer (nvidia-smi shows the CUDA version a driver supports)");
  const int32_t driver_major = system.cuda_driver_version / 1000;
  const int32_t runtime_major = system.cuda_runtime_version / 1000;
  if (driver_major < runtime_major) {
    checks->push_back(
        MakeCheck("driver", title, CheckStatus::kFail,
                  StrCat(detail, ": the driver is too old for this CUDA"),
                  StrCat(install, ", or build duet with a CUDA ", driver_major, ".x toolkit")));
  } else if (system.cuda_driver_version < system.cuda_runtime_version) {
    checks->push_back(MakeCheck(
        "driver", title, CheckStatus::kWarn,
        StrCat(detail, ": runs by CUDA minor version compatibility, without PTX JIT"), install));
  } else {
    checks->push_back(MakeCheck("driver", title, CheckStatus::kOk, detail));
  }
}

void AddKernelImageCheck(const SystemReport& system, std::vector<Check>* checks) {
  std::string missing;
  std::string seen;
  for (const GpuInfo& gpu : system.gpus) {
    const std::string arch =
        StrCat("sm_", gpu.compute_capability_major, gpu.compute_capability_minor);
    if (seen.find(arch) == std::string::npos) seen += seen.empty() ? arch : ", " + arch;
    if (!HasKernelImage(system.cuda_architectures, gpu.compute_capability_major,
                        gpu.compute_capability_minor)) {
      missing += StrCat(missing.empty() ? "" : ", ", GpuLabel(gpu), " (", arch, ")");
    }
  }
  const std::string built =
      StrCat("built for ", system.cuda_architectures.empty() ? std::string("unknown architectures")
                                                             : system.cuda_architectures);
  if (!missing.empty()) {
    const GpuInfo& gpu = system.gpus.front();
    checks->push_back(MakeCheck(
        "kernels", "CUDA kernel images", CheckStatus::kFail,
        StrCat("no kernel image for ", missing, "; ", built),
        StrCat("rebuild with -DCMAKE_CUDA_ARCHITECTURES including the GPUs' architecture (e.g. ",
               gpu.compute_capability_major, gpu.compute_capability_minor, ")")));
    return;
  }
  checks->push_back(
      MakeCheck("kernels", "CUDA kernel images", CheckStatus::kOk, StrCat(seen, "; ", built)));
}

void AddNvlinkCheck(const SystemReport& system, std::vector<Check>* checks) {
  int32_t links = 0;
  for (const GpuInfo& gpu : system.gpus) {
    if (gpu.nvlink_active_links < 0) {
      checks->push_back(
          MakeCheck("nvlink", "NVLink", CheckStatus::kSkipped,
                    StrCat("unknown: NVML not available",
                           system.nvml_error.empty() ? "" : StrCat(" (", system.nvml_error, ")")),
                    "install the NVIDIA driver's libnvidia-ml.so.1 (nvidia-smi uses it)"));
      return;
    }
    links += gpu.nvlink_active_links;
  }
  if (links == 0) {
    checks->push_back(MakeCheck("nvlink", "NVLink", CheckStatus::kInfo,
                                "no NVLink: expected on GeForce cards; traffic goes over PCIe",
                                "nothing to fix: duet's collectives are sized for PCIe; ignore "
                                "tutorials that assume NVLink"));
    return;
  }
  checks->push_back(
      MakeCheck("nvlink", "NVLink", CheckStatus::kOk, StrCat(links, " active NVLink links")));
}

void AddP2pCheck(const SystemReport& system, std::vector<Check>* checks) {
  const std::string title = "GPU peer-to-peer";
  if (system.p2p.empty()) {
    checks->push_back(MakeCheck("p2p", title, CheckStatus::kSkipped, "not probed",
                                "run duet doctor in a CUDA build on the GPU machine"));
    return;
  }
  std::string broken;
  int reported = 0;
  for (const P2pPair& pair : system.p2p) {
    if (pair.can_access_peer) ++reported;
    if (pair.can_access_peer && pair.copy_tested && !pair.copy_ok) {
      broken += StrCat(broken.empty() ? "" : "; ", "GPU ", pair.src, "→", pair.dst, ": ",
                       pair.error.empty() ? "data came back wrong" : pair.error);
    }
  }
  if (!broken.empty()) {
    checks->push_back(MakeCheck("p2p", title, CheckStatus::kFail,
                                StrCat("P2P is reported but broken: ", broken), kP2pDisableFix));
    return;
  }
  if (reported == 0) {
    checks->push_back(MakeCheck(
        "p2p", title, CheckStatus::kInfo,
        "P2P not reported: NCCL uses host memory (expected on RTX 4090 with the stock driver)",
        "nothing to fix; all-reduce is slower than with P2P, which the bandwidth check measures"));
    return;
  }
  if (reported < static_cast<int>(system.p2p.size())) {
    checks->push_back(
        MakeCheck("p2p", title, CheckStatus::kWarn, "P2P reported in one direction only",
                  StrCat("a one-way P2P setup is unusual; if NCCL misbehaves, ", kP2pDisableFix)));
    return;
  }
  checks->push_back(MakeCheck("p2p", title, CheckStatus::kOk,
                              "P2P reported both ways; a copy there and back came back intact"));
}

void AddNcclCheck(const SystemReport& system, std::vector<Check>* checks) {
  const std::string title = "NCCL all-reduce";
  const NcclCheck& nccl = system.nccl;
  if (!nccl.ran) {
    checks->push_back(MakeCheck("nccl", title, CheckStatus::kSkipped,
                                nccl.skipped_reason.empty() ? "not run" : nccl.skipped_reason,
                                "run duet doctor in a CUDA build on the two-GPU machine"));
    return;
  }
  if (nccl.ok && nccl.value_correct) {
    checks->push_back(MakeCheck("nccl", title, CheckStatus::kOk,
                                StrCat("2 GPUs, correct sum in ", Format("%.1f s", nccl.seconds),
                                       " (with communicator setup)")));
    return;
  }
  std::string detail;
  if (nccl.timed_out) {
    detail = StrCat("timed out after ", Format("%.0f s", nccl.seconds));
  } else if (!nccl.ok) {
    detail = StrCat("failed: ", nccl.error);
  } else {
    detail = "finished but the sum is wrong";
  }
  const bool p2p_disabled = !system.nccl_p2p_disable.empty() && system.nccl_p2p_disable != "0";
  if (AnyP2pReported(system) && !p2p_disabled) {
    checks->push_back(MakeCheck("nccl", title, CheckStatus::kFail,
                                StrCat(detail, " with P2P on (P2P reported but not working)"),
                                kP2pDisableFix));
    return;
  }
  checks->push_back(MakeCheck(
      "nccl", title, CheckStatus::kFail,
      StrCat(detail, p2p_disabled ? " (NCCL_P2P_DISABLE set)" : " (P2P off)"),
      "rerun with NCCL_DEBUG=INFO to see the transport NCCL picks and where it stops; NCCL's host "
      "transport needs /dev/shm (docker: shm_size: 1gb or ipc: host)"));
}

void AddPcieChecks(const GpuInfo& gpu, std::vector<Check>* checks) {
  const std::string label = GpuLabel(gpu);
  const std::string width_id = StrCat("pcie_width_", gpu.index);
  const std::string gen_id = StrCat("pcie_gen_", gpu.index);
  if (!gpu.pcie_idle.read && !gpu.pcie_under_load.read) {
    checks->push_back(
        MakeCheck(width_id, StrCat("PCIe link ", label), CheckStatus::kSkipped,
                  gpu.pcie_idle.error.empty() ? "link not readable" : gpu.pcie_idle.error,
                  "in a container, mount /sys read-only from the host to see it"));
    return;
  }
  const PcieLink& link = LinkInUse(gpu);
  const int32_t width = link.current_width;
  const int32_t card_width = link.max_width;
  const std::string width_title = StrCat("PCIe width ", label);
  if (width <= kNarrowLinkWidth) {
    checks->push_back(MakeCheck(
        width_id, width_title, CheckStatus::kWarn,
        StrCat("x", width, card_width > 0 ? StrCat(" (the card does x", card_width, ")") : "",
               ": a quarter of x16 or less, all-reduce and weight loading crawl"),
        "move the card to a CPU-attached slot (the board manual says which slots hang off the "
        "chipset), and check BIOS PCIe bifurcation (x8/x8, not x8/x4/x4)"));
  } else if (card_width > 0 && width < card_width) {
    const bool slot_limited = link.port_max_width > 0 && width >= link.port_max_width;
    if (slot_limited) {
      checks->push_back(MakeCheck(
          width_id, width_title, CheckStatus::kWarn,
          StrCat("x", width, " on an x", card_width, " card: the slot gives x", width,
                 "; two GPUs on a consumer board usually run x8/x8"),
          "expected with two cards on a consumer board (the CPU's 16 lanes are split); x16 for "
          "both needs a workstation board"));
    } else {
      checks->push_back(MakeCheck(
          width_id, width_title, CheckStatus::kWarn,
          StrCat("x", width, " in an x", card_width,
                 " slot: the link trained narrower than card and slot"),
          "reseat the card, check the riser cable, and check whether an M.2 drive shares the "
          "slot's lanes (board manual)"));
    }
  } else {
    checks->push_back(MakeCheck(width_id, width_title, CheckStatus::kOk,
                                StrCat("x", width, gpu.pcie_under_load.read ? " under load" : "")));
  }

  const std::string gen_title = StrCat("PCIe generation ", label);
  const int32_t capability = LinkCapabilityGeneration(link);
  if (gpu.pcie_under_load.read && gpu.pcie_under_load.current_generation > 0) {
    const int32_t generation = gpu.pcie_under_load.current_generation;
    if (capability > 0 && generation < capability) {
      checks->push_back(
          MakeCheck(gen_id, gen_title, CheckStatus::kWarn,
                    StrCat("gen", generation, " under load; card and slot support gen", capability),
                    StrCat("set the slot to Gen", capability,
                           " or Auto in the BIOS; riser cables often force a lower generation")));
    } else {
      checks->push_back(
          MakeCheck(gen_id, gen_title, CheckStatus::kOk, StrCat("gen", generation, " under load")));
    }
    return;
  }
  const int32_t idle_generation = gpu.pcie_idle.current_generation;
  if (idle_generation == 0) {
    checks->push_back(MakeCheck(gen_id, gen_title, CheckStatus::kSkipped, "link speed not readable",
                                "check /sys/bus/pci/devices/<bus id>/current_link_speed"));
  } else if (capability > 0 && idle_generation < capability) {
    checks->push_back(MakeCheck(
        gen_id, gen_title, CheckStatus::kInfo,
        StrCat("gen", idle_generation, " at idle (power saving; up to gen", capability,
               "); not read under load"),
        "nothing to fix: GeForce cards lower the link at idle; the bandwidth check (two GPUs, "
        "without --skip-bandwidth) reads it under load"));
  } else {
    checks->push_back(
        MakeCheck(gen_id, gen_title, CheckStatus::kOk, StrCat("gen", idle_generation)));
  }
}

const GpuInfo* FindGpu(const SystemReport& system, int32_t index) {
  for (const GpuInfo& gpu : system.gpus) {
    if (gpu.index == index) return &gpu;
  }
  return nullptr;
}

void AddBandwidthCheck(const SystemReport& system, const Bandwidth& copy,
                       std::vector<Check>* checks) {
  const std::string id = StrCat("bandwidth_", copy.src, "_", copy.dst);
  const std::string title = StrCat("GPU ", copy.src, "→", copy.dst, " bandwidth");
  if (!copy.measured) {
    if (system.bandwidth_skipped) {
      checks->push_back(MakeCheck(id, title, CheckStatus::kSkipped, "--skip-bandwidth",
                                  "run without --skip-bandwidth to measure it"));
    } else {
      checks->push_back(
          MakeCheck(id, title, CheckStatus::kFail, StrCat("copy failed: ", copy.error),
                    StrCat("check dmesg for NVIDIA Xid errors; if P2P is on, ", kP2pDisableFix)));
    }
    return;
  }
  const std::string measured = Format("%.1f GB/s", copy.gb_per_s);
  const GpuInfo* src = FindGpu(system, copy.src);
  const GpuInfo* dst = FindGpu(system, copy.dst);
  double expected = 0.0;
  std::string link_text;
  for (const GpuInfo* gpu : {src, dst}) {
    if (gpu == nullptr || (!gpu->pcie_idle.read && !gpu->pcie_under_load.read)) continue;
    const int32_t generation = CopyGeneration(*gpu);
    const int32_t width = LinkInUse(*gpu).current_width;
    const double gpu_expected = ExpectedPcieGbPerSecond(generation, width);
    if (gpu_expected > 0.0 && (expected == 0.0 || gpu_expected < expected)) {
      expected = gpu_expected;
      link_text = StrCat("gen", generation, " x", width);
    }
  }
  if (expected == 0.0) {
    checks->push_back(MakeCheck(id, title, CheckStatus::kInfo,
                                StrCat(measured, " (PCIe link unknown, no expectation)"),
                                "the PCIe checks say why the link could not be read"));
    return;
  }
  const std::string expectation =
      StrCat("expected ≈", Format("%.1f", expected), "–",
             Format("%.1f GB/s", expected / kPcieEfficiency), " for ", link_text);
  if (copy.gb_per_s < kLowBandwidthFraction * expected) {
    const std::string p2p_note =
        AnyP2pReported(system)
            ? ""
            : "without P2P every copy is staged through host memory, which costs up to half; ";
    checks->push_back(MakeCheck(
        id, title, CheckStatus::kWarn, StrCat(measured, ", ", expectation),
        StrCat(p2p_note,
               "check that both cards sit in CPU-attached slots (not behind the chipset), that the "
               "IOMMU is off or in passthrough (kernel option iommu=pt), and that nothing else "
               "copies at the same time")));
    return;
  }
  checks->push_back(MakeCheck(id, title, CheckStatus::kOk, StrCat(measured, ", ", expectation)));
}

}  // namespace

std::string_view CheckStatusName(CheckStatus status) {
  switch (status) {
    case CheckStatus::kOk:
      return "ok";
    case CheckStatus::kWarn:
      return "warn";
    case CheckStatus::kFail:
      return "fail";
    case CheckStatus::kInfo:
      return "info";
    case CheckStatus::kSkipped:
      return "skipped";
  }
  return "unknown";
}

double ExpectedPcieGbPerSecond(int32_t generation, int32_t width) {
  // Per-lane, per-direction GB/s after line coding (8b/10b for gen1-2,
  // 128b/130b from gen3; gen6's FLIT mode is taken at the same 2× step).
  constexpr double kLaneGbPerSecond[] = {0.0, 0.25, 0.5, 0.985, 1.97, 3.94, 7.88};
  if (generation < 1 || generation > 6 || width <= 0) return 0.0;
  return kLaneGbPerSecond[generation] * width * kPcieEfficiency;
}

bool HasKernelImage(std::string_view architectures, int32_t major, int32_t minor) {
  const int32_t capability = major * 10 + minor;
  size_t start = 0;
  while (start <= architectures.size()) {
    size_t end = architectures.find_first_of(";, ", start);
    if (end == std::string_view::npos) end = architectures.size();
    const std::string entry(architectures.substr(start, end - start));
    start = end + 1;
    if (entry.empty()) continue;
    if (entry == "all" || entry == "all-major" || entry == "native") return true;
    char* rest = nullptr;
    const long arch = std::strtol(entry.c_str(), &rest, 10);
    if (rest == entry.c_str()) continue;
    const std::string suffix = rest;
    // "90a" / "100f": architecture-specific SASS only, no PTX.
    const bool specific = !suffix.empty() && (suffix[0] == 'a' || suffix[0] == 'f');
    const bool real = suffix.find("-virtual") == std::string::npos;
    const bool virtual_too = suffix.find("-real") == std::string::npos && !specific;
    if (real && arch / 10 == major && arch % 10 <= minor && (!specific || arch == capability)) {
      return true;
    }
    if (virtual_too && arch <= capability) return true;  // PTX, JIT-compiled by the driver
  }
  return false;
}

std::vector<Check> GpuChecks(const SystemReport& system) {
  std::vector<Check> checks;
  checks.push_back(GpusCheck(system));
  AddDriverCheck(system, &checks);
  if (system.gpus.empty()) return checks;
  AddMemoryCheck(system, &checks);
  if (system.cuda_build) AddKernelImageCheck(system, &checks);
  if (system.gpus.size() >= 2) AddNvlinkCheck(system, &checks);
  if (system.cuda_build && system.gpus.size() >= 2) {
    AddP2pCheck(system, &checks);
    AddNcclCheck(system, &checks);
  }
  for (const GpuInfo& gpu : system.gpus) AddPcieChecks(gpu, &checks);
  for (const Bandwidth& copy : system.bandwidth) AddBandwidthCheck(system, copy, &checks);
  return checks;
}

std::vector<Check> CpuChecks(const CpuReport& cpu) {
  std::vector<Check> checks;
  const std::string cpu_text = StrCat(cpu.model.empty() ? "unknown CPU" : cpu.model, ", ",
                                      cpu.logical_cores, " threads, kernels: ", cpu.isa);
  if (cpu.vector_isa) {
    checks.push_back(MakeCheck("cpu_isa", "CPU", CheckStatus::kOk, cpu_text));
  } else {
    checks.push_back(MakeCheck("cpu_isa", "CPU", CheckStatus::kWarn,
                               StrCat(cpu_text, ": no AVX2/FMA, the CPU kernels run scalar code"),
                               "CPU serving is several times slower without AVX2 and FMA "
                               "(x86-64-v3); use such a CPU or serve on GPUs"));
  }

  if (cpu.ram_total_bytes < 0 || cpu.ram_available_bytes < 0) {
    checks.push_back(MakeCheck("ram", "RAM", CheckStatus::kSkipped, "/proc/meminfo not readable",
                               "run on Linux with /proc mounted"));
  } else {
    const std::string detail =
        StrCat(Gib(cpu.ram_available_bytes), " available of ", Gib(cpu.ram_total_bytes));
    if (cpu.ram_available_bytes < kLowRamAvailableBytes) {
      checks.push_back(MakeCheck("ram", "RAM", CheckStatus::kWarn, detail,
                                 "free memory before serving: checkpoints are read through host "
                                 "memory and CPU workers keep weights and KV cache there"));
    } else {
      checks.push_back(MakeCheck("ram", "RAM", CheckStatus::kOk, detail));
    }
  }

  if (cpu.shm_bytes < 0) {
    checks.push_back(MakeCheck("shm", "/dev/shm", CheckStatus::kSkipped, "/dev/shm not mounted",
                               "mount a tmpfs on /dev/shm (docker does; size it with shm_size)"));
  } else if (cpu.shm_bytes < kMinShmBytes) {
    checks.push_back(MakeCheck(
        "shm", "/dev/shm", CheckStatus::kWarn,
        StrCat(Gib(cpu.shm_bytes), ": too small for NCCL's and Gloo's host transport"),
        "docker-compose: shm_size: 1gb (or ipc: host); docker run: --shm-size=1g; on a host: "
        "mount -o remount,size=1G /dev/shm"));
  } else {
    checks.push_back(MakeCheck("shm", "/dev/shm", CheckStatus::kOk, Gib(cpu.shm_bytes)));
  }

  if (!cpu.matmul_ran) {
    checks.push_back(MakeCheck("cpu_matmul", "CPU kernels", CheckStatus::kSkipped,
                               cpu.matmul_error.empty() ? "not run" : cpu.matmul_error,
                               "run duet doctor without restrictions"));
  } else if (cpu.matmul_ok) {
    checks.push_back(MakeCheck("cpu_matmul", "CPU kernels", CheckStatus::kOk,
                               StrCat(cpu.isa, " matmul matches the reference (max error ",
                                      Format("%.1e", cpu.matmul_max_error), ")")));
  } else {
    checks.push_back(MakeCheck(
        "cpu_matmul", "CPU kernels", CheckStatus::kFail,
        StrCat(cpu.isa, " matmul disagrees with the reference: ",
               cpu.matmul_error.empty() ? Format("max error %.1e", cpu.matmul_max_error)
                                        : cpu.matmul_error),
        "report it with the CPU model; meanwhile --backend reference computes correctly, slowly"));
  }

  if (!cpu.gloo_ran) {
    checks.push_back(MakeCheck("gloo", "Gloo all-reduce", CheckStatus::kSkipped,
                               cpu.gloo_error.empty() ? "not run" : cpu.gloo_error,
                               "run duet doctor without restrictions"));
  } else if (cpu.gloo_ok) {
    checks.push_back(MakeCheck(
        "gloo", "Gloo all-reduce", CheckStatus::kOk,
        StrCat("2 ranks over 127.0.0.1, correct sum in ", Format("%.2f s", cpu.gloo_seconds))));
  } else {
    checks.push_back(MakeCheck("gloo", "Gloo all-reduce", CheckStatus::kFail,
                               StrCat("2 ranks over 127.0.0.1: ", cpu.gloo_error),
                               "CPU workers talk TCP: check the loopback interface (ip addr show "
                               "lo) and any firewall rule on it; in docker the workers' hostnames "
                               "must resolve to each other"));
  }
  return checks;
}

std::vector<Check> RunChecks(const SystemReport& system, const CpuReport& cpu) {
  std::vector<Check> checks = GpuChecks(system);
  std::vector<Check> cpu_checks = CpuChecks(cpu);
  checks.insert(checks.end(), cpu_checks.begin(), cpu_checks.end());
  return checks;
}

bool AnyFailed(const std::vector<Check>& checks) {
  return std::any_of(checks.begin(), checks.end(),
                     [](const Check& check) { return check.status == CheckStatus::kFail; });
}

}  // namespace duet::doctor
