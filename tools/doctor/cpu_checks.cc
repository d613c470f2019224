#include "tools/doctor/cpu_checks.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "common/str_cat.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/ops.h"
#include "worker/comm/communicator.h"
#include "worker/comm/gloo_communicator.h"
#include "worker/comm/rendezvous_server.h"

namespace duet::doctor {
namespace {

// Shapes of the matmul check: big enough to use the vector tiles and their
// tails (k and n not multiples of the tile sizes), small enough to take
// milliseconds on the reference backend.
constexpr int64_t kMatmulRows = 7;
constexpr int64_t kMatmulInner = 301;
constexpr int64_t kMatmulOutputs = 83;
// The CPU backend sums in a different order than the reference; fp32 over a
// few hundred terms stays far inside this.
constexpr double kMatmulTolerance = 1e-4;
constexpr int64_t kGlooCount = 4096;

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  if (!in.is_open()) return "";
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Rounds to bf16 by truncation (the check only needs some bf16 values).
uint16_t ToBf16Bits(float value) {
  uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof(bits));
  return static_cast<uint16_t>(bits >> 16);
}

// Largest |a - b| / (1 + |b|) over CPU and reference results for one weight
// type.
double MatmulError(kernels::Backend& cpu, kernels::Backend& reference, kernels::WeightType type,
                   std::mt19937& random) {
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> x(kMatmulRows * kMatmulInner);  // [rows, inner]
  for (float& v : x) v = uniform(random);
  std::vector<float> w_f32(kMatmulOutputs * kMatmulInner);  // [outputs, inner]
  for (float& v : w_f32) v = uniform(random);
  std::vector<uint16_t> w_bf16(w_f32.size());
  std::transform(w_f32.begin(), w_f32.end(), w_bf16.begin(), ToBf16Bits);
  kernels::Weight weight;
  weight.type = type;
  weight.data = type == kernels::WeightType::kBF16 ? static_cast<const void*>(w_bf16.data())
                                                   : static_cast<const void*>(w_f32.data());
  weight.rows = kMatmulOutputs;
  weight.cols = kMatmulInner;
  std::vector<float> y_cpu(kMatmulRows * kMatmulOutputs);  // [rows, outputs]
  std::vector<float> y_reference(y_cpu.size());
  cpu.Matmul(x.data(), weight, y_cpu.data(), kMatmulRows);
  reference.Matmul(x.data(), weight, y_reference.data(), kMatmulRows);
  double max_error = 0.0;
  for (size_t i = 0; i < y_cpu.size(); ++i) {
    const double error = std::fabs(static_cast<double>(y_cpu[i]) - y_reference[i]) /
                         (1.0 + std::fabs(static_cast<double>(y_reference[i])));
    if (!(error <= max_error)) max_error = error;  // NaN propagates as a failure
  }
  return max_error;
}

void CheckMatmul(CpuReport* report) {
  std::unique_ptr<kernels::Backend> cpu = kernels::MakeCpuBackend(/*num_threads=*/2);
  std::unique_ptr<kernels::Backend> reference = kernels::MakeReferenceBackend();
  std::mt19937 random(20240601);
  report->matmul_ran = true;
  report->matmul_max_error = 0.0;
  for (kernels::WeightType type : {kernels::WeightType::kF32, kernels::WeightType::kBF16}) {
    const double error = MatmulError(*cpu, *reference, type, random);
    if (!(error <= report->matmul_max_error)) report->matmul_max_error = error;
  }
  report->matmul_ok = report->matmul_max_error <= kMatmulTolerance;
}

void CheckGloo(absl::Duration timeout, CpuReport* report) {
  report->gloo_ran = true;
  const absl::Time start = absl::Now();
  auto rendezvous = worker::GlooRendezvous::Start("127.0.0.1");
  if (!rendezvous.ok()) {
    report->gloo_error = std::string(rendezvous.status().message());
    return;
  }
  const std::string bootstrap = (*rendezvous)->bootstrap();
  worker::CollectiveOptions options;
  options.connect_timeout = timeout;
  options.op_timeout = timeout;
  constexpr int kWorldSize = 2;
  std::vector<absl::Status> statuses(kWorldSize);
  std::vector<std::vector<float>> data(kWorldSize, std::vector<float>(kGlooCount));
  std::vector<std::thread> ranks;
  for (int rank = 0; rank < kWorldSize; ++rank) {
    for (int64_t i = 0; i < kGlooCount; ++i) data[rank][i] = static_cast<float>(i * (rank + 1));
    ranks.emplace_back([&, rank] {
      auto comm = worker::ConnectGloo(bootstrap, rank, kWorldSize, "127.0.0.1", options);
      if (!comm.ok()) {
        statuses[rank] = comm.status();
        return;
      }
      statuses[rank] = (*comm)->AllReduceSum(data[rank].data(), kGlooCount);
    });
  }
  for (std::thread& rank : ranks) rank.join();
  report->gloo_seconds = absl::ToDoubleSeconds(absl::Now() - start);
  for (int rank = 0; rank < kWorldSize; ++rank) {
    if (!statuses[rank].ok()) {
      report->gloo_error = StrCat("rank ", rank, ": ", statuses[rank].message());
      return;
    }
    for (int64_t i = 0; i < kGlooCount; ++i) {
      if (data[rank][i] != static_cast<float>(3 * i)) {
        report->gloo_error =
            StrCat("rank ", rank, " got ", data[rank][i], " at ", i, ", expected ", 3 * i);
        return;
      }
    }
  }
  report->gloo_ok = true;
}

}  // namespace

