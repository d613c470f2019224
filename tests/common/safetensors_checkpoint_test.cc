#include "common/safetensors_checkpoint.h"

#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/test_files.h"

namespace duet {
namespace {

using ::duet::testing::RawBytes;
using ::duet::testing::SafetensorsFileBytes;
using ::duet::testing::TempDir;
using ::testing::HasSubstr;

std::string IndexJson(const std::vector<std::pair<std::string, std::string>>& weight_map) {
  nlohmann::json index = {{"metadata", {{"total_size", 0}}},
                          {"weight_map", nlohmann::json::object()}};
  for (const auto& [tensor, shard] : weight_map) index["weight_map"][tensor] = shard;
  return index.dump(2);
}

const char* kShard1 = "model-00001-of-00002.safetensors";
const char* kShard2 = "model-00002-of-00002.safetensors";

// Two shards: layer 0 in the first, layer 1 and the head in the second.
void WriteShards(const TempDir& dir) {
  dir.WriteFile(kShard1, SafetensorsFileBytes({
                             {"layers.0.w", "F32", {2}, RawBytes(std::vector<float>{1, 2})},
                             {"embed", "F16", {1}, RawBytes(std::vector<uint16_t>{0x3c00})},
                         }));
  dir.WriteFile(kShard2, SafetensorsFileBytes({
                             {"layers.1.w", "F32", {2}, RawBytes(std::vector<float>{3, 4})},
                             {"lm_head", "I8", {3}, "abc"},
                         }));
}

std::vector<std::pair<std::string, std::string>> GoodWeightMap() {
  return {
      {"layers.0.w", kShard1}, {"embed", kShard1}, {"layers.1.w", kShard2}, {"lm_head", kShard2}};
}

void ExpectMessageHas(const absl::Status& status, const std::vector<std::string>& parts) {
  for (const std::string& part : parts) {
    EXPECT_THAT(std::string(status.message()), HasSubstr(part)) << status;
  }
}

TEST(SafetensorsCheckpointTest, SingleFile) {
  TempDir dir;
  dir.WriteFile("model.safetensors", SafetensorsFileBytes({{"w", "U8", {2}, "hi"}}));
  // An index next to model.safetensors is ignored, as transformers does.
  dir.WriteFile("model.safetensors.index.json", "not json");
  auto checkpoint = SafetensorsCheckpoint::Open(dir.path().string());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_EQ((*checkpoint)->shards().size(), 1u);
  EXPECT_EQ((*checkpoint)->num_tensors(), 1u);
  EXPECT_EQ((*checkpoint)->Find("w")->num_bytes, 2u);
}

TEST(SafetensorsCheckpointTest, Sharded) {
  TempDir dir;
  WriteShards(dir);
  dir.WriteFile("model.safetensors.index.json", IndexJson(GoodWeightMap()));
  auto checkpoint = SafetensorsCheckpoint::Open(dir.path().string());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_EQ((*checkpoint)->shards().size(), 2u);
  EXPECT_EQ((*checkpoint)->num_tensors(), 4u);
  const TensorView layer1 = *(*checkpoint)->Find("layers.1.w");
  float values[2];
  std::memcpy(values, layer1.data, sizeof(values));
  EXPECT_EQ(values[0], 3.0f);
  EXPECT_EQ(values[1], 4.0f);
  EXPECT_EQ((*checkpoint)->Find("embed")->dtype, DType::kF16);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>((*checkpoint)->Find("lm_head")->data), 3),
            "abc");
  const absl::Status missing = (*checkpoint)->Get("layers.2.w").status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  ExpectMessageHas(missing, {dir.path().string(), "\"layers.2.w\""});
}

