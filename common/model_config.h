// The architecture of a Hugging Face model directory, from its config.json
// and (optional) generation_config.json.
#ifndef DUET_COMMON_MODEL_CONFIG_H_
#define DUET_COMMON_MODEL_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/dtype.h"

namespace duet {

// The architecture families duet implements; config.json's
// architectures[0] picks one.
enum class ModelFamily {
  kLlama,     // LlamaForCausalLM
  kQwen2,     // Qwen2ForCausalLM
  kQwen3,     // Qwen3ForCausalLM (per-head q/k RMSNorm)
  kQwen3Moe,  // Qwen3MoeForCausalLM
};

std::string_view ModelFamilyName(ModelFamily family);  // the HF architecture string

// rope_scaling with rope_type "llama3" (Llama 3.1+): frequencies below
// low_freq_factor are divided by `factor`, those above high_freq_factor are
// kept, and the band between is interpolated.
struct Llama3RopeScaling {
  double factor;
  double low_freq_factor;
  double high_freq_factor;  // > low_freq_factor
  int64_t original_max_position_embeddings;
};

// config.json's "quantization_config". The raw text is kept because quant
// methods carry fields duet does not model; the common ones are parsed.
struct QuantizationConfig {
  std::string raw_json;                // the object as it appears, re-serialised compactly
  std::string quant_method;            // "awq", "fp8", "gptq", ...
  std::optional<int64_t> bits;         // AWQ/GPTQ: 4
  std::optional<int64_t> group_size;   // AWQ/GPTQ: 128
  std::optional<bool> zero_point;      // AWQ: true
  std::optional<std::string> version;  // AWQ packing: "gemm" / "gemv"
  std::optional<std::string> fmt;      // FP8: "e4m3"
  std::optional<std::string> activation_scheme;  // FP8: "dynamic" / "static"
  std::vector<int64_t> weight_block_size;        // FP8 block scales: [rows, cols]; empty if none
};

// Sampling defaults a model ships with (generation_config.json). Absent
// fields stay nullopt; callers fall back to their own defaults.
struct GenerationDefaults {
  std::optional<bool> do_sample;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int64_t> top_k;
  std::optional<double> repetition_penalty;
};

// Validated model hyper-parameters. Invariants (checked by the parsers):
// every size > 0; num_attention_heads % num_key_value_heads == 0; head_dim is
// the explicit value or hidden_size / num_attention_heads (which then divides
// evenly); for kQwen3Moe 0 < num_experts_per_tok <= num_experts and every
// mlp_only_layers entry is a layer index.
struct ModelConfig {
  ModelFamily family;
  std::string architecture;  // architectures[0], e.g. "Qwen3MoeForCausalLM"
  std::string model_type;    // "llama", "qwen2", ... (informational; may be empty)

  int64_t vocab_size;
  int64_t hidden_size;
  int64_t intermediate_size;  // dense MLP width (MoE: of mlp_only_layers)
  int64_t num_hidden_layers;
  int64_t num_attention_heads;
  int64_t num_key_value_heads;  // defaults to num_attention_heads
  int64_t head_dim;
  int64_t max_position_embeddings;
  double rms_norm_eps;
  double rope_theta;                              // default 10000
  std::optional<Llama3RopeScaling> rope_scaling;  // nullopt: plain RoPE
  // GGUF's rope_freqs.weight (Llama 3.1+ files carry their frequency scaling
  // so): inv_freq[i] is divided by rope_freq_factors[i]. [head_dim / 2], or
  // empty.
  std::vector<float> rope_freq_factors;

  // Biases. Qwen2 always has q/k/v biases and none on o_proj, whatever the
  // file says; Llama and Qwen3 follow "attention_bias" (default false) for
  // all four projections.
  bool qkv_bias;
  bool o_proj_bias;
  bool mlp_bias;             // Llama "mlp_bias" (default false); false for Qwen
  bool qk_norm;              // per-head RMSNorm on q and k before RoPE: Qwen3 families
  bool tie_word_embeddings;  // default false for all four families

  std::optional<std::string> torch_dtype;  // "bfloat16", ... ("dtype" in newer files)
  std::optional<DType> weights_dtype;      // torch_dtype mapped, when it maps

  // Mixture of experts (kQwen3Moe only; zero / empty otherwise).
  int64_t num_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t moe_intermediate_size = 0;
  bool norm_topk_prob = false;  // renormalise the top-k router weights
  int64_t decoder_sparse_step = 1;
  std::vector<int64_t> mlp_only_layers;  // layers that keep a dense MLP

  // Sliding-window attention is parsed for the record; use_sliding_window
  // true is rejected, so every layer attends to the full context.
  std::optional<int64_t> sliding_window;
  std::optional<int64_t> max_window_layers;

  std::optional<QuantizationConfig> quantization;

  // Token ids. generation_config.json's bos_token_id / eos_token_id, when
  // present, replace config.json's (that is what transformers' generate()
  // uses; e.g. DeepSeek-R1-Distill-Qwen's config.json has a stale bos id).
  // eos_token_ids holds one id or a list; empty when neither file names one.
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;
  std::optional<int64_t> pad_token_id;

  GenerationDefaults generation;

  // HF Qwen3Moe's rule for whether `layer` uses the sparse MoE block: not in
  // mlp_only_layers, num_experts > 0 and (layer + 1) % decoder_sparse_step == 0.
  // Always false for dense families.
  bool IsMoeLayer(int64_t layer) const;

  int64_t q_size() const { return num_attention_heads * head_dim; }
  int64_t kv_size() const { return num_key_value_heads * head_dim; }
};

// Parses config.json text (and generation_config.json text, when given).
// The names are used only in error messages. Errors name the file and field:
//   InvalidArgument: not JSON / not an object, a missing required field
//     (vocab_size, hidden_size, intermediate_size, num_hidden_layers,
//     num_attention_heads, max_position_embeddings, rms_norm_eps, and for MoE
//     num_experts, num_experts_per_tok, moe_intermediate_size — HF has
//     defaults for these, but a config without them is more likely broken
//     than meant to use them), a field of the wrong JSON type, a size <= 0,
//     inconsistent sizes.
//   Unimplemented: an architecture outside ModelFamily, a rope_scaling type
//     other than llama3 ("default" counts as none), use_sliding_window true.
absl::StatusOr<ModelConfig> ParseModelConfig(
    std::string_view config_json, std::string_view config_name,
    std::optional<std::string_view> generation_config_json = std::nullopt,
    std::string_view generation_config_name = "generation_config.json");

// Whether `path` can name a model: a directory, or a file that starts with
// GGUF's magic. NotFound when nothing is there, InvalidArgument for any other
// file, each naming the path (so "x.gguf/config.json" is never the message).
absl::Status CheckModelPath(const std::string& path);

// Reads <model_dir>/config.json and, when it exists,
// <model_dir>/generation_config.json. NotFound when config.json is missing.
// A path naming a GGUF file is read with ModelConfigFromGguf
// (gguf_model_config.h) instead. CheckModelPath's errors come first.
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir);

}  // namespace duet

#endif  // DUET_COMMON_MODEL_CONFIG_H_
