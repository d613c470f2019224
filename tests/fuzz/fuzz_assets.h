// The model assets the request fuzz targets check against.
#ifndef DUET_TESTS_FUZZ_FUZZ_ASSETS_H_
#define DUET_TESTS_FUZZ_FUZZ_ASSETS_H_

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/status/statusor.h"
#include "router/api/model_assets.h"
#include "tests/router/api/api_test_util.h"

namespace duet::fuzz {

// The llama fixture with the Llama 3.1 tokenizer and chat template, loaded
// once: every input is checked against the same model.
inline const api::ModelAssets& Assets() {
  static const api::ModelAssets* const assets = [] {
    absl::StatusOr<api::ModelAssets> loaded =
        api::LoadModelAssets(api::testing::FixtureModelDir("llama"), api::testing::TokenizerDir("llama3_1"));
    if (!loaded.ok()) {
      std::fprintf(stderr, "cannot load the fuzz model assets: %s\n", loaded.status().ToString().c_str());
      std::abort();
    }
    return new api::ModelAssets(*std::move(loaded));
  }();
  return *assets;
}

// The tokenizer's vocabulary (larger than the fixture's), so that tokenized
// prompts reach the checks past the vocabulary one.
inline int32_t VocabSize() {
  return std::max(static_cast<int32_t>(Assets().config.vocab_size), Assets().tokenizer->vocab_size());
}

}  // namespace duet::fuzz

#endif  // DUET_TESTS_FUZZ_FUZZ_ASSETS_H_