TEST(SafetensorsCheckpointTest, NoWeights) {
  TempDir dir;
  const absl::Status status = SafetensorsCheckpoint::Open(dir.path().string()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  ExpectMessageHas(status, {dir.path().string(), "model.safetensors.index.json"});
}

TEST(SafetensorsCheckpointTest, MissingShard) {
  TempDir dir;
  WriteShards(dir);
  std::vector<std::pair<std::string, std::string>> weight_map = GoodWeightMap();
  weight_map.push_back({"layers.2.w", "model-00003-of-00003.safetensors"});
  dir.WriteFile("model.safetensors.index.json", IndexJson(weight_map));
  const absl::Status status = SafetensorsCheckpoint::Open(dir.path().string()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  ExpectMessageHas(status, {"model-00003-of-00003.safetensors", "\"layers.2.w\"",
                            "model.safetensors.index.json"});
}

TEST(SafetensorsCheckpointTest, TensorMissingFromShard) {
  TempDir dir;
  WriteShards(dir);
  std::vector<std::pair<std::string, std::string>> weight_map = GoodWeightMap();
  weight_map.push_back({"layers.0.bias", kShard1});
  dir.WriteFile("model.safetensors.index.json", IndexJson(weight_map));
  const absl::Status status = SafetensorsCheckpoint::Open(dir.path().string()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  ExpectMessageHas(status, {"\"layers.0.bias\"", kShard1, "no such tensor"});
}

TEST(SafetensorsCheckpointTest, IndexPutsTensorInTheWrongShard) {
  TempDir dir;
  WriteShards(dir);
  std::vector<std::pair<std::string, std::string>> weight_map = GoodWeightMap();
  weight_map[0].second = kShard2;  // layers.0.w really lives in shard 1
  dir.WriteFile("model.safetensors.index.json", IndexJson(weight_map));
  const absl::Status status = SafetensorsCheckpoint::Open(dir.path().string()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  ExpectMessageHas(status, {"\"layers.0.w\"", kShard2});
}

TEST(SafetensorsCheckpointTest, TensorNotInIndex) {
  TempDir dir;
  WriteShards(dir);
  std::vector<std::pair<std::string, std::string>> weight_map = GoodWeightMap();
  weight_map.pop_back();  // lm_head
  dir.WriteFile("model.safetensors.index.json", IndexJson(weight_map));
  const absl::Status status = SafetensorsCheckpoint::Open(dir.path().string()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  ExpectMessageHas(status, {"\"lm_head\"", kShard2, "not listed"});
}

TEST(SafetensorsCheckpointTest, DuplicateAcrossShards) {
  TempDir dir;
  WriteShards(dir);
  dir.WriteFile(kShard2, SafetensorsFileBytes({
                             {"layers.1.w", "F32", {2}, RawBytes(std::vector<float>{3, 4})},
                             {"embed", "F16", {1}, RawBytes(std::vector<uint16_t>{0x3c00})},
                             {"lm_head", "I8", {3}, "abc"},
                         }));
  dir.WriteFile("model.safetensors.index.json", IndexJson(GoodWeightMap()));
  const absl::Status status = SafetensorsCheckpoint::Open(dir.path().string()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  ExpectMessageHas(status, {"\"embed\"", kShard1, kShard2, "both"});
}

TEST(SafetensorsCheckpointTest, BadIndex) {
  TempDir dir;
  WriteShards(dir);
  const std::string index = dir.WriteFile("model.safetensors.index.json", "{\"weight_map\": [");
  absl::Status status = SafetensorsCheckpoint::Open(dir.path().string()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  ExpectMessageHas(status, {index, "not valid JSON"});

  dir.WriteFile("model.safetensors.index.json", R"({"metadata": {}})");
  status = SafetensorsCheckpoint::Open(dir.path().string()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  ExpectMessageHas(status, {index, "weight_map"});

  dir.WriteFile("model.safetensors.index.json", IndexJson({{"w", "../elsewhere.safetensors"}}));
  status = SafetensorsCheckpoint::Open(dir.path().string()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  ExpectMessageHas(status, {index, "\"w\"", "file name in the model directory"});

  dir.WriteFile("model.safetensors.index.json", R"({"weight_map": {"w": 3}})");
  status = SafetensorsCheckpoint::Open(dir.path().string()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  ExpectMessageHas(status, {"\"w\""});
}

TEST(SafetensorsCheckpointTest, CorruptShardIsReported) {
  TempDir dir;
  WriteShards(dir);
  const std::string shard = dir.WriteFile(kShard2, "\x01\x00");
  dir.WriteFile("model.safetensors.index.json", IndexJson(GoodWeightMap()));
  const absl::Status status = SafetensorsCheckpoint::Open(dir.path().string()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  ExpectMessageHas(status, {shard});
}

}  // namespace
}  // namespace duet
