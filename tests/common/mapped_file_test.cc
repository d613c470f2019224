#include "common/mapped_file.h"

#include <cstring>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/test_files.h"

namespace duet {
namespace {

using ::duet::testing::TempDir;
using ::testing::HasSubstr;

TEST(MappedFileTest, MapsContents) {
  TempDir dir;
  const std::string contents = std::string("hello\0world", 11);
  const std::string path = dir.WriteFile("data.bin", contents);
  absl::StatusOr<MappedFile> file = MappedFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->path(), path);
  ASSERT_EQ(file->size_bytes(), contents.size());
  EXPECT_EQ(std::memcmp(file->data(), contents.data(), contents.size()), 0);
  EXPECT_EQ(file->bytes().size(), contents.size());
}

TEST(MappedFileTest, EmptyFile) {
  TempDir dir;
  absl::StatusOr<MappedFile> file = MappedFile::Open(dir.WriteFile("empty", ""));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->size_bytes(), 0u);
  EXPECT_EQ(file->data(), nullptr);
  EXPECT_TRUE(file->bytes().empty());
}

TEST(MappedFileTest, MissingFileIsNotFound) {
  TempDir dir;
  const std::string path = (dir.path() / "absent.safetensors").string();
  const absl::Status status = MappedFile::Open(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(path));
}

TEST(MappedFileTest, DirectoryIsRejected) {
  TempDir dir;
  const absl::Status status = MappedFile::Open(dir.path().string()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(dir.path().string()));
}

TEST(MappedFileTest, MoveTransfersTheMapping) {
  TempDir dir;
  absl::StatusOr<MappedFile> file = MappedFile::Open(dir.WriteFile("data.bin", "abcdef"));
  ASSERT_TRUE(file.ok()) << file.status();
  const std::byte* data = file->data();
  MappedFile moved = *std::move(file);
  EXPECT_EQ(moved.data(), data);
  EXPECT_EQ(moved.size_bytes(), 6u);
  MappedFile other = *MappedFile::Open(dir.WriteFile("other.bin", "xy"));
  other = std::move(moved);
  EXPECT_EQ(other.data(), data);
  EXPECT_EQ(static_cast<char>(other.data()[5]), 'f');
}

}  // namespace
}  // namespace duet
