#include "common/safetensors.h"

#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/test_files.h"

namespace duet {
namespace {

using ::duet::testing::RawBytes;
using ::duet::testing::SafetensorsFileBytes;
using ::duet::testing::TempDir;
using ::duet::testing::TestTensor;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

template <typename T>
std::vector<T> Values(const TensorView& view) {
  std::vector<T> values(view.num_bytes / sizeof(T));
  std::memcpy(values.data(), view.data, view.num_bytes);
  return values;
}

TEST(SafetensorsFileTest, OpensAndFindsTensors) {
  TempDir dir;
  const std::string path =
      dir.WriteFile("model.safetensors",
                    SafetensorsFileBytes(
                        {
                            {"embed", "F32", {2, 2}, RawBytes(std::vector<float>{1.5f, -2, 3, 4})},
                            {"ids", "I64", {3}, RawBytes(std::vector<int64_t>{7, -8, 1LL << 40})},
                            {"step", "I32", {}, RawBytes(std::vector<int32_t>{42})},
                            {"nothing", "BF16", {0, 4}, ""},
                        },
                        {{"format", "pt"}}));
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->path(), path);
  EXPECT_EQ((*file)->metadata().at("format"), "pt");
  ASSERT_EQ((*file)->tensors().size(), 4u);

  const std::optional<TensorView> embed = (*file)->Find("embed");
  ASSERT_TRUE(embed.has_value());
  EXPECT_EQ(embed->name, "embed");
  EXPECT_EQ(embed->dtype, DType::kF32);
  EXPECT_THAT(embed->shape, ElementsAre(2, 2));
  EXPECT_EQ(embed->num_elements(), 4);
  EXPECT_THAT(Values<float>(*embed), ElementsAre(1.5f, -2, 3, 4));

  const absl::StatusOr<TensorView> ids = (*file)->Get("ids");
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(Values<int64_t>(*ids), ElementsAre(7, -8, 1LL << 40));

  const TensorView step = *(*file)->Find("step");
  EXPECT_TRUE(step.shape.empty());
  EXPECT_EQ(step.num_elements(), 1);
  EXPECT_THAT(Values<int32_t>(step), ElementsAre(42));

  const TensorView nothing = *(*file)->Find("nothing");
  EXPECT_EQ(nothing.num_bytes, 0u);
  EXPECT_EQ(nothing.num_elements(), 0);

  EXPECT_FALSE((*file)->Find("absent").has_value());
  const absl::Status missing = (*file)->Get("absent").status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.message()), HasSubstr(path));
  EXPECT_THAT(std::string(missing.message()), HasSubstr("\"absent\""));
}

TEST(SafetensorsFileTest, ViewsPointIntoTheMapping) {
  TempDir dir;
  const std::string bytes = SafetensorsFileBytes({{"a", "U8", {3}, "xyz"}, {"b", "U8", {2}, "pq"}});
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      SafetensorsFile::Open(dir.WriteFile("m.safetensors", bytes));
  ASSERT_TRUE(file.ok()) << file.status();
  const TensorView a = *(*file)->Find("a");
  const TensorView b = *(*file)->Find("b");
  // Tensors are consecutive in one mapping: b starts where a ends.
  EXPECT_EQ(a.data + a.num_bytes, b.data);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(a.data), 3), "xyz");
  EXPECT_EQ((*file)->tensors()[1].name, "b");
}

TEST(SafetensorsFileTest, ErrorsNameTheFile) {
  TempDir dir;
  const std::string truncated = dir.WriteFile("truncated.safetensors", "\x10\0\0");
  const absl::Status short_status = SafetensorsFile::Open(truncated).status();
  EXPECT_EQ(short_status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(short_status.message()), HasSubstr(truncated));

  const std::string empty = dir.WriteFile("empty.safetensors", "");
  EXPECT_EQ(SafetensorsFile::Open(empty).status().code(), absl::StatusCode::kDataLoss);

  const std::string absent = (dir.path() / "absent.safetensors").string();
  EXPECT_EQ(SafetensorsFile::Open(absent).status().code(), absl::StatusCode::kNotFound);

  std::string bytes = SafetensorsFileBytes({{"w", "F16", {2}, "abcd"}});
  bytes.pop_back();
  const std::string cut = dir.WriteFile("cut.safetensors", bytes);
  const absl::Status cut_status = SafetensorsFile::Open(cut).status();
  EXPECT_EQ(cut_status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(cut_status.message()), HasSubstr(cut));
  EXPECT_THAT(std::string(cut_status.message()), HasSubstr("\"w\""));
}

}  // namespace
}  // namespace duet
