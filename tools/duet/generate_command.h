// `duet generate`: loads a model in this process and generates from a prompt
// (text, tokenized with the model directory's tokenizer.json, or token ids),
// printing the tokens, their text and prefill/decode throughput.
#ifndef DUET_TOOLS_DUET_GENERATE_COMMAND_H_
#define DUET_TOOLS_DUET_GENERATE_COMMAND_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace duet::cli {

struct GenerateOptions {
  std::string model_dir;
  std::string load_format = "safetensors";  // or "dummy"
  std::vector<int32_t> prompt_ids;  // the prompt as ids, or
  std::string prompt_text;          // as text (exactly one of the two is set)
  int32_t max_tokens = 32;
  float temperature = 0.0f;  // 0: greedy
  int32_t top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  uint64_t seed = 0;
  std::string backend = "cpu";  // or "reference"
  int32_t threads = 0;          // 0: every core
  std::string quant_matmul = "int8";  // GGUF weights on the CPU backend: int8 or fp32
  int32_t prefill_chunk = 0;    // 0: the whole prompt in one pass
  std::string kv_cache_dtype = "auto";  // auto (fp32), fp32 or bf16
  bool ignore_eos = false;
};

// Runs the command, writing results to stdout. Errors (bad model directory,
// bad options) come back as a Status for the caller to print.
absl::Status RunGenerate(const GenerateOptions& options);

}  // namespace duet::cli

#endif  // DUET_TOOLS_DUET_GENERATE_COMMAND_H_
