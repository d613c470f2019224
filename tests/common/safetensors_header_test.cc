#include "common/safetensors_header.h"

#include <cstring>
#include <span>
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
using ::duet::testing::SafetensorsHeaderJson;
using ::duet::testing::TestTensor;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::json;

constexpr std::string_view kFile = "weights/model.safetensors";

std::span<const std::byte> AsBytes(const std::string& text) {
  return std::as_bytes(std::span<const char>(text.data(), text.size()));
}

std::vector<TestTensor> TwoTensors() {
  return {
      {"model.embed", "F32", {2, 3}, RawBytes(std::vector<float>{1, 2, 3, 4, 5, 6})},
      {"model.norm", "BF16", {4}, RawBytes(std::vector<uint16_t>{0x3f80, 0, 0, 0x4000})},
  };
}

// Parses `header` against the data area `TwoTensors()` needs (32 bytes).
absl::StatusOr<SafetensorsHeader> ParseWithTwoTensorData(const Json& header) {
  return ParseSafetensorsHeader(header.dump(), 32, kFile);
}

// The error a broken header must produce: `code`, naming the file and
// `tensor`.
void ExpectError(const absl::Status& status, absl::StatusCode code, std::string_view tensor,
                 std::string_view detail) {
  EXPECT_EQ(status.code(), code) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(std::string(kFile)));
  if (!tensor.empty()) {
    EXPECT_THAT(std::string(status.message()), HasSubstr("\"" + std::string(tensor) + "\""));
  }
  EXPECT_THAT(std::string(status.message()), HasSubstr(std::string(detail)));
}

TEST(SafetensorsHeaderTest, ParsesValidFile) {
  const std::string file = SafetensorsFileBytes(TwoTensors(), {{"format", "pt"}});
  const absl::StatusOr<SafetensorsLayout> layout = ParseSafetensorsFileBytes(AsBytes(file), kFile);
  ASSERT_TRUE(layout.ok()) << layout.status();
  const std::vector<SafetensorsEntry>& tensors = layout->header.tensors;
  ASSERT_EQ(tensors.size(), 2u);
  EXPECT_EQ(tensors[0].name, "model.embed");
  EXPECT_EQ(tensors[0].dtype, DType::kF32);
  EXPECT_THAT(tensors[0].shape, ElementsAre(2, 3));
  EXPECT_EQ(tensors[0].data_begin, 0u);
  EXPECT_EQ(tensors[0].data_end, 24u);
  EXPECT_EQ(tensors[0].num_elements(), 6);
  EXPECT_EQ(tensors[1].name, "model.norm");
  EXPECT_EQ(tensors[1].dtype, DType::kBF16);
  EXPECT_EQ(tensors[1].data_begin, 24u);
  EXPECT_EQ(tensors[1].num_bytes(), 8u);
  EXPECT_EQ(layout->header.metadata.at("format"), "pt");
  EXPECT_EQ(layout->data_offset_bytes, file.size() - 32);
}

TEST(SafetensorsHeaderTest, SortsByOffsetNotByName) {
  // "a" sits after "b" in the data area.
  const Json header = {
      {"b", {{"dtype", "U8"}, {"shape", {2}}, {"data_offsets", {0, 2}}}},
      {"a", {{"dtype", "U8"}, {"shape", {1}}, {"data_offsets", {2, 3}}}},
  };
  const absl::StatusOr<SafetensorsHeader> parsed = ParseSafetensorsHeader(header.dump(), 3, kFile);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->tensors[0].name, "b");
  EXPECT_EQ(parsed->tensors[1].name, "a");
}

TEST(SafetensorsHeaderTest, AcceptsScalarsZeroSizeAndEmptyFiles) {
  const Json header = {
      {"scalar", {{"dtype", "I64"}, {"shape", Json::array()}, {"data_offsets", {0, 8}}}},
      {"empty", {{"dtype", "F16"}, {"shape", {0, 7}}, {"data_offsets", {8, 8}}}},
      {"last_empty", {{"dtype", "F32"}, {"shape", {3, 0}}, {"data_offsets", {8, 8}}}},
  };
  const absl::StatusOr<SafetensorsHeader> parsed = ParseSafetensorsHeader(header.dump(), 8, kFile);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->tensors.size(), 3u);
  EXPECT_EQ(parsed->tensors[0].name, "scalar");
  EXPECT_EQ(parsed->tensors[0].num_elements(), 1);
  EXPECT_EQ(parsed->tensors[1].name, "empty");
  EXPECT_EQ(parsed->tensors[1].num_elements(), 0);

  const absl::StatusOr<SafetensorsHeader> no_tensors = ParseSafetensorsHeader("{}", 0, kFile);
  ASSERT_TRUE(no_tensors.ok()) << no_tensors.status();
  EXPECT_TRUE(no_tensors->tensors.empty());
  // Header padding (the reference writer pads with spaces to 8 bytes).
  EXPECT_TRUE(ParseSafetensorsHeader("{}      ", 0, kFile).ok());
}

