#include "tools/duet/generate_command.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>

#include "common/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/gguf.h"
#include "common/gguf_model_config.h"
#include "common/model_config.h"
#include "common/status_macros.h"
#include "kernels/ops.h"
#include "router/tokenizer/gguf_vocab.h"
#include "router/tokenizer/tokenizer.h"
#include "worker/generator.h"
#include "worker/models/registry.h"

namespace duet::cli {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

absl::StatusOr<std::unique_ptr<kernels::Backend>> MakeBackend(const GenerateOptions& options) {
  if (options.backend == "cpu") {
    kernels::QuantizedMatmul quantized;
    if (!kernels::ParseQuantizedMatmul(options.quant_matmul, &quantized)) {
      return absl::InvalidArgumentError(
          StrCat("--quant-matmul must be int8 or fp32, not '", options.quant_matmul, "'"));
    }
    return kernels::MakeCpuBackend(options.threads, quantized);
  }
  if (options.backend == "reference") return kernels::MakeReferenceBackend();
  return absl::InvalidArgumentError(
      StrCat("unknown backend '", options.backend, "' (cpu or reference)"));
}

absl::StatusOr<std::unique_ptr<worker::WeightSource>> OpenWeights(const GenerateOptions& options,
                                                                   const ModelConfig& config) {
  // "safetensors" also takes a GGUF file (OpenCheckpointWeights tells them apart).
  if (options.load_format == "safetensors") return worker::OpenCheckpointWeights(options.model_dir);
  if (options.load_format == "dummy") return worker::MakeDummyWeightsFor(config, /*seed=*/0);
  return absl::InvalidArgumentError(StrCat("unknown load format '", options.load_format,
                                                 "' (safetensors or dummy)"));
}

// The model directory's tokenizer.json, or the vocabulary of a GGUF file.
absl::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> OpenTokenizer(const std::string& model_path) {
  if (!IsGgufFile(model_path)) return tokenizer::Tokenizer::FromFile(model_path + "/tokenizer.json");
  DUET_ASSIGN_OR_RETURN(const std::unique_ptr<GgufFile> file, GgufFile::Open(model_path));
  return tokenizer::TokenizerFromGguf(*file);
}

}  // namespace

