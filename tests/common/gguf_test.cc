#include "common/gguf.h"

#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/test_files.h"

namespace duet {
namespace {

using ::duet::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Little-endian bytes of `value`.
template <typename T>
std::string Le(T value) {
  std::string bytes(sizeof(T), '\0');
  std::memcpy(bytes.data(), &value, sizeof(T));
  return bytes;
}

std::string TypeBytes(GgufValueType type) { return Le(static_cast<uint32_t>(type)); }

// A GGUF string: uint64 length, then the bytes.
std::string Str(std::string_view text) { return Le<uint64_t>(text.size()) + std::string(text); }

// An array value (what follows its kArray type): element type, length, the
// encoded elements.
std::string Array(GgufValueType element_type, uint64_t length, const std::string& elements) {
  return TypeBytes(element_type) + Le(length) + elements;
}

// Builds a GGUF image field by field. The counts default to what was added;
// the data area starts at the header end rounded up to `Alignment` (which
// does not add the general.alignment key: tests add it, or a wrong one).
class GgufBuilder {
 public:
  GgufBuilder& Version(uint32_t version) {
    version_ = version;
    return *this;
  }
  GgufBuilder& TensorCount(uint64_t count) {
    tensor_count_ = count;
    return *this;
  }
  GgufBuilder& MetadataCount(uint64_t count) {
    metadata_count_ = count;
    return *this;
  }
  GgufBuilder& Alignment(uint64_t alignment) {
    alignment_ = alignment;
    return *this;
  }
  // `value` is the encoded value that follows its type.
  GgufBuilder& Key(std::string_view key, GgufValueType type, const std::string& value) {
    metadata_ += Str(key) + TypeBytes(type) + value;
    ++num_keys_;
    return *this;
  }
  GgufBuilder& Tensor(std::string_view name, const std::vector<uint64_t>& dims, uint32_t type_id,
                      uint64_t offset) {
    tensor_infos_ += Str(name) + Le<uint32_t>(dims.size());
    for (const uint64_t dim : dims) tensor_infos_ += Le(dim);
    tensor_infos_ += Le(type_id) + Le(offset);
    ++num_tensors_;
    return *this;
  }
  GgufBuilder& Tensor(std::string_view name, const std::vector<uint64_t>& dims, GgmlType type,
                      uint64_t offset) {
    return Tensor(name, dims, static_cast<uint32_t>(type), offset);
  }
  GgufBuilder& Data(std::string data) {
    data_ = std::move(data);
    return *this;
  }

  // Where the data area starts in Build()'s image.
  uint64_t DataOffset() const {
    const uint64_t header_bytes = 24 + metadata_.size() + tensor_infos_.size();
    return (header_bytes + alignment_ - 1) / alignment_ * alignment_;
  }

  std::string Build() const {
    std::string image = "GGUF" + Le(version_) + Le(tensor_count_.value_or(num_tensors_)) +
                        Le(metadata_count_.value_or(num_keys_)) + metadata_ + tensor_infos_;
    if (num_tensors_ > 0 || !data_.empty()) image.resize(DataOffset(), '\0');
    return image + data_;
  }

