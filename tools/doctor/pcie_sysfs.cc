#include "tools/doctor/pcie_sysfs.h"

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/str_cat.h"

namespace duet::doctor {
namespace {

namespace fs = std::filesystem;

// The first line of a sysfs attribute, or "" when it cannot be read.
std::string ReadAttribute(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  if (!in.is_open() || !std::getline(in, line)) return "";
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
  return line;
}

int32_t ReadWidth(const fs::path& path) {
  const std::string text = ReadAttribute(path);
  if (text.empty()) return 0;
  char* end = nullptr;
  const long width = std::strtol(text.c_str(), &end, 10);
  return (end != text.c_str() && width > 0 && width <= 32) ? static_cast<int32_t>(width) : 0;
}

int32_t ReadGeneration(const fs::path& path) {
  return PcieGenerationFromSpeed(ReadAttribute(path));
}

}  // namespace

std::string NormalizePciBusId(std::string_view bus_id) {
  std::string id;
  for (char c : bus_id) {
    if (!std::isspace(static_cast<unsigned char>(c))) {
      id += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  const size_t first_colon = id.find(':');
  const size_t last_colon = id.rfind(':');
  if (first_colon == std::string::npos) return id;
  if (first_colon == last_colon) return "0000:" + id;  // "01:00.0": no domain
  std::string domain = id.substr(0, first_colon);
  while (domain.size() > 4 && domain.front() == '0') domain.erase(0, 1);
  while (domain.size() < 4) domain.insert(0, "0");
  return domain + id.substr(first_colon);
}

int32_t PcieGenerationFromSpeed(std::string_view speed) {
  const std::string text(speed);
  char* end = nullptr;
  const double gigatransfers = std::strtod(text.c_str(), &end);
  if (end == text.c_str()) return 0;
  struct Step {
    double gigatransfers;
    int32_t generation;
  };
  constexpr Step kSteps[] = {{2.5, 1}, {5.0, 2}, {8.0, 3}, {16.0, 4}, {32.0, 5}, {64.0, 6}};
  for (const Step& step : kSteps) {
    if (gigatransfers > step.gigatransfers - 0.1 && gigatransfers < step.gigatransfers + 0.1) {
      return step.generation;
    }
  }
  return 0;
}

PcieLink ReadPcieLink(const std::string& sysfs_root, std::string_view bus_id) {
  PcieLink link;
  const fs::path device =
      fs::path(sysfs_root) / "bus" / "pci" / "devices" / NormalizePciBusId(bus_id);
  std::error_code error;
  if (!fs::exists(device, error)) {
    link.error = StrCat("no PCI device ", device.string());
    return link;
  }
  link.current_width = ReadWidth(device / "current_link_width");
  if (link.current_width == 0) {
    link.error = StrCat("cannot read ", (device / "current_link_width").string());
    return link;
  }
  link.read = true;
  link.max_width = ReadWidth(device / "max_link_width");
  link.current_generation = ReadGeneration(device / "current_link_speed");
  link.max_generation = ReadGeneration(device / "max_link_speed");
  // The upstream port: the parent directory of the device's real path
  // (/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0 → 0000:00:01.0).
  const fs::path real = fs::canonical(device, error);
  if (!error) {
    const fs::path port = real.parent_path();
    link.port_max_width = ReadWidth(port / "max_link_width");
    link.port_max_generation = ReadGeneration(port / "max_link_speed");
  }
  return link;
}

}  // namespace duet::doctor
