#include "tools/doctor/nvml_probe.h"

#include <dlfcn.h>

#include "common/str_cat.h"
#include "tools/doctor/pcie_sysfs.h"

namespace duet::doctor {
namespace {

// The few NVML declarations used, from NVML's documented API (nvml.h is not
// needed to build duet).
using NvmlReturn = int;  // nvmlReturn_t
using NvmlDevice = struct NvmlDeviceOpaque*;
constexpr NvmlReturn kNvmlSuccess = 0;
constexpr unsigned int kNvlinkMaxLinks = 18;  // NVML_NVLINK_MAX_LINKS
constexpr int kNvmlFeatureEnabled = 1;        // NVML_FEATURE_ENABLED

struct NvmlMemory {  // nvmlMemory_t
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};

struct NvmlPciInfo {  // nvmlPciInfo_t (v3)
  char bus_id_legacy[16];
  unsigned int domain;
  unsigned int bus;
  unsigned int device;
  unsigned int pci_device_id;
  unsigned int pci_subsystem_id;
  char bus_id[32];
};

struct NvmlApi {
  NvmlReturn (*init)();
  NvmlReturn (*shutdown)();
  const char* (*error_string)(NvmlReturn);
  NvmlReturn (*driver_version)(char*, unsigned int);
  NvmlReturn (*cuda_driver_version)(int*);
  NvmlReturn (*device_count)(unsigned int*);
  NvmlReturn (*handle_by_index)(unsigned int, NvmlDevice*);
  NvmlReturn (*name)(NvmlDevice, char*, unsigned int);
  NvmlReturn (*memory_info)(NvmlDevice, NvmlMemory*);
  NvmlReturn (*pci_info)(NvmlDevice, NvmlPciInfo*);
  NvmlReturn (*compute_capability)(NvmlDevice, int*, int*);
  NvmlReturn (*nvlink_state)(NvmlDevice, unsigned int, int*);
};

// Closes the library on every path.
class Library {
 public:
  explicit Library(const char* name) : handle_(dlopen(name, RTLD_NOW | RTLD_LOCAL)) {}
  ~Library() {
    if (handle_ != nullptr) dlclose(handle_);
  }
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;

  void* handle() const { return handle_; }

  template <typename F>
  bool Load(const char* symbol, F* function, std::string* missing) const {
    *function = reinterpret_cast<F>(dlsym(handle_, symbol));
    if (*function == nullptr && missing->empty()) *missing = symbol;
    return *function != nullptr;
  }

 private:
  void* handle_;
};

int32_t ActiveNvlinks(const NvmlApi& api, NvmlDevice device) {
  int32_t active = 0;
  for (unsigned int link = 0; link < kNvlinkMaxLinks; ++link) {
    int state = 0;
    // GeForce cards answer NOT_SUPPORTED for every link: 0 active.
    if (api.nvlink_state(device, link, &state) == kNvmlSuccess && state == kNvmlFeatureEnabled) {
      ++active;
    }
  }
  return active;
}

}  // namespace

NvmlInfo ProbeNvml() {
  NvmlInfo info;
  Library library("libnvidia-ml.so.1");
  if (library.handle() == nullptr) {
    const char* error = dlerror();
    info.error =
        StrCat("cannot load libnvidia-ml.so.1", error != nullptr ? StrCat(": ", error) : "");
    return info;
  }
  NvmlApi api{};
  std::string missing;
  library.Load("nvmlInit_v2", &api.init, &missing);
  library.Load("nvmlShutdown", &api.shutdown, &missing);
  library.Load("nvmlErrorString", &api.error_string, &missing);
  library.Load("nvmlSystemGetDriverVersion", &api.driver_version, &missing);
  library.Load("nvmlSystemGetCudaDriverVersion", &api.cuda_driver_version, &missing);
  library.Load("nvmlDeviceGetCount_v2", &api.device_count, &missing);
  library.Load("nvmlDeviceGetHandleByIndex_v2", &api.handle_by_index, &missing);
  library.Load("nvmlDeviceGetName", &api.name, &missing);
  library.Load("nvmlDeviceGetMemoryInfo", &api.memory_info, &missing);
  library.Load("nvmlDeviceGetPciInfo_v3", &api.pci_info, &missing);
  library.Load("nvmlDeviceGetCudaComputeCapability", &api.compute_capability, &missing);
  library.Load("nvmlDeviceGetNvLinkState", &api.nvlink_state, &missing);
  if (!missing.empty()) {
    info.error = StrCat("libnvidia-ml.so.1 lacks ", missing, " (driver too old)");
    return info;
  }
  const NvmlReturn init = api.init();
  if (init != kNvmlSuccess) {
    info.error = StrCat("nvmlInit: ", api.error_string(init));
    return info;
  }
  info.loaded = true;
  char text[96] = {};
  if (api.driver_version(text, sizeof(text)) == kNvmlSuccess) info.driver_version = text;
  int cuda_version = 0;
  if (api.cuda_driver_version(&cuda_version) == kNvmlSuccess)
    info.cuda_driver_version = cuda_version;
  unsigned int count = 0;
  if (api.device_count(&count) != kNvmlSuccess) count = 0;
  for (unsigned int i = 0; i < count; ++i) {
    NvmlDevice device = nullptr;
    if (api.handle_by_index(i, &device) != kNvmlSuccess) continue;
    NvmlGpu gpu;
    gpu.index = static_cast<int32_t>(i);
    char name[96] = {};
    if (api.name(device, name, sizeof(name)) == kNvmlSuccess) gpu.name = name;
    NvmlMemory memory{};
    if (api.memory_info(device, &memory) == kNvmlSuccess) {
      gpu.total_memory_bytes = static_cast<int64_t>(memory.total);
      gpu.free_memory_bytes = static_cast<int64_t>(memory.free);
    }
    NvmlPciInfo pci{};
    if (api.pci_info(device, &pci) == kNvmlSuccess) {
      pci.bus_id[sizeof(pci.bus_id) - 1] = '\0';
      gpu.pci_bus_id = NormalizePciBusId(pci.bus_id);
    }
    int major = 0;
    int minor = 0;
    if (api.compute_capability(device, &major, &minor) == kNvmlSuccess) {
      gpu.compute_capability_major = major;
      gpu.compute_capability_minor = minor;
    }
    gpu.nvlink_active_links = ActiveNvlinks(api, device);
    info.gpus.push_back(std::move(gpu));
  }
  api.shutdown();
  return info;
}

}  // namespace duet::doctor
