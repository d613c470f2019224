// The prompts `duet bench serve` sends, as vLLM's `bench serve` builds them:
//   random   token ids drawn for each prompt (lengths uniform within
//            ±range_ratio of the asked length), after an optional prefix of
//            prefix_len ids shared by every prompt, decoded to text with the
//            model's tokenizer; special tokens are never drawn.
//   sharegpt a ShareGPT-format JSON file (a list of {"conversations": [{"from",
//            "value"}, ...]}): the first turn is the prompt, the second's token
//            count the output length (unless fixed); entries with fewer than
//            4 prompt or output tokens, a prompt over 1024 tokens or a total
//            over 2048 are skipped; shuffled with the seed.
#ifndef DUET_TOOLS_BENCH_SERVE_BENCH_DATASET_H_
#define DUET_TOOLS_BENCH_SERVE_BENCH_DATASET_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "router/tokenizer/tokenizer.h"

namespace duet::bench {

struct BenchPrompt {
  std::string text;
  int64_t prompt_tokens = 0;  // by the tokenizer, without special tokens
  int64_t output_tokens = 0;  // max_tokens to ask for
};

struct RandomDatasetOptions {
  int64_t num_prompts = 1000;
  int64_t input_len = 1024;
  int64_t output_len = 128;
  double range_ratio = 0.0;  // in [0, 1)
  int64_t prefix_len = 0;
  uint64_t seed = 0;
};

absl::StatusOr<std::vector<BenchPrompt>> RandomDataset(const tokenizer::Tokenizer& tokenizer,
                                                       const RandomDatasetOptions& options);

absl::StatusOr<std::vector<BenchPrompt>> ShareGptDataset(const tokenizer::Tokenizer& tokenizer,
                                                         const std::string& path, int64_t num_prompts,
                                                         std::optional<int64_t> output_len, uint64_t seed);

}  // namespace duet::bench

#endif  // DUET_TOOLS_BENCH_SERVE_BENCH_DATASET_H_
