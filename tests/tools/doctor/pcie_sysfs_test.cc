// Reading PCIe links from a sysfs tree: a temporary directory laid out like
// /sys (devices under their root port, bus/pci/devices as symlinks).
#include "tools/doctor/pcie_sysfs.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/test_files.h"

namespace duet::doctor {
namespace {

namespace fs = std::filesystem;
using ::duet::testing::TempDir;
using ::testing::HasSubstr;

TEST(PcieSysfsTest, BusIdNormalisation) {
  EXPECT_EQ(NormalizePciBusId("00000000:01:00.0"), "0000:01:00.0");
  EXPECT_EQ(NormalizePciBusId("00000000:AF:00.0"), "0000:af:00.0");
  EXPECT_EQ(NormalizePciBusId("0000:02:00.0"), "0000:02:00.0");
  EXPECT_EQ(NormalizePciBusId("01:00.0"), "0000:01:00.0");
  EXPECT_EQ(NormalizePciBusId("00010000:E1:00.0"), "10000:e1:00.0");  // VMD domains
  EXPECT_EQ(NormalizePciBusId(" 00000000:01:00.0\n"), "0000:01:00.0");
}

TEST(PcieSysfsTest, SpeedToGeneration) {
  EXPECT_EQ(PcieGenerationFromSpeed("2.5 GT/s PCIe"), 1);
  EXPECT_EQ(PcieGenerationFromSpeed("5.0 GT/s PCIe"), 2);
  EXPECT_EQ(PcieGenerationFromSpeed("8.0 GT/s PCIe"), 3);
  EXPECT_EQ(PcieGenerationFromSpeed("16.0 GT/s PCIe"), 4);
  EXPECT_EQ(PcieGenerationFromSpeed("32.0 GT/s PCIe"), 5);
  EXPECT_EQ(PcieGenerationFromSpeed("64.0 GT/s PCIe"), 6);
  EXPECT_EQ(PcieGenerationFromSpeed("8.0 GT/s"), 3);  // older kernels
  EXPECT_EQ(PcieGenerationFromSpeed("2.5 GT/s"), 1);
  EXPECT_EQ(PcieGenerationFromSpeed("Unknown speed"), 0);
  EXPECT_EQ(PcieGenerationFromSpeed(""), 0);
  EXPECT_EQ(PcieGenerationFromSpeed("12.0 GT/s"), 0);
}

class SysfsTree {
 public:
  // A root port at 0000:00:01.0 with `port_width` lanes, gen `port_speed`.
  SysfsTree(const std::string& port_width, const std::string& port_speed) {
    port_ = dir_.path() / "devices" / "pci0000:00" / "0000:00:01.0";
    fs::create_directories(port_);
    Write(port_ / "max_link_width", port_width);
    Write(port_ / "max_link_speed", port_speed);
    fs::create_directories(dir_.path() / "bus" / "pci" / "devices");
  }

  // Adds a device under the port; returns its directory.
  fs::path AddDevice(const std::string& bus_id) {
    const fs::path device = port_ / bus_id;
    fs::create_directories(device);
    fs::create_directory_symlink(fs::path("../../../devices/pci0000:00/0000:00:01.0") / bus_id,
                                 dir_.path() / "bus" / "pci" / "devices" / bus_id);
    return device;
  }

  static void Write(const fs::path& path, const std::string& text) {
    std::ofstream(path) << text << "\n";
  }

  std::string root() const { return dir_.path().string(); }

 private:
  TempDir dir_;
  fs::path port_;
};

TEST(PcieSysfsTest, ReadsCardAndSlot) {
  SysfsTree tree("8", "16.0 GT/s PCIe");
  const fs::path device = tree.AddDevice("0000:01:00.0");
  SysfsTree::Write(device / "current_link_width", "8");
  SysfsTree::Write(device / "max_link_width", "16");
  SysfsTree::Write(device / "current_link_speed", "2.5 GT/s PCIe");
  SysfsTree::Write(device / "max_link_speed", "16.0 GT/s PCIe");

  const PcieLink link = ReadPcieLink(tree.root(), "00000000:01:00.0");  // CUDA's form
  ASSERT_TRUE(link.read) << link.error;
  EXPECT_EQ(link.current_width, 8);
  EXPECT_EQ(link.max_width, 16);
  EXPECT_EQ(link.current_generation, 1);
  EXPECT_EQ(link.max_generation, 4);
  EXPECT_EQ(link.port_max_width, 8);
  EXPECT_EQ(link.port_max_generation, 4);
}

TEST(PcieSysfsTest, MissingDeviceIsNotRead) {
  SysfsTree tree("16", "16.0 GT/s PCIe");
  const PcieLink link = ReadPcieLink(tree.root(), "0000:05:00.0");
  EXPECT_FALSE(link.read);
  EXPECT_THAT(link.error, HasSubstr("0000:05:00.0"));
}

TEST(PcieSysfsTest, MissingWidthIsNotRead) {
  SysfsTree tree("16", "16.0 GT/s PCIe");
  tree.AddDevice("0000:01:00.0");
  const PcieLink link = ReadPcieLink(tree.root(), "0000:01:00.0");
  EXPECT_FALSE(link.read);
  EXPECT_THAT(link.error, HasSubstr("current_link_width"));
}

TEST(PcieSysfsTest, MissingSpeedFilesLeaveZeros) {
  SysfsTree tree("16", "Unknown speed");
  const fs::path device = tree.AddDevice("0000:01:00.0");
  SysfsTree::Write(device / "current_link_width", "16");
  const PcieLink link = ReadPcieLink(tree.root(), "0000:01:00.0");
  ASSERT_TRUE(link.read);
  EXPECT_EQ(link.current_width, 16);
  EXPECT_EQ(link.max_width, 0);
  EXPECT_EQ(link.current_generation, 0);
  EXPECT_EQ(link.max_generation, 0);
  EXPECT_EQ(link.port_max_width, 16);
  EXPECT_EQ(link.port_max_generation, 0);
}

}  // namespace
}  // namespace duet::doctor
