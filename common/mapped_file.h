// A read-only memory mapping of a whole file.
#ifndef DUET_COMMON_MAPPED_FILE_H_
#define DUET_COMMON_MAPPED_FILE_H_

#include <cstddef>
#include <span>
#include <string>
#include <utility>

#include "absl/status/statusor.h"

namespace duet {

// Owns a private read-only mapping of one file; the mapping is released on
// destruction. Pages are loaded lazily by the kernel on first touch.
//
// Thread-safety: immutable after Open, so any number of threads may read
// bytes() concurrently. Lifetime: pointers into bytes() are valid until this
// object is destroyed or moved from. If another process truncates the file
// while it is mapped, touching the lost pages raises SIGBUS; checkpoints are
// assumed not to change while served.
class MappedFile {
 public:
  // Maps `path`. Errors (all naming the path): NotFound when it does not
  // exist, PermissionDenied when it cannot be read, FailedPrecondition when it
  // is not a regular file, Internal for other system errors. An empty file
  // yields an empty mapping.
  static absl::StatusOr<MappedFile> Open(const std::string& path);

  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  // The whole file: [size_bytes()] bytes; data() is nullptr when empty.
  std::span<const std::byte> bytes() const { return {data_, size_bytes_}; }
  const std::byte* data() const { return data_; }
  size_t size_bytes() const { return size_bytes_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile(std::string path, const std::byte* data, size_t size_bytes)
      : path_(std::move(path)), data_(data), size_bytes_(size_bytes) {}
  void Unmap();

  std::string path_;
  const std::byte* data_ = nullptr;
  size_t size_bytes_ = 0;
};

}  // namespace duet

#endif  // DUET_COMMON_MAPPED_FILE_H_