absl::Status RunGenerate(const GenerateOptions& input) {
  GenerateOptions options = input;
  if (options.model_dir.empty()) return absl::InvalidArgumentError("--model is required");
  DUET_RETURN_IF_ERROR(CheckModelPath(options.model_dir));
  if (options.prompt_ids.empty() == options.prompt_text.empty()) {
    return absl::InvalidArgumentError("give exactly one of --prompt and --prompt-ids");
  }
  std::unique_ptr<tokenizer::Tokenizer> text_tokenizer;
  if (!options.prompt_text.empty()) {
    DUET_ASSIGN_OR_RETURN(text_tokenizer, OpenTokenizer(options.model_dir));
    DUET_ASSIGN_OR_RETURN(options.prompt_ids,
                          text_tokenizer->Encode(options.prompt_text, /*add_special_tokens=*/true));
    if (options.prompt_ids.empty()) return absl::InvalidArgumentError("the prompt encodes to no tokens");
  }
  if (options.max_tokens < 0) return absl::InvalidArgumentError("--max-tokens must be >= 0");
  if (options.temperature < 0) return absl::InvalidArgumentError("--temperature must be >= 0");

  DUET_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(options.model_dir));
  DUET_ASSIGN_OR_RETURN(std::unique_ptr<kernels::Backend> backend, MakeBackend(options));
  DUET_ASSIGN_OR_RETURN(std::unique_ptr<worker::WeightSource> weights, OpenWeights(options, config));
  const Clock::time_point load_start = Clock::now();
  DUET_ASSIGN_OR_RETURN(std::unique_ptr<worker::DecoderModel> model,
                        worker::LoadModel(config, std::move(weights)));
  std::printf("model: %s, %lld layers, loaded in %.2f s (%s backend)\n", config.architecture.c_str(),
              static_cast<long long>(config.num_hidden_layers), SecondsSince(load_start),
              std::string(backend->name()).c_str());

  std::printf("prompt: %s\n", absl::StrJoin(options.prompt_ids, " ").c_str());
  const int64_t total_tokens = static_cast<int64_t>(options.prompt_ids.size()) + options.max_tokens;
  if (total_tokens > config.max_position_embeddings) {
    return absl::InvalidArgumentError(StrCat("prompt + max tokens (", total_tokens,
                                                   ") exceeds the context length ",
                                                   config.max_position_embeddings));
  }
  worker::GeneratorOptions generator_options;
  generator_options.num_blocks = static_cast<int32_t>((total_tokens + 15) / 16);
  if (options.kv_cache_dtype != "auto" &&
      !kernels::ParseKvDtype(options.kv_cache_dtype, &generator_options.kv_dtype)) {
    return absl::InvalidArgumentError(
        StrCat("--kv-cache-dtype must be auto, fp32 or bf16, not '", options.kv_cache_dtype, "'"));
  }
  DUET_ASSIGN_OR_RETURN(std::unique_ptr<worker::Generator> generator,
                        worker::Generator::Create(*model, *backend, generator_options));

  // Prefill, in chunks when asked.
  const Clock::time_point prefill_start = Clock::now();
  const size_t chunk = options.prefill_chunk > 0 ? options.prefill_chunk : options.prompt_ids.size();
  std::vector<float> logits;
  for (size_t begin = 0; begin < options.prompt_ids.size(); begin += chunk) {
    const size_t end = std::min(options.prompt_ids.size(), begin + chunk);
    std::vector<int32_t> piece(options.prompt_ids.begin() + begin, options.prompt_ids.begin() + end);
    DUET_ASSIGN_OR_RETURN(logits, generator->Append(piece, /*all_logits=*/false));
  }
  const double prefill_seconds = SecondsSince(prefill_start);

  // Decode.
  std::vector<int32_t> generated;
  const Clock::time_point decode_start = Clock::now();
  for (int32_t step = 0; step < options.max_tokens; ++step) {
    kernels::SamplingParams params{.temperature = options.temperature,
                                   .top_k = options.top_k,
                                   .top_p = options.top_p,
                                   .min_p = options.min_p,
                                   .seed = options.seed,
                                   .offset = static_cast<uint64_t>(step)};
    int32_t token = 0;
    backend->Sample(logits.data(), 1, config.vocab_size, &params, &token);
    generated.push_back(token);
    const bool is_eos = std::find(config.eos_token_ids.begin(), config.eos_token_ids.end(), token) !=
                        config.eos_token_ids.end();
    if ((is_eos && !options.ignore_eos) || step + 1 == options.max_tokens) break;
    DUET_ASSIGN_OR_RETURN(logits, generator->Append({token}, /*all_logits=*/false));
  }
  const double decode_seconds = SecondsSince(decode_start);

  std::printf("tokens: %s\n", absl::StrJoin(generated, " ").c_str());
  if (text_tokenizer != nullptr) {
    DUET_ASSIGN_OR_RETURN(std::string text,
                          text_tokenizer->Decode(generated, /*skip_special_tokens=*/true));
    std::printf("text: %s\n", text.c_str());
  }
  std::printf("prefill: %zu tokens in %.3f s (%.1f tokens/s)\n", options.prompt_ids.size(),
              prefill_seconds, options.prompt_ids.size() / std::max(prefill_seconds, 1e-9));
  // The first token comes from the prefill's logits; each later one costs a
  // decode step.
  const size_t decode_steps = generated.empty() ? 0 : generated.size() - 1;
  std::printf("decode: %zu steps in %.3f s (%.1f tokens/s)\n", decode_steps, decode_seconds,
              decode_steps / std::max(decode_seconds, 1e-9));
  return absl::OkStatus();
}

}  // namespace duet::cli