TEST(SafetensorsHeaderTest, TruncatedFile) {
  const std::string file = SafetensorsFileBytes(TwoTensors());
  ExpectError(ParseSafetensorsFileBytes(AsBytes(file.substr(0, 5)), kFile).status(),
              absl::StatusCode::kDataLoss, "", "too short");
  // Cut inside the data area: the last tensor runs past the end.
  ExpectError(ParseSafetensorsFileBytes(AsBytes(file.substr(0, file.size() - 3)), kFile).status(),
              absl::StatusCode::kDataLoss, "model.norm", "past the data area");
}

TEST(SafetensorsHeaderTest, HeaderLengthBeyondFile) {
  std::string file = SafetensorsFileBytes(TwoTensors());
  file[0] = static_cast<char>(0xff);
  file[1] = static_cast<char>(0x7f);  // 0x7fff bytes declared, far fewer present
  ExpectError(ParseSafetensorsFileBytes(AsBytes(file), kFile).status(), absl::StatusCode::kDataLoss,
              "", "header length 32767 exceeds");
}

TEST(SafetensorsHeaderTest, HeaderLengthBeyondLimit) {
  std::string file = SafetensorsFileBytes(TwoTensors());
  const uint64_t length = kMaxSafetensorsHeaderBytes + 1;
  std::memcpy(file.data(), &length, 8);
  ExpectError(ParseSafetensorsFileBytes(AsBytes(file), kFile).status(),
              absl::StatusCode::kInvalidArgument, "", "exceeds the limit");
  const uint64_t huge = ~uint64_t{0};
  std::memcpy(file.data(), &huge, 8);
  ExpectError(ParseSafetensorsFileBytes(AsBytes(file), kFile).status(),
              absl::StatusCode::kInvalidArgument, "", "exceeds the limit");
}

TEST(SafetensorsHeaderTest, HeaderNotJson) {
  ExpectError(ParseSafetensorsHeader("{\"a\": ", 0, kFile).status(),
              absl::StatusCode::kInvalidArgument, "", "not valid JSON");
  ExpectError(ParseSafetensorsHeader("", 0, kFile).status(), absl::StatusCode::kInvalidArgument, "",
              "not valid JSON");
  ExpectError(ParseSafetensorsHeader("{} trailing", 0, kFile).status(),
              absl::StatusCode::kInvalidArgument, "", "not valid JSON");
  ExpectError(ParseSafetensorsHeader("{\"\xff\": 1}", 0, kFile).status(),
              absl::StatusCode::kInvalidArgument, "", "not valid JSON");
  // nlohmann reports a number too large for a double with a different
  // exception type than syntax errors (found by the fuzzer).
  ExpectError(ParseSafetensorsHeader(R"({"w": {"shape": [1e99999]}})", 0, kFile).status(),
              absl::StatusCode::kInvalidArgument, "", "not valid JSON");
}

TEST(SafetensorsHeaderTest, HeaderNotObject) {
  ExpectError(ParseSafetensorsHeader("[1, 2]", 0, kFile).status(),
              absl::StatusCode::kInvalidArgument, "", "must be a JSON object, got array");
  ExpectError(ParseSafetensorsHeader("null", 0, kFile).status(), absl::StatusCode::kInvalidArgument,
              "", "must be a JSON object");
}

