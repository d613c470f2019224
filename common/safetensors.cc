#include "common/safetensors.h"

#include <utility>

#include "absl/status/status.h"
#include "common/status_macros.h"
#include "common/str_cat.h"
#include "glog/logging.h"

namespace duet {

int64_t TensorView::num_elements() const {
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;  // validated against overflow at Open
  return count;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  DUET_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  DUET_ASSIGN_OR_RETURN(SafetensorsLayout layout, ParseSafetensorsFileBytes(file.bytes(), path));
  return std::unique_ptr<SafetensorsFile>(new SafetensorsFile(std::move(file), std::move(layout)));
}

SafetensorsFile::SafetensorsFile(MappedFile file, SafetensorsLayout layout)
    : file_(std::move(file)), header_(std::move(layout.header)) {
  // A parsed file holds at least the 8-byte length, so the mapping exists; the
  // data area may start one past its end when it is empty.
  CHECK(file_.data() != nullptr) << file_.path();
  const std::byte* data_area = file_.data() + layout.data_offset_bytes;
  views_.reserve(header_.tensors.size());
  index_by_name_.reserve(header_.tensors.size());
  for (const SafetensorsEntry& entry : header_.tensors) {
    index_by_name_.emplace(entry.name, views_.size());
    views_.push_back(TensorView{
        .name = entry.name,
        .dtype = entry.dtype,
        .shape = entry.shape,
        .data = data_area + entry.data_begin,
        .num_bytes = static_cast<size_t>(entry.num_bytes()),
    });
  }
}

std::optional<TensorView> SafetensorsFile::Find(std::string_view name) const {
  const auto it = index_by_name_.find(name);
  if (it == index_by_name_.end()) return std::nullopt;
  return views_[it->second];
}

absl::StatusOr<TensorView> SafetensorsFile::Get(std::string_view name) const {
  std::optional<TensorView> view = Find(name);
  if (!view.has_value()) {
    return absl::NotFoundError(StrCat(path(), ": no tensor \"", name, "\""));
  }
  return *view;
}

}  // namespace duet
