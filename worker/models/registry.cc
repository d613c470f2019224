#include "worker/models/registry.h"

#include "common/str_cat.h"

namespace duet::worker {
namespace {

using FamilyLoader = absl::StatusOr<std::unique_ptr<DecoderModel>> (*)(
    const ModelConfig&, const ModelShard&, std::unique_ptr<WeightSource>);

struct FamilyEntry {
  ModelFamily family;
  FamilyLoader load;
};

constexpr FamilyEntry kFamilies[] = {
    {ModelFamily::kLlama, &LoadLlama},
    {ModelFamily::kQwen2, &LoadQwen2},
    {ModelFamily::kQwen3, &LoadQwen3},
    {ModelFamily::kQwen3Moe, &LoadQwen3Moe},
};

}  // namespace

absl::StatusOr<std::unique_ptr<DecoderModel>> LoadModel(const ModelConfig& config,
                                                        std::unique_ptr<WeightSource> source,
                                                        const ModelShard& shard) {
  for (const FamilyEntry& entry : kFamilies) {
    if (entry.family == config.family) return entry.load(config, shard, std::move(source));
  }
  return absl::UnimplementedError(
      StrCat("no model implementation for architecture ", config.architecture));
}

}  // namespace duet::worker