 private:
  uint32_t version_ = 3;
  std::optional<uint64_t> tensor_count_;
  std::optional<uint64_t> metadata_count_;
  uint64_t alignment_ = 32;
  uint64_t num_keys_ = 0;
  uint64_t num_tensors_ = 0;
  std::string metadata_;
  std::string tensor_infos_;
  std::string data_;
};

std::span<const std::byte> AsBytes(const std::string& image) {
  return std::as_bytes(std::span<const char>(image.data(), image.size()));
}

absl::StatusOr<GgufContents> Parse(const std::string& image) {
  return ParseGgufBytes(AsBytes(image));
}

// `status` is InvalidArgument and its message holds every one of `parts`.
void ExpectInvalid(const absl::Status& status, const std::vector<std::string>& parts) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  for (const std::string& part : parts) {
    EXPECT_THAT(std::string(status.message()), HasSubstr(part));
  }
}

// An image with one key of every value type (scalars at their extremes,
// arrays of every element kind, an array of arrays) and two tensors: an F32
// [2, 4] at offset 0 and a Q4_1 with dims {64, 3} at offset 32.
GgufBuilder EveryValueTypeBuilder() {
  GgufBuilder builder;
  builder.Key("u8", GgufValueType::kUint8, Le<uint8_t>(255))
      .Key("i8", GgufValueType::kInt8, Le<int8_t>(-128))
      .Key("u16", GgufValueType::kUint16, Le<uint16_t>(65535))
      .Key("i16", GgufValueType::kInt16, Le<int16_t>(-32768))
      .Key("u32", GgufValueType::kUint32, Le<uint32_t>(4294967295u))
      .Key("i32", GgufValueType::kInt32, Le<int32_t>(std::numeric_limits<int32_t>::min()))
      .Key("u64", GgufValueType::kUint64, Le<uint64_t>(std::numeric_limits<int64_t>::max()))
      .Key("i64", GgufValueType::kInt64, Le<int64_t>(std::numeric_limits<int64_t>::min()))
      .Key("f32", GgufValueType::kFloat32, Le<float>(1.5f))
      .Key("f64", GgufValueType::kFloat64, Le<double>(0.1))
      .Key("yes", GgufValueType::kBool, Le<uint8_t>(1))
      .Key("no", GgufValueType::kBool, Le<uint8_t>(0))
      .Key("str", GgufValueType::kString, Str("héllo"))
      .Key("", GgufValueType::kString, Str(""))
      .Key("arr.i32", GgufValueType::kArray,
           Array(GgufValueType::kInt32, 3, Le<int32_t>(1) + Le<int32_t>(-2) + Le<int32_t>(3)))
      .Key("arr.u8", GgufValueType::kArray, Array(GgufValueType::kUint8, 2, "\x07\xff"))
      .Key("arr.u64", GgufValueType::kArray,
           Array(GgufValueType::kUint64, 1, Le<uint64_t>(uint64_t{1} << 40)))
      .Key("arr.f32", GgufValueType::kArray,
           Array(GgufValueType::kFloat32, 2, Le<float>(0.5f) + Le<float>(-1.25f)))
      .Key("arr.f64", GgufValueType::kArray, Array(GgufValueType::kFloat64, 1, Le<double>(1e300)))
      .Key("arr.str", GgufValueType::kArray,
           Array(GgufValueType::kString, 3, Str("a") + Str("") + Str("ccc")))
      .Key("arr.bool", GgufValueType::kArray,
           Array(GgufValueType::kBool, 3, std::string("\x01\x00\x01", 3)))
      .Key("arr.empty", GgufValueType::kArray, Array(GgufValueType::kUint32, 0, ""))
      .Key("arr.arr", GgufValueType::kArray,
           Array(GgufValueType::kArray, 3,
                 Array(GgufValueType::kInt32, 2, Le<int32_t>(1) + Le<int32_t>(2)) +
                     Array(GgufValueType::kString, 1, Str("x")) +
                     Array(GgufValueType::kArray, 1, Array(GgufValueType::kBool, 1, "\x01"))))
      .Tensor("f32", {4, 2}, GgmlType::kF32, 0)
      .Tensor("q4_1", {64, 3}, GgmlType::kQ4_1, 32);
  std::string data(32 + 3 * 2 * 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + 1);
  builder.Data(data);
  return builder;
}

const GgufValue& ValueOf(const GgufContents& contents, std::string_view key) {
  for (const auto& [name, value] : contents.metadata) {
    if (name == key) return value;
  }
  ADD_FAILURE() << "no key " << key;
  static const GgufValue kNone;
  return kNone;
}

TEST(GgufTest, ParsesEveryValueType) {
  const std::string image = EveryValueTypeBuilder().Build();
  const absl::StatusOr<GgufContents> contents = Parse(image);
  ASSERT_TRUE(contents.ok()) << contents.status();
  EXPECT_EQ(contents->version, 3u);
  ASSERT_EQ(contents->metadata.size(), 23u);
  EXPECT_EQ(contents->metadata[0].first, "u8");  // file order
  EXPECT_EQ(contents->metadata[22].first, "arr.arr");

  const std::vector<std::pair<std::string, int64_t>> integers = {
      {"u8", 255},
      {"i8", -128},
      {"u16", 65535},
      {"i16", -32768},
      {"u32", 4294967295},
      {"i32", std::numeric_limits<int32_t>::min()},
      {"u64", std::numeric_limits<int64_t>::max()},
      {"i64", std::numeric_limits<int64_t>::min()},
      {"yes", 1},
      {"no", 0},
  };
  for (const auto& [key, expected] : integers) EXPECT_EQ(ValueOf(*contents, key).integer, expected);
  EXPECT_EQ(ValueOf(*contents, "u8").type, GgufValueType::kUint8);
  EXPECT_EQ(ValueOf(*contents, "i64").type, GgufValueType::kInt64);
  EXPECT_EQ(ValueOf(*contents, "yes").type, GgufValueType::kBool);
  EXPECT_EQ(ValueOf(*contents, "f32").type, GgufValueType::kFloat32);
  EXPECT_EQ(ValueOf(*contents, "f32").real, 1.5);
  EXPECT_EQ(ValueOf(*contents, "f64").real, 0.1);
  EXPECT_EQ(ValueOf(*contents, "str").string, "héllo");
  EXPECT_EQ(ValueOf(*contents, "").string, "");

  const GgufValue& i32s = ValueOf(*contents, "arr.i32");
  EXPECT_EQ(i32s.type, GgufValueType::kArray);
  EXPECT_EQ(i32s.element_type, GgufValueType::kInt32);
  EXPECT_EQ(i32s.array_length, 3u);
  EXPECT_THAT(i32s.integers, ElementsAre(1, -2, 3));
  EXPECT_THAT(ValueOf(*contents, "arr.u8").integers, ElementsAre(7, 255));
  EXPECT_THAT(ValueOf(*contents, "arr.u64").integers, ElementsAre(int64_t{1} << 40));
  EXPECT_THAT(ValueOf(*contents, "arr.f32").reals, ElementsAre(0.5, -1.25));
  EXPECT_THAT(ValueOf(*contents, "arr.f64").reals, ElementsAre(1e300));
  EXPECT_THAT(ValueOf(*contents, "arr.str").strings, ElementsAre("a", "", "ccc"));
  EXPECT_EQ(ValueOf(*contents, "arr.bool").element_type, GgufValueType::kBool);
  EXPECT_THAT(ValueOf(*contents, "arr.bool").integers, ElementsAre(1, 0, 1));
  EXPECT_EQ(ValueOf(*contents, "arr.empty").array_length, 0u);
  EXPECT_EQ(ValueOf(*contents, "arr.empty").element_type, GgufValueType::kUint32);
  const GgufValue& nested = ValueOf(*contents, "arr.arr");
  EXPECT_EQ(nested.element_type, GgufValueType::kArray);
  EXPECT_EQ(nested.array_length, 3u);
  EXPECT_TRUE(nested.integers.empty() && nested.reals.empty() && nested.strings.empty());
}

TEST(GgufTest, TensorDataPointersAndSizes) {
  const GgufBuilder builder = EveryValueTypeBuilder();
  const std::string image = builder.Build();
  const absl::StatusOr<GgufContents> contents = Parse(image);
  ASSERT_TRUE(contents.ok()) << contents.status();
  EXPECT_EQ(contents->alignment, 32u);
  EXPECT_EQ(contents->data_offset, builder.DataOffset());
  EXPECT_EQ(contents->data_offset % 32, 0u);
  ASSERT_EQ(contents->tensors.size(), 2u);
  const auto* base = reinterpret_cast<const std::byte*>(image.data());

  const GgufTensor& f32 = contents->tensors[0];
  EXPECT_EQ(f32.name, "f32");
  EXPECT_THAT(f32.dims, ElementsAre(4, 2));  // innermost first
  EXPECT_EQ(f32.type_id, static_cast<uint32_t>(GgmlType::kF32));
  EXPECT_EQ(f32.offset, 0u);
  EXPECT_EQ(f32.data, base + contents->data_offset);
  EXPECT_EQ(f32.num_bytes, 32u);
  EXPECT_EQ(f32.num_elements(), 8);

  const GgufTensor& q4_1 = contents->tensors[1];
  EXPECT_EQ(q4_1.name, "q4_1");
  EXPECT_THAT(q4_1.dims, ElementsAre(64, 3));
  EXPECT_EQ(q4_1.offset, 32u);
  EXPECT_EQ(q4_1.data, base + contents->data_offset + 32);
  EXPECT_EQ(q4_1.num_bytes, 3u * 2 * 20);  // 3 rows of two 20-byte blocks
  EXPECT_EQ(q4_1.num_elements(), 192);
  EXPECT_EQ(q4_1.data + q4_1.num_bytes, base + image.size());
}

TEST(GgufTest, BlockTypeSizes) {
  // One row of 256 elements of each type, each at the next 32-aligned offset.
  const std::vector<std::pair<GgmlType, uint64_t>> types = {
      {GgmlType::kF16, 512},   {GgmlType::kBF16, 512},  {GgmlType::kQ8_0, 8 * 34},
      {GgmlType::kQ4_0, 8 * 18}, {GgmlType::kQ4_K, 144}, {GgmlType::kQ5_K, 176},
      {GgmlType::kQ6_K, 210},  {GgmlType::kQ2_K, 84},   {GgmlType::kQ8_K, 292},
  };
  GgufBuilder builder;
  uint64_t offset = 0;
  for (const auto& [type, bytes] : types) {
    builder.Tensor(GgmlTypeInfo(static_cast<uint32_t>(type))->name, {256}, type, offset);
    offset += (bytes + 31) / 32 * 32;
  }
  const std::string image = builder.Data(std::string(offset, '\0')).Build();
  const absl::StatusOr<GgufContents> contents = Parse(image);
  ASSERT_TRUE(contents.ok()) << contents.status();
  for (size_t i = 0; i < types.size(); ++i) {
    EXPECT_EQ(contents->tensors[i].num_bytes, types[i].second) << contents->tensors[i].name;
  }
}

TEST(GgufTest, TypeTables) {
  const std::optional<GgmlTypeTraits> q6_k = GgmlTypeInfo(14);
  ASSERT_TRUE(q6_k.has_value());
  EXPECT_EQ(q6_k->name, "Q6_K");
  EXPECT_EQ(q6_k->block_elements, 256);
  EXPECT_EQ(q6_k->block_bytes, 210);
  EXPECT_EQ(GgmlTypeInfo(30)->name, "BF16");
  for (const uint32_t removed : {4u, 5u, 16u, 29u, 31u, 1000u}) {
    EXPECT_FALSE(GgmlTypeInfo(removed).has_value()) << removed;
  }
  EXPECT_EQ(GgufValueTypeName(GgufValueType::kFloat64), "float64");
  EXPECT_EQ(GgufValueTypeName(GgufValueType::kArray), "array");
}

TEST(GgufTest, VersionsTwoAndThree) {
  for (const uint32_t version : {2u, 3u}) {
    const absl::StatusOr<GgufContents> contents =
        Parse(EveryValueTypeBuilder().Version(version).Build());
    ASSERT_TRUE(contents.ok()) << contents.status();
    EXPECT_EQ(contents->version, version);
  }
  ExpectInvalid(Parse(EveryValueTypeBuilder().Version(1).Build()).status(),
                {"GGUF version 1 is not supported"});
  ExpectInvalid(Parse(EveryValueTypeBuilder().Version(4).Build()).status(), {"version 4"});
}

TEST(GgufTest, RejectsBigEndian) {
  // A big-endian file keeps the magic bytes but stores 3 as 00 00 00 03.
  std::string image = EveryValueTypeBuilder().Build();
  const char big_endian_three[] = {0, 0, 0, 3};
  std::memcpy(image.data() + 4, big_endian_three, 4);
  ExpectInvalid(Parse(image).status(), {"version 50331648", "big-endian"});
}

TEST(GgufTest, RejectsBadMagic) {
  std::string image = EveryValueTypeBuilder().Build();
  image[3] = 'L';  // "GGUL"
  ExpectInvalid(Parse(image).status(), {"not a GGUF file"});
  ExpectInvalid(Parse("GGML" + image.substr(4)).status(), {"not a GGUF file"});
}

TEST(GgufTest, EveryTruncationIsAnError) {
  const std::string image = EveryValueTypeBuilder().Build();
  ASSERT_TRUE(Parse(image).ok());
  for (size_t length = 0; length < image.size(); ++length) {
    // An exactly sized copy, so a read past its end is one the sanitizers see.
    const std::vector<std::byte> prefix(AsBytes(image).begin(), AsBytes(image).begin() + length);
    const absl::StatusOr<GgufContents> contents = ParseGgufBytes(prefix);
    ASSERT_FALSE(contents.ok()) << "prefix of " << length << " bytes was accepted";
    ASSERT_EQ(contents.status().code(), absl::StatusCode::kInvalidArgument) << contents.status();
  }
}

TEST(GgufTest, TruncationMessagesNameTheField) {
  const std::string image = EveryValueTypeBuilder().Build();
  ExpectInvalid(Parse(image.substr(0, 2)).status(),
                {"at byte 0: magic: needs 4 bytes but the file ends after 2"});
  ExpectInvalid(Parse(image.substr(0, 20)).status(), {"at byte 16: metadata count"});
  // A metadata count beyond what the bytes left can hold fails up front.
  ExpectInvalid(Parse(image.substr(0, 100)).status(),
                {"at byte 24: metadata count: count 23 cannot fit in the 76 bytes left"});
  // Inside a key's value: 24 header bytes, "u8" (8 + 2), type (4).
  const std::string one_key = GgufBuilder().Key("u8", GgufValueType::kUint8, "\x7f").Build();
  ExpectInvalid(Parse(one_key.substr(0, 38)).status(),
                {"at byte 38: metadata \"u8\": needs 1 bytes but the file ends after 0"});
  // Inside the data area: the last tensor runs past its end.
  ExpectInvalid(Parse(image.substr(0, image.size() - 1)).status(),
                {"tensor \"q4_1\"", "120 bytes at offset 32", "run past its end (151 bytes)"});
}

TEST(GgufTest, DefaultAlignment) {
  GgufBuilder builder;
  builder.Key("k", GgufValueType::kUint8, Le<uint8_t>(1))
      .Tensor("w", {8}, GgmlType::kF32, 0)
      .Data(std::string(32, '\0'));
  const absl::StatusOr<GgufContents> contents = Parse(builder.Build());
  ASSERT_TRUE(contents.ok()) << contents.status();
  EXPECT_EQ(contents->alignment, 32u);
  EXPECT_EQ(contents->data_offset, 96u);  // 24 + 14 + 33 = 71, rounded up to 32
  // A tensor at a multiple of 16 but not of 32 is misaligned.
  builder = GgufBuilder();
  builder.Tensor("w", {4}, GgmlType::kF32, 16).Data(std::string(32, '\0'));
  ExpectInvalid(Parse(builder.Build()).status(),
                {"tensor \"w\"", "offset 16 is not a multiple of the alignment 32"});
}

TEST(GgufTest, CustomAlignment) {
  GgufBuilder builder;
  builder.Alignment(64)
      .Key("general.alignment", GgufValueType::kUint32, Le<uint32_t>(64))
      .Tensor("a", {4}, GgmlType::kF32, 0)
      .Tensor("b", {4}, GgmlType::kF32, 64)
      .Data(std::string(80, '\0'));
  const std::string image = builder.Build();
  const absl::StatusOr<GgufContents> contents = Parse(image);
  ASSERT_TRUE(contents.ok()) << contents.status();
  EXPECT_EQ(contents->alignment, 64u);
  EXPECT_EQ(contents->data_offset, 128u);
  EXPECT_EQ(contents->tensors[1].data, reinterpret_cast<const std::byte*>(image.data()) + 192);

  builder = GgufBuilder();
  builder.Alignment(64)
      .Key("general.alignment", GgufValueType::kUint32, Le<uint32_t>(64))
      .Tensor("a", {4}, GgmlType::kF32, 32)
      .Data(std::string(64, '\0'));
  ExpectInvalid(Parse(builder.Build()).status(),
                {"tensor \"a\"", "offset 32 is not a multiple of the alignment 64"});

  // Alignment 1: tensors may sit anywhere and the data area follows the header.
  builder = GgufBuilder();
  builder.Alignment(1)
      .Key("general.alignment", GgufValueType::kUint32, Le<uint32_t>(1))
      .Tensor("a", {3}, GgmlType::kI8, 0)
      .Tensor("b", {2}, GgmlType::kF16, 3)
      .Data(std::string(7, '\0'));
  ASSERT_TRUE(Parse(builder.Build()).ok());
}

TEST(GgufTest, RejectsBadAlignment) {
  for (const uint32_t alignment : {0u, 48u, 3u, 0x80000001u}) {
    GgufBuilder builder;
    builder.Key("general.alignment", GgufValueType::kUint32, Le<uint32_t>(alignment));
    ExpectInvalid(Parse(builder.Build()).status(),
                  {"metadata \"general.alignment\"",
                   std::to_string(alignment) + " is not a power of two"});
  }
  GgufBuilder builder;
  builder.Key("general.alignment", GgufValueType::kUint64, Le<uint64_t>(64));
  ExpectInvalid(Parse(builder.Build()).status(),
                {"metadata \"general.alignment\"", "must be a uint32, not uint64"});
  builder = GgufBuilder();
  builder.Key("general.alignment", GgufValueType::kString, Str("64"));
  ExpectInvalid(Parse(builder.Build()).status(), {"must be a uint32, not string"});
}

TEST(GgufTest, RejectsDuplicateKey) {
  GgufBuilder builder;
  builder.Key("general.name", GgufValueType::kString, Str("a"))
      .Key("general.name", GgufValueType::kUint8, Le<uint8_t>(1));
  ExpectInvalid(Parse(builder.Build()).status(),
                {"metadata \"general.name\"", "key appears twice"});
}

TEST(GgufTest, RejectsDuplicateTensorName) {
  GgufBuilder builder;
  builder.Tensor("w", {8}, GgmlType::kF32, 0)
      .Tensor("w", {8}, GgmlType::kF32, 32)
      .Data(std::string(64, '\0'));
  ExpectInvalid(Parse(builder.Build()).status(), {"tensor \"w\"", "name appears twice"});
}

TEST(GgufTest, RejectsUnknownValueType) {
  GgufBuilder builder;
  builder.Key("k", GgufValueType(13), Le<uint8_t>(0));
  // 24 header bytes, the key (8 + 1), its type (4).
  ExpectInvalid(Parse(builder.Build()).status(),
                {"at byte 37: metadata \"k\": unknown value type 13"});
  builder = GgufBuilder();
  builder.Key("arr", GgufValueType::kArray, Array(GgufValueType(0xffffffff), 1, "x"));
  ExpectInvalid(Parse(builder.Build()).status(),
                {"metadata \"arr\"", "unknown value type 4294967295"});
}

TEST(GgufTest, RejectsUnknownGgmlType) {
  for (const uint32_t type_id : {4u, 31u, 99u}) {
    GgufBuilder builder;
    builder.Tensor("w", {32}, type_id, 0).Data(std::string(128, '\0'));
    ExpectInvalid(Parse(builder.Build()).status(),
                  {"tensor \"w\"", "unknown ggml type " + std::to_string(type_id)});
  }
}

TEST(GgufTest, RejectsRankZeroAndFive) {
  GgufBuilder builder;
  builder.Tensor("scalar", {}, GgmlType::kF32, 0).Data(std::string(32, '\0'));
  ExpectInvalid(Parse(builder.Build()).status(), {"tensor \"scalar\"", "rank 0 is not 1..4"});
  builder = GgufBuilder();
  builder.Tensor("r5", {1, 1, 1, 1, 1}, GgmlType::kF32, 0).Data(std::string(32, '\0'));
  ExpectInvalid(Parse(builder.Build()).status(), {"tensor \"r5\"", "rank 5 is not 1..4"});
  builder = GgufBuilder();
  builder.Tensor("r4", {2, 1, 1, 2}, GgmlType::kF32, 0).Data(std::string(16, '\0'));
  EXPECT_TRUE(Parse(builder.Build()).ok());
}

TEST(GgufTest, RejectsRowsThatSplitABlock) {
  GgufBuilder builder;
  builder.Tensor("q", {48, 2}, GgmlType::kQ4_0, 0).Data(std::string(64, '\0'));
  ExpectInvalid(Parse(builder.Build()).status(),
                {"tensor \"q\"", "innermost dim 48 is not a multiple of the Q4_0 block of 32"});
  // The outer dims need not be multiples: {32, 3} is fine, {3, 32} is not.
  builder = GgufBuilder();
  builder.Tensor("q", {256, 3}, GgmlType::kQ6_K, 0).Data(std::string(630, '\0'));
  EXPECT_TRUE(Parse(builder.Build()).ok());
  builder = GgufBuilder();
  builder.Tensor("q", {3, 256}, GgmlType::kQ6_K, 0).Data(std::string(630, '\0'));
  ExpectInvalid(Parse(builder.Build()).status(), {"innermost dim 3", "Q6_K block of 256"});
}

TEST(GgufTest, RejectsTensorPastEnd) {
  GgufBuilder builder;
  builder.Tensor("a", {8}, GgmlType::kF32, 0)
      .Tensor("b", {8}, GgmlType::kF32, 32)
      .Data(std::string(60, '\0'));
  ExpectInvalid(Parse(builder.Build()).status(),
                {"tensor \"b\"", "32 bytes at offset 32", "run past its end (60 bytes)"});
  // An offset near 2^64 must not wrap around the bounds check.
  builder = GgufBuilder();
  builder.Tensor("far", {8}, GgmlType::kF32, ~uint64_t{0} - 31).Data(std::string(32, '\0'));
  ExpectInvalid(Parse(builder.Build()).status(), {"tensor \"far\"", "run past its end"});
  // With tensors but no room for the padding before the data area.
  builder = GgufBuilder();
  builder.Tensor("w", {0}, GgmlType::kF32, 0);
  std::string image = builder.Build();
  image.resize(image.size() - 1);
  ExpectInvalid(Parse(image).status(), {"the data area would start at byte 64"});
}

TEST(GgufTest, RejectsOverlappingTensors) {
  GgufBuilder builder;
  builder.Tensor("first", {16}, GgmlType::kF32, 0)
      .Tensor("second", {16}, GgmlType::kF32, 32)
      .Data(std::string(96, '\0'));
  ExpectInvalid(Parse(builder.Build()).status(), {"\"first\"", "\"second\"", "overlap"});
  // Listed in the other order, still found.
  builder = GgufBuilder();
  builder.Tensor("second", {16}, GgmlType::kF32, 32)
      .Tensor("first", {16}, GgmlType::kF32, 0)
      .Data(std::string(96, '\0'));
  ExpectInvalid(Parse(builder.Build()).status(), {"\"first\" and \"second\" overlap"});
  // A big tensor covering a later small one (not adjacent in the file).
  builder = GgufBuilder();
  builder.Tensor("big", {32}, GgmlType::kF32, 0)
      .Tensor("after", {8}, GgmlType::kF32, 128)
      .Tensor("inside", {8}, GgmlType::kF32, 64)
      .Data(std::string(160, '\0'));
  ExpectInvalid(Parse(builder.Build()).status(), {"\"big\" and \"inside\" overlap"});
}

TEST(GgufTest, ZeroSizeTensorAtAnotherStartIsNoOverlap) {
  // GGUFWriter gives a zero-size tensor the offset of the next one; the file
  // order must not decide whether that reads as an overlap.
  for (const bool empty_first : {true, false}) {
    GgufBuilder builder;
    if (empty_first) builder.Tensor("empty", {0, 4}, GgmlType::kF32, 0);
    builder.Tensor("w", {8}, GgmlType::kF32, 0);
    if (!empty_first) builder.Tensor("empty", {0, 4}, GgmlType::kF32, 0);
    const std::string image = builder.Data(std::string(32, '\0')).Build();
    const absl::StatusOr<GgufContents> contents = Parse(image);
    ASSERT_TRUE(contents.ok()) << contents.status();
    EXPECT_EQ(contents->tensors[empty_first ? 0 : 1].num_bytes, 0u);
  }
  // Inside another tensor's bytes it does overlap.
  GgufBuilder builder;
  builder.Tensor("w", {16}, GgmlType::kF32, 0)
      .Tensor("empty", {0}, GgmlType::kF32, 32)
      .Data(std::string(64, '\0'));
  ExpectInvalid(Parse(builder.Build()).status(), {"\"w\" and \"empty\" overlap"});
}

TEST(GgufTest, RejectsHugeCountsFast) {
  // Each count is checked against the bytes left before anything is
  // reserved, so these fail at once instead of allocating exabytes.
  const uint64_t huge = uint64_t{1} << 62;
  ExpectInvalid(Parse(GgufBuilder().TensorCount(huge).Build()).status(),
                {"tensor count", "count 4611686018427387904 cannot fit"});
  ExpectInvalid(Parse(GgufBuilder().MetadataCount(huge).Build()).status(),
                {"metadata count", "count 4611686018427387904 cannot fit"});
  ExpectInvalid(Parse(GgufBuilder().MetadataCount(~uint64_t{0}).Build()).status(),
                {"cannot fit"});
  for (const GgufValueType element :
       {GgufValueType::kUint8, GgufValueType::kInt64, GgufValueType::kString,
        GgufValueType::kArray, GgufValueType::kBool}) {
    GgufBuilder builder;
    builder.Key("tokens", GgufValueType::kArray, Array(element, huge, std::string(64, '\0')));
    ExpectInvalid(Parse(builder.Build()).status(),
                  {"metadata \"tokens\"", "count 4611686018427387904 cannot fit"});
  }
  // A string length beyond the file.
  GgufBuilder builder;
  builder.Key("s", GgufValueType::kString, Le<uint64_t>(huge) + "abc");
  ExpectInvalid(Parse(builder.Build()).status(),
                {"metadata \"s\"", "string of 4611686018427387904 bytes"});
  builder = GgufBuilder();
  builder.Key(std::string(5, 'k'), GgufValueType::kUint8, "x");
  std::string image = builder.Build();
  std::memcpy(image.data() + 24, Le<uint64_t>(~uint64_t{0}).data(), 8);  // the key's length
  ExpectInvalid(Parse(image).status(), {"metadata key #0", "string of 18446744073709551615"});
}

TEST(GgufTest, RejectsUint64AboveInt64Max) {
  const uint64_t too_big = uint64_t{1} << 63;
  GgufBuilder builder;
  builder.Key("n", GgufValueType::kUint64, Le(too_big));
  ExpectInvalid(Parse(builder.Build()).status(),
                {"metadata \"n\"", "uint64 value 9223372036854775808 is too large"});
  builder = GgufBuilder();
  builder.Key("ns", GgufValueType::kArray,
              Array(GgufValueType::kUint64, 2, Le<uint64_t>(1) + Le(~uint64_t{0})));
  ExpectInvalid(Parse(builder.Build()).status(),
                {"metadata \"ns\"", "uint64 value 18446744073709551615 is too large"});
}

TEST(GgufTest, RejectsBoolOtherThanZeroOrOne) {
  GgufBuilder builder;
  builder.Key("flag", GgufValueType::kBool, Le<uint8_t>(2));
  ExpectInvalid(Parse(builder.Build()).status(),
                {"metadata \"flag\"", "bool value 2 is not 0 or 1"});
  builder = GgufBuilder();
  builder.Key("flags", GgufValueType::kArray, Array(GgufValueType::kBool, 2, "\x01\xff"));
  ExpectInvalid(Parse(builder.Build()).status(),
                {"metadata \"flags\"", "bool value 255 is not 0 or 1"});
}

TEST(GgufTest, RejectsDeepNesting) {
  std::string value = Array(GgufValueType::kUint8, 0, "");
  for (int depth = 1; depth < 8; ++depth) value = Array(GgufValueType::kArray, 1, value);
  GgufBuilder builder;
  builder.Key("deep", GgufValueType::kArray, value);
  ASSERT_TRUE(Parse(builder.Build()).ok());  // 8 levels
  builder = GgufBuilder();
  builder.Key("deep", GgufValueType::kArray, Array(GgufValueType::kArray, 1, value));
  ExpectInvalid(Parse(builder.Build()).status(),
                {"metadata \"deep\"", "arrays nested too deeply"});
}

TEST(GgufTest, RejectsBadDims) {
  GgufBuilder builder;
  builder.Tensor("neg", {8, uint64_t{1} << 63}, GgmlType::kF32, 0).Data(std::string(32, '\0'));
  ExpectInvalid(Parse(builder.Build()).status(), {"tensor \"neg\"", "dim 1 is negative"});
  builder = GgufBuilder();
  builder.Tensor("many", {uint64_t{1} << 32, uint64_t{1} << 32}, GgmlType::kF32, 0)
      .Data(std::string(32, '\0'));
  ExpectInvalid(Parse(builder.Build()).status(), {"tensor \"many\"", "element count overflows"});
  // 2^62 elements of 4 bytes: fits int64 as elements, not uint64 as bytes.
  builder = GgufBuilder();
  builder.Tensor("wide", {uint64_t{1} << 31, uint64_t{1} << 31}, GgmlType::kF32, 0)
      .Data(std::string(32, '\0'));
  ExpectInvalid(Parse(builder.Build()).status(), {"tensor \"wide\"", "byte size overflows"});
}

TEST(GgufTest, NoTensors) {
  GgufBuilder builder;
  builder.Key("general.architecture", GgufValueType::kString, Str("llama"));
  const absl::StatusOr<GgufContents> contents = Parse(builder.Build());
  ASSERT_TRUE(contents.ok()) << contents.status();
  EXPECT_TRUE(contents->tensors.empty());
  ASSERT_TRUE(Parse(GgufBuilder().Build()).ok());  // just the 24-byte header
}

class GgufFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.WriteFile("model.gguf", EveryValueTypeBuilder().Build());
    absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open(path_);
    ASSERT_TRUE(file.ok()) << file.status();
    file_ = *std::move(file);
  }

  // A getter's error: `code`, naming the file and the key.
  void ExpectGetterError(const absl::Status& status, absl::StatusCode code, std::string_view key,
                         std::string_view detail) {
    EXPECT_EQ(status.code(), code) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(path_));
    EXPECT_THAT(std::string(status.message()), HasSubstr(std::string(key)));
    EXPECT_THAT(std::string(status.message()), HasSubstr(std::string(detail)));
  }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<GgufFile> file_;
};

