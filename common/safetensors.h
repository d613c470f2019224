// Zero-copy access to the tensors of one .safetensors file.
#ifndef DUET_COMMON_SAFETENSORS_H_
#define DUET_COMMON_SAFETENSORS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/dtype.h"
#include "common/mapped_file.h"
#include "common/safetensors_header.h"

namespace duet {

// A tensor inside a mapped file. Borrowed: every member points into the
// SafetensorsFile it came from and is valid only while that file lives.
// `data` has no alignment guarantee beyond 1 byte (the format does not align
// the data area), so read elements with memcpy or after copying.
struct TensorView {
  std::string_view name;
  DType dtype;
  std::span<const int64_t> shape;  // [rank]; empty for a scalar
  const std::byte* data;           // [num_bytes], row-major, little-endian
  size_t num_bytes;

  int64_t num_elements() const;  // 1 for a scalar
};

// One open .safetensors file: the mapping plus its validated header.
//
// Thread-safety: immutable after Open; share freely across threads.
// Lifetime: views returned by Find/Get/tensors() borrow from this object.
class SafetensorsFile {
 public:
  // Maps and validates `path`. Errors are those of MappedFile::Open and
  // ParseSafetensorsFileBytes, all naming the path.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);

  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  // nullopt when the file has no tensor of that name.
  std::optional<TensorView> Find(std::string_view name) const;
  // Like Find, but NotFound naming the file and the tensor.
  absl::StatusOr<TensorView> Get(std::string_view name) const;

  // Every tensor, in the order of their bytes in the file.
  std::span<const TensorView> tensors() const { return views_; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  const std::string& path() const { return file_.path(); }

 private:
  SafetensorsFile(MappedFile file, SafetensorsLayout layout);

  MappedFile file_;
  SafetensorsHeader header_;
  std::vector<TensorView> views_;                                // parallel to header_.tensors
  absl::flat_hash_map<std::string_view, size_t> index_by_name_;  // keys borrow header_
};

}  // namespace duet

#endif  // DUET_COMMON_SAFETENSORS_H_