TEST(SafetensorsHeaderTest, EntryOfWrongType) {
  Json header = SafetensorsHeaderJson(TwoTensors());
  header["model.norm"] = "BF16";
  ExpectError(ParseWithTwoTensorData(header).status(), absl::StatusCode::kInvalidArgument,
              "model.norm", "must be a JSON object");

  header = SafetensorsHeaderJson(TwoTensors());
  header["model.norm"]["dtype"] = 5;
  ExpectError(ParseWithTwoTensorData(header).status(), absl::StatusCode::kInvalidArgument,
              "model.norm", "\"dtype\" must be a string");

  header = SafetensorsHeaderJson(TwoTensors());
  header["model.norm"].erase("shape");
  ExpectError(ParseWithTwoTensorData(header).status(), absl::StatusCode::kInvalidArgument,
              "model.norm", "\"shape\" must be an array");

  header = SafetensorsHeaderJson(TwoTensors());
  header["model.norm"]["data_offsets"] = {24, 28, 32};
  ExpectError(ParseWithTwoTensorData(header).status(), absl::StatusCode::kInvalidArgument,
              "model.norm", "\"data_offsets\" must be an array [begin, end]");

  header = SafetensorsHeaderJson(TwoTensors());
  header["model.norm"]["data_offsets"] = {24, 32.0};
  ExpectError(ParseWithTwoTensorData(header).status(), absl::StatusCode::kInvalidArgument,
              "model.norm", "must be non-negative integers");
}

TEST(SafetensorsHeaderTest, OffsetsOutOfRange) {
  Json header = SafetensorsHeaderJson(TwoTensors());
  header["model.norm"]["data_offsets"] = {28, 36};
  ExpectError(ParseWithTwoTensorData(header).status(), absl::StatusCode::kDataLoss, "model.norm",
              "past the data area of 32 bytes");

  header = SafetensorsHeaderJson(TwoTensors());
  header["model.norm"]["data_offsets"] = {-8, 0};
  ExpectError(ParseWithTwoTensorData(header).status(), absl::StatusCode::kInvalidArgument,
              "model.norm", "must be non-negative integers");

  header = SafetensorsHeaderJson(TwoTensors());
  header["model.norm"]["data_offsets"] = {32, 24};
  ExpectError(ParseWithTwoTensorData(header).status(), absl::StatusCode::kInvalidArgument,
              "model.norm", "begin > end");

  header = SafetensorsHeaderJson(TwoTensors());
  header["model.norm"]["data_offsets"] = {~uint64_t{0} - 4, ~uint64_t{0}};
  ExpectError(ParseWithTwoTensorData(header).status(), absl::StatusCode::kDataLoss, "model.norm",
              "past the data area");
}

TEST(SafetensorsHeaderTest, OverlappingOffsets) {
  const Json header = {
      {"first", {{"dtype", "F32"}, {"shape", {4}}, {"data_offsets", {0, 16}}}},
      {"second", {{"dtype", "F32"}, {"shape", {4}}, {"data_offsets", {12, 28}}}},
  };
  const absl::Status status = ParseSafetensorsHeader(header.dump(), 28, kFile).status();
  ExpectError(status, absl::StatusCode::kInvalidArgument, "second", "overlap");
  EXPECT_THAT(std::string(status.message()), HasSubstr("\"first\""));

  // A zero-size tensor inside another tensor's bytes overlaps it too.
  const Json inside = {
      {"outer", {{"dtype", "U8"}, {"shape", {4}}, {"data_offsets", {0, 4}}}},
      {"inner", {{"dtype", "U8"}, {"shape", {0}}, {"data_offsets", {2, 2}}}},
  };
  ExpectError(ParseSafetensorsHeader(inside.dump(), 4, kFile).status(),
              absl::StatusCode::kInvalidArgument, "inner", "overlap");
}

TEST(SafetensorsHeaderTest, HolesAndTrailingBytes) {
  const Json hole = {
      {"first", {{"dtype", "U8"}, {"shape", {4}}, {"data_offsets", {0, 4}}}},
      {"second", {{"dtype", "U8"}, {"shape", {4}}, {"data_offsets", {6, 10}}}},
  };
  ExpectError(ParseSafetensorsHeader(hole.dump(), 10, kFile).status(),
              absl::StatusCode::kInvalidArgument, "second", "hole");
  EXPECT_TRUE(ParseWithTwoTensorData(SafetensorsHeaderJson(TwoTensors())).ok());
  ExpectError(
      ParseSafetensorsHeader(SafetensorsHeaderJson(TwoTensors()).dump(), 40, kFile).status(),
      absl::StatusCode::kInvalidArgument, "", "8 bytes after the last tensor");
}