TEST_F(GgufFileTest, Accessors) {
  EXPECT_EQ(file_->path(), path_);
  EXPECT_EQ(file_->version(), 3u);
  EXPECT_EQ(file_->alignment(), 32u);
  EXPECT_EQ(file_->metadata().size(), 23u);
  ASSERT_NE(file_->FindMetadata("u16"), nullptr);
  EXPECT_EQ(file_->FindMetadata("u16")->integer, 65535);
  EXPECT_EQ(file_->FindMetadata("missing"), nullptr);
  ASSERT_EQ(file_->tensors().size(), 2u);
  const GgufTensor* q4_1 = file_->FindTensor("q4_1");
  ASSERT_NE(q4_1, nullptr);
  EXPECT_EQ(q4_1->num_bytes, 120u);
  EXPECT_EQ(static_cast<uint8_t>(q4_1->data[0]), static_cast<uint8_t>(32 * 7 + 1));
  EXPECT_EQ(file_->FindTensor("missing"), nullptr);
}

TEST_F(GgufFileTest, TypedGetters) {
  EXPECT_EQ(*file_->GetString("str"), "héllo");
  EXPECT_EQ(*file_->GetString(""), "");
  EXPECT_EQ(*file_->GetInt("u8"), 255);
  EXPECT_EQ(*file_->GetInt("i16"), -32768);
  EXPECT_EQ(*file_->GetInt("u32"), 4294967295);
  EXPECT_EQ(*file_->GetInt("u64"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(*file_->GetInt("i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(*file_->GetFloat("f32"), 1.5);
  EXPECT_EQ(*file_->GetFloat("f64"), 0.1);
  EXPECT_EQ(*file_->GetFloat("i8"), -128.0);  // integers widen
  EXPECT_TRUE(*file_->GetBool("yes"));
  EXPECT_FALSE(*file_->GetBool("no"));
  EXPECT_THAT(*file_->GetStringArray("arr.str"), ElementsAre("a", "", "ccc"));
  EXPECT_THAT(*file_->GetIntArray("arr.i32"), ElementsAre(1, -2, 3));
  EXPECT_THAT(*file_->GetIntArray("arr.u8"), ElementsAre(7, 255));
  EXPECT_TRUE(file_->GetIntArray("arr.empty")->empty());
  EXPECT_THAT(*file_->GetFloatArray("arr.f32"), ElementsAre(0.5, -1.25));
  EXPECT_THAT(*file_->GetFloatArray("arr.i32"), ElementsAre(1.0, -2.0, 3.0));
}

TEST_F(GgufFileTest, GetterErrors) {
  using absl::StatusCode;
  ExpectGetterError(file_->GetString("nope").status(), StatusCode::kNotFound, "nope",
                    "no metadata key");
  ExpectGetterError(file_->GetInt("nope").status(), StatusCode::kNotFound, "nope", "");
  ExpectGetterError(file_->GetFloat("nope").status(), StatusCode::kNotFound, "nope", "");
  ExpectGetterError(file_->GetBool("nope").status(), StatusCode::kNotFound, "nope", "");
  ExpectGetterError(file_->GetStringArray("nope").status(), StatusCode::kNotFound, "nope", "");
  ExpectGetterError(file_->GetIntArray("nope").status(), StatusCode::kNotFound, "nope", "");
  ExpectGetterError(file_->GetFloatArray("nope").status(), StatusCode::kNotFound, "nope", "");

  ExpectGetterError(file_->GetString("u8").status(), StatusCode::kInvalidArgument, "metadata u8",
                    "is uint8, expected a string");
  ExpectGetterError(file_->GetInt("str").status(), StatusCode::kInvalidArgument, "str",
                    "is string, expected an integer");
  ExpectGetterError(file_->GetInt("yes").status(), StatusCode::kInvalidArgument, "yes",
                    "is bool, expected an integer");
  ExpectGetterError(file_->GetInt("f32").status(), StatusCode::kInvalidArgument, "f32",
                    "is float32");
  ExpectGetterError(file_->GetFloat("yes").status(), StatusCode::kInvalidArgument, "yes",
                    "expected a number");
  ExpectGetterError(file_->GetFloat("arr.f32").status(), StatusCode::kInvalidArgument, "arr.f32",
                    "is array of float32, expected a number");
  ExpectGetterError(file_->GetBool("u8").status(), StatusCode::kInvalidArgument, "u8",
                    "expected a bool");
  ExpectGetterError(file_->GetStringArray("arr.i32").status(), StatusCode::kInvalidArgument,
                    "arr.i32", "is array of int32, expected an array of strings");
  ExpectGetterError(file_->GetStringArray("str").status(), StatusCode::kInvalidArgument, "str",
                    "is string");
  ExpectGetterError(file_->GetIntArray("arr.f32").status(), StatusCode::kInvalidArgument,
                    "arr.f32", "expected an array of integers");
  ExpectGetterError(file_->GetIntArray("i32").status(), StatusCode::kInvalidArgument, "i32",
                    "is int32, expected an array of integers");
  // Bools are not integers, in arrays as for GetInt.
  ExpectGetterError(file_->GetIntArray("arr.bool").status(), StatusCode::kInvalidArgument,
                    "arr.bool", "is array of bool");
  ExpectGetterError(file_->GetFloatArray("arr.bool").status(), StatusCode::kInvalidArgument,
                    "arr.bool", "expected an array of numbers");
  ExpectGetterError(file_->GetFloatArray("arr.str").status(), StatusCode::kInvalidArgument,
                    "arr.str", "expected an array of numbers");
  ExpectGetterError(file_->GetFloatArray("arr.arr").status(), StatusCode::kInvalidArgument,
                    "arr.arr", "is array of array");
  ExpectGetterError(file_->GetFloatArray("f64").status(), StatusCode::kInvalidArgument, "f64",
                    "is float64");
}

TEST(GgufFileOpenTest, MissingFile) {
  TempDir dir;
  const std::string path = (dir.path() / "absent.gguf").string();
  const absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound) << file.status();
  EXPECT_THAT(std::string(file.status().message()), HasSubstr(path));
}

TEST(GgufFileOpenTest, BrokenFileNamesPath) {
  TempDir dir;
  std::string image = EveryValueTypeBuilder().Build();
  image.resize(image.size() - 8);
  const std::string path = dir.WriteFile("cut.gguf", image);
  const absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument) << file.status();
  EXPECT_THAT(std::string(file.status().message()), HasSubstr(path + ": tensor \"q4_1\""));
  const std::string empty = dir.WriteFile("empty.gguf", "");
  EXPECT_EQ(GgufFile::Open(empty).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace duet
