// The committed transformers fixtures (tests/golden/fixtures/<name>): what
// the golden tests of the whole and of the sharded model compare against.
#ifndef DUET_TESTS_WORKER_MODELS_GOLDEN_REFERENCE_H_
#define DUET_TESTS_WORKER_MODELS_GOLDEN_REFERENCE_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/model_config.h"
#include "common/safetensors.h"
#include "tests/test_paths.h"
#include "worker/models/registry.h"

namespace duet::worker {

inline std::string FixtureDir(const std::string& name) {
  return duet::testing::SourceDir() + "/tests/golden/fixtures/" + name;
}

// The reference tensors of one fixture.
struct Reference {
  std::vector<int32_t> prompt_ids, prompt2_ids, greedy_ids, prompt2_greedy_ids, chunk_lens;
  std::vector<float> prefill_logits, chunked_prefill_logits, decode_logits;
  std::vector<float> prompt2_prefill_logits, prompt2_decode_logits;
};

template <typename T>
inline std::vector<T> ReadTensor(const SafetensorsFile& file, const std::string& name) {
  absl::StatusOr<TensorView> tensor = file.Get(name);
  EXPECT_TRUE(tensor.ok()) << tensor.status();
  if (!tensor.ok()) return {};
  std::vector<T> values(tensor->num_bytes / sizeof(T));
  std::memcpy(values.data(), tensor->data, tensor->num_bytes);
  return values;
}

inline Reference LoadReference(const std::string& fixture_dir) {
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      SafetensorsFile::Open(fixture_dir + "/reference.safetensors");
  EXPECT_TRUE(file.ok()) << file.status();
  Reference ref;
  if (!file.ok()) return ref;
  const SafetensorsFile& f = **file;
  ref.prompt_ids = ReadTensor<int32_t>(f, "prompt_ids");
  ref.prompt2_ids = ReadTensor<int32_t>(f, "prompt2_ids");
  ref.greedy_ids = ReadTensor<int32_t>(f, "greedy_ids");
  ref.prompt2_greedy_ids = ReadTensor<int32_t>(f, "prompt2_greedy_ids");
  ref.chunk_lens = ReadTensor<int32_t>(f, "chunk_lens");
  ref.prefill_logits = ReadTensor<float>(f, "prefill_logits");
  ref.chunked_prefill_logits = ReadTensor<float>(f, "chunked_prefill_logits");
  ref.decode_logits = ReadTensor<float>(f, "decode_logits");
  ref.prompt2_prefill_logits = ReadTensor<float>(f, "prompt2_prefill_logits");
  ref.prompt2_decode_logits = ReadTensor<float>(f, "prompt2_decode_logits");
  return ref;
}

// Largest |a - b|; the sizes must agree.
inline float MaxAbsDiff(const float* a, const float* b, size_t count) {
  float worst = 0.0f;
  for (size_t i = 0; i < count; ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

// The whole model of fixture `name` (its checkpoint, unsharded).
inline absl::StatusOr<std::unique_ptr<DecoderModel>> LoadFixtureModel(const std::string& name) {
  const std::string dir = FixtureDir(name);
  absl::StatusOr<ModelConfig> config = LoadModelConfig(dir);
  if (!config.ok()) return config.status();
  absl::StatusOr<std::unique_ptr<WeightSource>> weights = OpenCheckpointWeights(dir);
  if (!weights.ok()) return weights.status();
  return LoadModel(*config, *std::move(weights));
}

}  // namespace duet::worker

#endif  // DUET_TESTS_WORKER_MODELS_GOLDEN_REFERENCE_H_
