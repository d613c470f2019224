// PCIe link state of a device from Linux sysfs:
//   <root>/bus/pci/devices/<bus id>/{current,max}_link_{width,speed}
// and the same max_* files of its upstream port (the directory above the
// device's real path), which say what the slot can do. `root` is "/sys" in
// production; tests point it at a temporary tree. Reads files only; safe
// from any thread.
#ifndef DUET_TOOLS_DOCTOR_PCIE_SYSFS_H_
#define DUET_TOOLS_DOCTOR_PCIE_SYSFS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "tools/doctor/system_report.h"

namespace duet::doctor {

inline constexpr char kSysfsRoot[] = "/sys";

// CUDA's bus id ("00000000:01:00.0", upper-case hex, 8-digit domain) in
// sysfs form ("0000:01:00.0"): lower case, the domain cut to 4 digits when
// its extra digits are zeros. Ids without a domain ("01:00.0") get "0000:".
std::string NormalizePciBusId(std::string_view bus_id);

// "16.0 GT/s PCIe" or "8.0 GT/s" → 4 or 3 (2.5→1, 5→2, 8→3, 16→4, 32→5,
// 64→6); 0 for anything else ("Unknown speed").
int32_t PcieGenerationFromSpeed(std::string_view speed);

// The link of `bus_id` (any form NormalizePciBusId takes). read is false,
// with `error` naming the missing path, when the device or its
// current_link_width is absent; other missing files leave their field 0.
PcieLink ReadPcieLink(const std::string& sysfs_root, std::string_view bus_id);

}  // namespace duet::doctor

#endif  // DUET_TOOLS_DOCTOR_PCIE_SYSFS_H_
