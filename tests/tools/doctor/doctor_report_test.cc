// The table and JSON of duet doctor: marks, fixes under warnings and
// failures, and the JSON keys scripts rely on.
#include "tools/doctor/doctor_report.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tools/doctor/doctor_test_reports.h"
#include "tools/doctor/fit.h"
#include "tools/doctor/model_bytes.h"

namespace duet::doctor {
namespace {

using testing::DualRtx4090;
using ::testing::HasSubstr;
using testing::HealthyCpu;
using ::testing::Not;
using Json = nlohmann::json;

std::vector<Check> SampleChecks() {
  return {
      Check{"gpus", "GPUs", CheckStatus::kOk, "2 GPUs", ""},
      Check{"p2p", "GPU peer-to-peer", CheckStatus::kFail, "reported but broken",
            "set NCCL_P2P_DISABLE=1"},
      Check{"pcie_width_0", "PCIe width GPU 0", CheckStatus::kWarn, "x8", "x8/x8 is normal"},
      Check{"nvlink", "NVLink", CheckStatus::kInfo, "no NVLink", "nothing to fix"},
      Check{"bandwidth_0_1", "GPU 0→1 bandwidth", CheckStatus::kSkipped, "--skip-bandwidth",
            "run without it"},
  };
}

TEST(DoctorReportTest, TableHasOneLinePerCheckAndFixesUnderProblems) {
  const std::string table = DoctorTable(SampleChecks(), nullptr);
  EXPECT_THAT(table, HasSubstr("✓ GPUs"));
  EXPECT_THAT(table, HasSubstr("✗ GPU peer-to-peer"));
  EXPECT_THAT(table, HasSubstr("! PCIe width GPU 0"));
  EXPECT_THAT(table, HasSubstr("· NVLink"));
  EXPECT_THAT(table, HasSubstr("- GPU 0→1 bandwidth"));
  EXPECT_THAT(table, HasSubstr("reported but broken\n    fix: set NCCL_P2P_DISABLE=1\n"));
  EXPECT_THAT(table, HasSubstr("x8\n    fix: x8/x8 is normal\n"));
  EXPECT_THAT(table, Not(HasSubstr("fix: nothing to fix")));
  EXPECT_THAT(table, HasSubstr("5 checks: 1 ok, 1 warning, 1 failed, 1 note, 1 skipped"));
  // Titles line up: the detail starts in the same display column on every
  // line (the marks are 2 or 3 bytes of UTF-8, one column each).
  const auto detail_column = [&table](const std::string& detail) {
    const size_t at = table.find(detail);
    size_t columns = 0;
    for (size_t i = table.rfind('\n', at) + 1; i < at; ++i) {
      columns += (static_cast<unsigned char>(table[i]) & 0xC0) != 0x80;
    }
    return columns;
  };
  const size_t ok_column = detail_column("2 GPUs");
  const size_t info_column = detail_column("no NVLink");
  EXPECT_EQ(ok_column, info_column);
}

TEST(DoctorReportTest, JsonShape) {
  const SystemReport system = DualRtx4090();
  const std::vector<Check> checks = RunChecks(system, HealthyCpu());
  const Json json = Json::parse(DoctorJson(system, HealthyCpu(), checks, nullptr).dump());
  for (const char* key : {"gpus", "cuda", "cpu", "checks", "summary"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }
  EXPECT_FALSE(json.contains("fit"));
  ASSERT_EQ(json["gpus"].size(), 2u);
  const Json& gpu = json["gpus"][0];
  EXPECT_EQ(gpu["name"], "NVIDIA GeForce RTX 4090");
  EXPECT_EQ(gpu["compute_capability"], "8.9");
  EXPECT_EQ(gpu["pci_bus_id"], "0000:01:00.0");
  EXPECT_EQ(gpu["nvlink_active_links"], 0);
  EXPECT_EQ(gpu["pcie"]["idle"]["current_generation"], 1);
  EXPECT_EQ(gpu["pcie"]["under_load"]["current_generation"], 4);
  EXPECT_EQ(json["cuda"]["driver_cuda_version"], "12.4");
  EXPECT_EQ(json["cuda"]["p2p"].size(), 2u);
  EXPECT_EQ(json["cuda"]["nccl"]["ok"], true);
  EXPECT_DOUBLE_EQ(json["cuda"]["bandwidth"][0]["gb_per_s"].get<double>(), 14.2);
  EXPECT_EQ(json["cpu"]["isa"], "avx512");
  EXPECT_EQ(json["cpu"]["gloo"]["ok"], true);
  ASSERT_EQ(json["checks"].size(), checks.size());
  for (const Json& check : json["checks"]) {
    for (const char* key : {"id", "status", "title", "detail", "fix"}) {
      EXPECT_TRUE(check.contains(key)) << key;
    }
  }
  EXPECT_EQ(json["checks"][0]["id"], "gpus");
  EXPECT_EQ(json["checks"][0]["status"], "ok");
  EXPECT_EQ(json["summary"]["fail"], 0);
}

TEST(DoctorReportTest, UnknownValuesAreNull) {
  SystemReport system = DualRtx4090();
  system.gpus[0].nvlink_active_links = -1;
  system.gpus[0].pcie_under_load = PcieLink{};
  const Json json = Json::parse(DoctorJson(system, HealthyCpu(), {}, nullptr).dump());
  EXPECT_TRUE(json["gpus"][0]["nvlink_active_links"].is_null());
  EXPECT_TRUE(json["gpus"][0]["pcie"]["under_load"].is_null());
}

TEST(DoctorReportTest, FitIsIncluded) {
  const std::string config_json = R"({
    "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3",
    "hidden_size": 256, "intermediate_size": 512, "num_attention_heads": 4,
    "num_key_value_heads": 2, "head_dim": 64, "num_hidden_layers": 2,
    "vocab_size": 1000, "max_position_embeddings": 4096, "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16"})";
  const absl::StatusOr<ModelConfig> parsed = ParseModelConfig(config_json, "config.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const absl::StatusOr<Quantization> quantization =
      ResolveQuantization(*parsed, QuantizationChoice::kAuto);
  ASSERT_TRUE(quantization.ok());
  FitOptions options;
  options.max_model_len = 2048;
  const absl::StatusOr<FitReport> report = ComputeFit(*parsed, *quantization, options);
  ASSERT_TRUE(report.ok()) << report.status();
  const DoctorFit fit{"tiny", *report, "detected: 2 × 24.0 GiB"};
  const Json json = Json::parse(DoctorJson(SystemReport{}, HealthyCpu(), {}, &fit).dump());
  ASSERT_TRUE(json.contains("fit"));
  EXPECT_EQ(json["fit"]["model"], "tiny");
  EXPECT_EQ(json["fit"]["gpus_source"], "detected: 2 × 24.0 GiB");
  EXPECT_EQ(json["fit"]["layouts"].size(), 3u);
  const std::string table = DoctorTable({}, &fit);
  EXPECT_THAT(table, HasSubstr("Fit (detected: 2 × 24.0 GiB):"));
  EXPECT_THAT(table, HasSubstr("replicas"));
}

}  // namespace
}  // namespace duet::doctor
