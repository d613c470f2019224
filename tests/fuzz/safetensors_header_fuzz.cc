// Fuzzes the safetensors layout parser two ways per input: as a whole file
// (length prefix + header + data) and as bare header JSON against a fixed
// 64-byte data area. Accepted layouts must satisfy every documented
// invariant, and every byte they describe is read so the sanitizers catch a
// range that escapes the input. Rejections must be InvalidArgument or
// DataLoss and name the file.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "common/dtype.h"
#include "common/safetensors_header.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

constexpr std::string_view kFileName = "fuzz.safetensors";
constexpr std::string_view kHeaderName = "fuzz-header.json";

void CheckRejection(const absl::Status& status, std::string_view file_name) {
  FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument ||
             status.code() == absl::StatusCode::kDataLoss);
  const std::string message(status.message());
  FUZZ_CHECK(message.find(file_name) != std::string::npos);
}

// `data_area` is the whole data area the header was validated against.
void CheckHeader(const duet::SafetensorsHeader& header, std::span<const std::byte> data_area) {
  uint64_t covered_end = 0;
  unsigned checksum = 0;
  for (const duet::SafetensorsEntry& tensor : header.tensors) {
    FUZZ_CHECK(tensor.data_begin == covered_end);  // sorted, tiled, no overlap
    FUZZ_CHECK(tensor.data_begin <= tensor.data_end);
    FUZZ_CHECK(tensor.data_end <= data_area.size());
    __int128 num_elements = 1;
    for (int64_t dim : tensor.shape) {
      FUZZ_CHECK(dim >= 0);
      num_elements *= dim;
      FUZZ_CHECK(num_elements <= INT64_MAX);
    }
    FUZZ_CHECK(num_elements == tensor.num_elements());
    FUZZ_CHECK(num_elements * static_cast<__int128>(duet::DTypeSizeBytes(tensor.dtype)) ==
               static_cast<__int128>(tensor.num_bytes()));
    for (uint64_t i = tensor.data_begin; i < tensor.data_end; ++i) {
      checksum += static_cast<unsigned>(data_area[i]);
    }
    covered_end = tensor.data_end;
  }
  FUZZ_CHECK(covered_end == data_area.size());
  // Keeps the reads above from being optimised away.
  volatile unsigned sink = checksum;
  (void)sink;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> file = std::as_bytes(std::span<const uint8_t>(data, size));

  const absl::StatusOr<duet::SafetensorsLayout> layout =
      duet::ParseSafetensorsFileBytes(file, kFileName);
  if (layout.ok()) {
    FUZZ_CHECK(layout->data_offset_bytes >= 8 && layout->data_offset_bytes <= size);
    CheckHeader(layout->header, file.subspan(layout->data_offset_bytes));
  } else {
    CheckRejection(layout.status(), kFileName);
  }

  static const std::array<std::byte, 64> kDataArea{};
  const absl::StatusOr<duet::SafetensorsHeader> header = duet::ParseSafetensorsHeader(
      std::string_view(reinterpret_cast<const char*>(data), size), kDataArea.size(), kHeaderName);
  if (header.ok()) {
    CheckHeader(*header, kDataArea);
  } else {
    CheckRejection(header.status(), kHeaderName);
  }
  return 0;
}
