// Fuzzes the GGUF parser with each input as a whole file image. Accepted
// images must satisfy every documented invariant, and every tensor byte and
// metadata value is read so the sanitizers catch a range that escapes the
// input. Rejections must be InvalidArgument.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/gguf.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

bool IsArrayOf(const duet::GgufValue& value, std::initializer_list<duet::GgufValueType> types) {
  return std::find(types.begin(), types.end(), value.element_type) != types.end();
}

unsigned Bits(double value) {
  uint64_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return static_cast<unsigned>(bits ^ (bits >> 32));
}

// Reads every part of `value` and checks its shape matches its type.
unsigned TouchValue(const duet::GgufValue& value) {
  using duet::GgufValueType;
  unsigned checksum = static_cast<unsigned>(value.integer) ^ Bits(value.real);
  for (const char c : value.string) checksum += static_cast<unsigned char>(c);
  for (const int64_t element : value.integers) checksum += static_cast<unsigned>(element);
  for (const double element : value.reals) checksum += Bits(element);
  for (const std::string& element : value.strings) {
    for (const char c : element) checksum += static_cast<unsigned char>(c);
  }
  FUZZ_CHECK(!duet::GgufValueTypeName(value.type).empty());
  if (value.type == GgufValueType::kBool) FUZZ_CHECK(value.integer == 0 || value.integer == 1);
  if (value.type == GgufValueType::kUint64) FUZZ_CHECK(value.integer >= 0);
  if (value.type != GgufValueType::kArray) {
    FUZZ_CHECK(value.integers.empty() && value.reals.empty() && value.strings.empty());
    return checksum;
  }
  const size_t stored = value.integers.size() + value.reals.size() + value.strings.size();
  if (value.element_type == GgufValueType::kArray) {
    FUZZ_CHECK(stored == 0);
  } else {
    FUZZ_CHECK(stored == value.array_length);
  }
  if (!value.reals.empty()) {
    FUZZ_CHECK(IsArrayOf(value, {GgufValueType::kFloat32, GgufValueType::kFloat64}));
  }
  if (!value.strings.empty()) FUZZ_CHECK(IsArrayOf(value, {GgufValueType::kString}));
  if (value.element_type == GgufValueType::kBool) {
    for (const int64_t element : value.integers) FUZZ_CHECK(element == 0 || element == 1);
  }
  return checksum;
}

void CheckContents(const duet::GgufContents& contents, std::span<const std::byte> file) {
  FUZZ_CHECK(contents.version == 2 || contents.version == 3);
  FUZZ_CHECK(contents.alignment > 0 && (contents.alignment & (contents.alignment - 1)) == 0);
  unsigned checksum = 0;
  std::set<std::string> keys;
  for (const auto& [key, value] : contents.metadata) {
    FUZZ_CHECK(keys.insert(key).second);
    checksum += TouchValue(value);
  }
  if (contents.tensors.empty()) return;
  FUZZ_CHECK(contents.data_offset % contents.alignment == 0);
  FUZZ_CHECK(contents.data_offset <= file.size());
  std::set<std::string> names;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // [begin, end) in the data area
  for (const duet::GgufTensor& tensor : contents.tensors) {
    FUZZ_CHECK(names.insert(tensor.name).second);
    FUZZ_CHECK(!tensor.dims.empty() && tensor.dims.size() <= 4);
    const std::optional<duet::GgmlTypeTraits> traits = duet::GgmlTypeInfo(tensor.type_id);
    FUZZ_CHECK(traits.has_value());
    __int128 num_elements = 1;
    for (const int64_t dim : tensor.dims) {
      FUZZ_CHECK(dim >= 0);
      num_elements *= dim;
      FUZZ_CHECK(num_elements <= INT64_MAX);
    }
    FUZZ_CHECK(num_elements == tensor.num_elements());
    FUZZ_CHECK(tensor.dims[0] % traits->block_elements == 0);
    FUZZ_CHECK(num_elements / traits->block_elements * traits->block_bytes ==
               static_cast<__int128>(tensor.num_bytes));
    FUZZ_CHECK(tensor.offset % contents.alignment == 0);
    FUZZ_CHECK(tensor.data == file.data() + contents.data_offset + tensor.offset);
    FUZZ_CHECK(tensor.offset + tensor.num_bytes <= file.size() - contents.data_offset);
    for (size_t i = 0; i < tensor.num_bytes; ++i) {
      checksum += static_cast<unsigned>(tensor.data[i]);
    }
    if (tensor.num_bytes > 0) ranges.emplace_back(tensor.offset, tensor.offset + tensor.num_bytes);
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) FUZZ_CHECK(ranges[i - 1].second <= ranges[i].first);
  // Keeps the reads above from being optimised away.
  volatile unsigned sink = checksum;
  (void)sink;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> file = std::as_bytes(std::span<const uint8_t>(data, size));
  const absl::StatusOr<duet::GgufContents> contents = duet::ParseGgufBytes(file);
  if (contents.ok()) {
    CheckContents(*contents, file);
  } else {
    FUZZ_CHECK(contents.status().code() == absl::StatusCode::kInvalidArgument);
    FUZZ_CHECK(!contents.status().message().empty());
  }
  return 0;
}
