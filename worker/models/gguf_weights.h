// Weights from a GGUF file, used as stored: tensors are addressed under the
// Hugging Face names the model code asks for (model.layers.N.self_attn.q_proj
// .weight, ...) and found under llama.cpp's (blk.N.attn_q.weight, ...); the
// experts of a Qwen3-MoE layer are slices of its merged ffn_*_exps tensors.
//
// Row blocks of a matrix are views into the mapping, except where llama.cpp's
// converter permuted rows: for the "llama" architecture it reorders the rows
// of every q and k head from rotate-half to interleaved pairs (llama.cpp
// rotates adjacent dims); duet rotates halves, as transformers does, so those
// rows (and q/k biases) are put back in a copy. Column blocks (the row-parallel
// shards of o_proj and down_proj) are copied and must cover whole quant
// blocks, else InvalidArgument naming the tensor.
#ifndef DUET_WORKER_MODELS_GGUF_WEIGHTS_H_
#define DUET_WORKER_MODELS_GGUF_WEIGHTS_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/gguf.h"
#include "kernels/ops.h"
#include "worker/models/weight_source.h"

namespace duet::worker {

// The GGUF tensor holding an HF-named weight: its name and, for an expert's
// matrix, the expert's index in the merged tensor. nullopt for a name with no
// GGUF counterpart.
struct GgufTensorRef {
  std::string name;
  std::optional<int64_t> expert;
};
std::optional<GgufTensorRef> GgufTensorFor(std::string_view hf_name);

// The kernels' type for a ggml tensor type, or InvalidArgument naming
// `tensor_name` and the type for one duet does not compute with.
absl::StatusOr<kernels::WeightType> WeightTypeOfGgml(uint32_t type_id, std::string_view tensor_name);

// The GGUF row holding row `hf_row` of a q or k projection that llama.cpp's
// converter permuted; `head_dim` even.
int64_t PermutedRow(int64_t hf_row, int64_t head_dim);

// Opens `path` (errors of GgufFile::Open and ModelConfigFromGguf).
absl::StatusOr<std::unique_ptr<WeightSource>> OpenGgufWeights(const std::string& path);

}  // namespace duet::worker

#endif  // DUET_WORKER_MODELS_GGUF_WEIGHTS_H_
