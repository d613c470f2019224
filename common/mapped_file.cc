#include "common/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "common/str_cat.h"
#include "glog/logging.h"

namespace duet {
namespace {

absl::Status ErrnoStatus(int error, const std::string& path, std::string_view action) {
  const std::string message = StrCat(path, ": ", action, ": ", std::strerror(error));
  switch (error) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    default:
      return absl::InternalError(message);
  }
}

// Closes a descriptor on every return path.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() { ::close(fd_); }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

 private:
  int fd_;
};

}  // namespace

absl::StatusOr<MappedFile> MappedFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, path, "cannot open");
  FdCloser closer(fd);

  struct stat info;
  if (::fstat(fd, &info) != 0) return ErrnoStatus(errno, path, "cannot stat");
  if (!S_ISREG(info.st_mode)) {
    return absl::FailedPreconditionError(StrCat(path, ": not a regular file"));
  }
  const auto size_bytes = static_cast<size_t>(info.st_size);
  // mmap rejects a zero length; an empty file is simply an empty mapping.
  if (size_bytes == 0) return MappedFile(path, nullptr, 0);

  void* address = ::mmap(nullptr, size_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  if (address == MAP_FAILED) return ErrnoStatus(errno, path, "cannot mmap");
  // The mapping keeps its own reference to the file; the descriptor can go.
  return MappedFile(path, static_cast<const std::byte*>(address), size_bytes);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_bytes_(std::exchange(other.size_bytes_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    Unmap();
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_bytes_ = std::exchange(other.size_bytes_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() { Unmap(); }

void MappedFile::Unmap() {
  if (data_ == nullptr) return;
  // munmap only fails for arguments that never came from mmap: a bug.
  PCHECK(::munmap(const_cast<std::byte*>(data_), size_bytes_) == 0) << path_;
  data_ = nullptr;
  size_bytes_ = 0;
}

}  // namespace duet
