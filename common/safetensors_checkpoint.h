// The weights of a Hugging Face model directory: one model.safetensors, or
// shards listed by model.safetensors.index.json.
#ifndef DUET_COMMON_SAFETENSORS_CHECKPOINT_H_
#define DUET_COMMON_SAFETENSORS_CHECKPOINT_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/safetensors.h"

namespace duet {

inline constexpr std::string_view kSingleSafetensorsFileName = "model.safetensors";
inline constexpr std::string_view kSafetensorsIndexFileName = "model.safetensors.index.json";

// All shards of one checkpoint, open and cross-checked, with lookup by tensor
// name across shards.
//
// Thread-safety: immutable after Open; share freely. Lifetime: views borrow
// from this object.
class SafetensorsCheckpoint {
 public:
  // Opens `model_dir`. Like transformers, a model.safetensors there wins over
  // an index. With an index, its "weight_map" (tensor name -> shard file name
  // in the same directory) must agree exactly with the shards' headers.
  // Errors name the file and tensor involved:
  //   NotFound: neither file exists; a shard named by the index is missing
  //     (the message names one tensor the index puts there).
  //   InvalidArgument: the index is not JSON / has no weight_map object / maps
  //     a tensor to a non-string or to a path that leaves the directory.
  //   DataLoss: a tensor the index lists is absent from its shard; a shard
  //     holds a tensor the index does not list or puts elsewhere; a tensor
  //     appears in two shards.
  //   Plus every error of SafetensorsFile::Open.
  static absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> Open(const std::string& model_dir);

  SafetensorsCheckpoint(const SafetensorsCheckpoint&) = delete;
  SafetensorsCheckpoint& operator=(const SafetensorsCheckpoint&) = delete;

  // nullopt when no shard holds the tensor.
  std::optional<TensorView> Find(std::string_view name) const;
  // Like Find, but NotFound naming the directory and the tensor.
  absl::StatusOr<TensorView> Get(std::string_view name) const;

  // The shards in file-name order (one when unsharded).
  std::span<const std::unique_ptr<SafetensorsFile>> shards() const { return shards_; }
  size_t num_tensors() const { return location_by_name_.size(); }
  const std::string& model_dir() const { return model_dir_; }

 private:
  struct Location {
    size_t shard_index;
    size_t tensor_index;  // into shards_[shard_index]->tensors()
  };

  explicit SafetensorsCheckpoint(std::string model_dir) : model_dir_(std::move(model_dir)) {}
  // Registers every tensor of the newest shard; DataLoss on a duplicate.
  absl::Status IndexLastShard();

  std::string model_dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  absl::flat_hash_map<std::string_view, Location> location_by_name_;  // keys borrow shards_
};

}  // namespace duet

#endif  // DUET_COMMON_SAFETENSORS_CHECKPOINT_H_