TEST(SafetensorsHeaderTest, SizeMismatchWithShape) {
  Json header = SafetensorsHeaderJson(TwoTensors());
  header["model.embed"]["shape"] = {2, 4};
  ExpectError(ParseWithTwoTensorData(header).status(), absl::StatusCode::kInvalidArgument,
              "model.embed", "span 24 bytes but shape [2,4] of F32 needs 32");

  header = SafetensorsHeaderJson(TwoTensors());
  header["model.embed"]["dtype"] = "F16";  // same shape, half the bytes
  ExpectError(ParseWithTwoTensorData(header).status(), absl::StatusCode::kInvalidArgument,
              "model.embed", "needs 12");
}

TEST(SafetensorsHeaderTest, UnknownDType) {
  for (const char* dtype : {"F64", "BOOL", "f32", ""}) {
    Json header = SafetensorsHeaderJson(TwoTensors());
    header["model.norm"]["dtype"] = dtype;
    ExpectError(ParseWithTwoTensorData(header).status(), absl::StatusCode::kInvalidArgument,
                "model.norm", "unsupported dtype \"" + std::string(dtype) + "\"");
  }
}

TEST(SafetensorsHeaderTest, ShapeOverflow) {
  Json header = SafetensorsHeaderJson(TwoTensors());
  header["model.embed"]["shape"] = {uint64_t{1} << 40, uint64_t{1} << 40};
  ExpectError(ParseWithTwoTensorData(header).status(), absl::StatusCode::kInvalidArgument,
              "model.embed", "too many elements");

  // Fits int64 as an element count, overflows uint64 as bytes.
  header["model.embed"]["shape"] = {uint64_t{1} << 31, uint64_t{1} << 31};
  ExpectError(ParseWithTwoTensorData(header).status(), absl::StatusCode::kInvalidArgument,
              "model.embed", "overflows the byte size");

  header["model.embed"]["shape"] = {~uint64_t{0}};
  ExpectError(ParseWithTwoTensorData(header).status(), absl::StatusCode::kInvalidArgument,
              "model.embed", "too many elements");

  // A zero dim anywhere makes the product zero, even after huge dims.
  header["model.embed"]["shape"] = {uint64_t{1} << 62, 0};
  header["model.embed"]["data_offsets"] = {0, 0};
  header["model.norm"]["data_offsets"] = {0, 8};
  EXPECT_TRUE(ParseSafetensorsHeader(header.dump(), 8, kFile).ok());
}

TEST(SafetensorsHeaderTest, NegativeOrFractionalDims) {
  Json header = SafetensorsHeaderJson(TwoTensors());
  header["model.embed"]["shape"] = {-2, -3};
  ExpectError(ParseWithTwoTensorData(header).status(), absl::StatusCode::kInvalidArgument,
              "model.embed", "non-negative integers, found -2");
  header["model.embed"]["shape"] = {2, 3.0};
  ExpectError(ParseWithTwoTensorData(header).status(), absl::StatusCode::kInvalidArgument,
              "model.embed", "non-negative integers, found 3.0");
  header["model.embed"]["shape"] = {2, "3"};
  ExpectError(ParseWithTwoTensorData(header).status(), absl::StatusCode::kInvalidArgument,
              "model.embed", "non-negative integers");
}

TEST(SafetensorsHeaderTest, DuplicateNames) {
  // nlohmann's object would silently keep one of the two; build the text.
  const std::string header = R"({"w": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},)"
                             R"( "w": {"dtype": "U8", "shape": [2], "data_offsets": [2, 4]}})";
  ExpectError(ParseSafetensorsHeader(header, 4, kFile).status(), absl::StatusCode::kInvalidArgument,
              "w", "appears twice");
  // Nested keys named alike are not tensors.
  const std::string nested = R"({"w": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},)"
                             R"( "__metadata__": {"w": "x", "dtype": "y"}})";
  EXPECT_TRUE(ParseSafetensorsHeader(nested, 2, kFile).ok());
}

TEST(SafetensorsHeaderTest, BadMetadata) {
  ExpectError(ParseSafetensorsHeader(R"({"__metadata__": {"format": 1}})", 0, kFile).status(),
              absl::StatusCode::kInvalidArgument, "",
              "__metadata__ entry \"format\" must be a string");
  ExpectError(ParseSafetensorsHeader(R"({"__metadata__": []})", 0, kFile).status(),
              absl::StatusCode::kInvalidArgument, "", "__metadata__ must be an object");
}

}  // namespace
}  // namespace duet
