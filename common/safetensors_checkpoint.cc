#include "common/safetensors_checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "common/json_fields.h"
#include "common/mapped_file.h"
#include "common/status_macros.h"
#include "common/str_cat.h"
#include "nlohmann/json.hpp"

namespace duet {
namespace {

namespace fs = std::filesystem;

// Tensor names by shard file name, as the index's weight_map lists them.
using ShardPlan = std::map<std::string, std::vector<std::string>>;

bool IsPlainFileName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos;
}

absl::StatusOr<ShardPlan> ReadIndex(const std::string& index_path) {
  DUET_ASSIGN_OR_RETURN(const MappedFile index_file, MappedFile::Open(index_path));
  const std::string_view text(reinterpret_cast<const char*>(index_file.data()),
                              index_file.size_bytes());
  DUET_ASSIGN_OR_RETURN(const nlohmann::json index, ParseJsonText(text, index_path));
  DUET_RETURN_IF_ERROR(JsonFields::ExpectObject(index, index_path, "the index"));
  const auto weight_map = index.find("weight_map");
  if (weight_map == index.end()) {
    return absl::InvalidArgumentError(StrCat(index_path, ": no \"weight_map\""));
  }
  DUET_RETURN_IF_ERROR(JsonFields::ExpectObject(*weight_map, index_path, "\"weight_map\""));
  ShardPlan plan;
  for (const auto& [tensor, shard] : weight_map->items()) {
    if (!shard.is_string() || !IsPlainFileName(shard.get_ref<const std::string&>())) {
      return absl::InvalidArgumentError(StrCat(index_path, ": tensor \"", tensor, "\": shard ",
                                               shard.dump(),
                                               " must be a file name in the model directory"));
    }
    plan[shard.get<std::string>()].push_back(tensor);
  }
  if (plan.empty()) {
    return absl::InvalidArgumentError(StrCat(index_path, ": \"weight_map\" is empty"));
  }
  return plan;
}

bool FileExists(const fs::path& path) {
  std::error_code error;
  return fs::exists(path, error);
}

}  // namespace

absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> SafetensorsCheckpoint::Open(
    const std::string& model_dir) {
  std::unique_ptr<SafetensorsCheckpoint> checkpoint(new SafetensorsCheckpoint(model_dir));
  const fs::path dir(model_dir);

  const fs::path single_path = dir / kSingleSafetensorsFileName;
  if (FileExists(single_path)) {
    DUET_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file,
                          SafetensorsFile::Open(single_path.string()));
    checkpoint->shards_.push_back(std::move(file));
    DUET_RETURN_IF_ERROR(checkpoint->IndexLastShard());
    return checkpoint;
  }

  const std::string index_path = (dir / kSafetensorsIndexFileName).string();
  if (!FileExists(index_path)) {
    return absl::NotFoundError(StrCat(model_dir, ": has neither ", kSingleSafetensorsFileName,
                                      " nor ", kSafetensorsIndexFileName));
  }
  DUET_ASSIGN_OR_RETURN(const ShardPlan plan, ReadIndex(index_path));

  for (const auto& [shard_name, tensor_names] : plan) {
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> shard =
        SafetensorsFile::Open((dir / shard_name).string());
    if (absl::IsNotFound(shard.status())) {
      return absl::NotFoundError(StrCat(index_path, ": shard \"", shard_name,
                                        "\" (holding tensor \"", tensor_names.front(),
                                        "\") is missing: ", shard.status().message()));
    }
    if (!shard.ok()) return shard.status();
    checkpoint->shards_.push_back(*std::move(shard));
    DUET_RETURN_IF_ERROR(checkpoint->IndexLastShard());
  }

  // The index and the shards must agree tensor by tensor.
  size_t num_indexed_tensors = 0;
  for (size_t shard_index = 0; const auto& [shard_name, tensor_names] : plan) {
    for (const std::string& name : tensor_names) {
      const auto it = checkpoint->location_by_name_.find(name);
      if (it == checkpoint->location_by_name_.end() || it->second.shard_index != shard_index) {
        return absl::DataLossError(StrCat(index_path, ": tensor \"", name,
                                          "\" is listed in shard \"", shard_name,
                                          "\" but that shard has no such tensor"));
      }
    }
    num_indexed_tensors += tensor_names.size();
    ++shard_index;
  }
  if (num_indexed_tensors != checkpoint->location_by_name_.size()) {
    // Some shard holds a tensor the index does not mention.
    for (const auto& shard : checkpoint->shards_) {
      const std::string shard_name = fs::path(shard->path()).filename().string();
      const std::vector<std::string>& listed = plan.at(shard_name);
      for (const TensorView& tensor : shard->tensors()) {
        if (std::find(listed.begin(), listed.end(), tensor.name) == listed.end()) {
          return absl::DataLossError(StrCat(shard->path(), ": tensor \"", tensor.name,
                                            "\" is not listed in ", index_path));
        }
      }
    }
  }
  return checkpoint;
}

absl::Status SafetensorsCheckpoint::IndexLastShard() {
  const size_t shard_index = shards_.size() - 1;
  const SafetensorsFile& shard = *shards_[shard_index];
  for (size_t tensor_index = 0; tensor_index < shard.tensors().size(); ++tensor_index) {
    const std::string_view name = shard.tensors()[tensor_index].name;
    const auto [it, inserted] =
        location_by_name_.emplace(name, Location{shard_index, tensor_index});
    if (!inserted) {
      return absl::DataLossError(StrCat("tensor \"", name, "\" is in both ",
                                        shards_[it->second.shard_index]->path(), " and ",
                                        shard.path()));
    }
  }
  return absl::OkStatus();
}

std::optional<TensorView> SafetensorsCheckpoint::Find(std::string_view name) const {
  const auto it = location_by_name_.find(name);
  if (it == location_by_name_.end()) return std::nullopt;
  return shards_[it->second.shard_index]->tensors()[it->second.tensor_index];
}

absl::StatusOr<TensorView> SafetensorsCheckpoint::Get(std::string_view name) const {
  std::optional<TensorView> view = Find(name);
  if (!view.has_value()) {
    return absl::NotFoundError(StrCat(model_dir_, ": no tensor \"", name, "\" in any shard"));
  }
  return *view;
}

}  // namespace duet
