// The model description of a GGUF file (llama.cpp's single-file format), in
// the same ModelConfig a Hugging Face config.json gives, so everything after
// loading is the same for both.
#ifndef DUET_COMMON_GGUF_MODEL_CONFIG_H_
#define DUET_COMMON_GGUF_MODEL_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "common/gguf.h"
#include "common/model_config.h"

namespace duet {

// Whether `path` is a regular file that starts with the GGUF magic.
bool IsGgufFile(const std::string& path);

// general.architecture picks the family: "llama", "qwen2", "qwen3",
// "qwen3moe". The hyper-parameters come from "<arch>.block_count",
// ".embedding_length", ".feed_forward_length", ".context_length",
// ".attention.head_count", ".attention.head_count_kv" (default: head_count),
// ".attention.key_length" (head_dim; default embedding_length / head_count),
// ".attention.layer_norm_rms_epsilon", ".rope.freq_base" (default 10000),
// ".vocab_size" (default: the number of tokens) and, for qwen3moe,
// ".expert_count", ".expert_used_count", ".expert_feed_forward_length"
// (top-k weights renormalised, as Qwen3-MoE configs set). Biases and tied
// embeddings follow which tensors exist (no output.weight: tied); a
// rope_freqs.weight tensor gives Llama 3's per-frequency divisors. Token ids
// from tokenizer.ggml.{bos,eos,eot,eom,padding}_token_id.
//
// Errors name the file and the key: InvalidArgument for a missing or
// ill-typed key or inconsistent sizes; Unimplemented for another
// architecture, RoPE scaling other than none, or partial rotary dimensions.
absl::StatusOr<ModelConfig> ModelConfigFromGguf(const GgufFile& file);

}  // namespace duet

#endif  // DUET_COMMON_GGUF_MODEL_CONFIG_H_