void ParseMemInfo(std::string_view meminfo, int64_t* total_bytes, int64_t* available_bytes) {
  *total_bytes = -1;
  *available_bytes = -1;
  std::istringstream lines{std::string(meminfo)};
  std::string line;
  while (std::getline(lines, line)) {
    int64_t* field = nullptr;
    if (line.rfind("MemTotal:", 0) == 0) field = total_bytes;
    if (line.rfind("MemAvailable:", 0) == 0) field = available_bytes;
    if (field == nullptr) continue;
    const char* number = line.c_str() + line.find(':') + 1;
    char* end = nullptr;
    const long long kib = std::strtoll(number, &end, 10);
    if (end != number && kib >= 0) *field = static_cast<int64_t>(kib) * 1024;
  }
}

std::string ParseCpuModel(std::string_view cpuinfo) {
  std::istringstream lines{std::string(cpuinfo)};
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    size_t begin = line.find_first_not_of(" \t", colon + 1);
    if (begin == std::string::npos) return "";
    size_t end = line.find_last_not_of(" \t\r");
    return line.substr(begin, end - begin + 1);
  }
  return "";
}

CpuReport ProbeCpu(const CpuProbeOptions& options) {
  CpuReport report;
  report.model = ParseCpuModel(ReadText(options.proc_root + "/cpuinfo"));
  report.logical_cores = static_cast<int32_t>(std::thread::hardware_concurrency());
  const kernels::cpu::Isa isa = kernels::cpu::DetectIsa();
  report.isa = std::string(kernels::cpu::IsaName(isa));
  report.vector_isa = isa != kernels::cpu::Isa::kScalar;
  ParseMemInfo(ReadText(options.proc_root + "/meminfo"), &report.ram_total_bytes,
               &report.ram_available_bytes);
  struct statvfs shm {};
  if (statvfs(options.shm_path.c_str(), &shm) == 0) {
    report.shm_bytes = static_cast<int64_t>(shm.f_blocks) * static_cast<int64_t>(shm.f_frsize);
  }
  CheckMatmul(&report);
  CheckGloo(options.gloo_timeout, &report);
  return report;
}

}  // namespace duet::doctor
