// Quantized Linear weights of a safetensors checkpoint (AWQ, compressed-tensors
// INT4 and FP8, quant_method fp8; common/weight_quantization.h), read as stored
// into kernels::Weight's group-quantized types, including a rank's block of
// them: tensor-parallel splits must fall on whole groups, packed words and
// scale blocks, and an error names the tensor when one does not.
#ifndef DUET_WORKER_MODELS_QUANTIZED_CHECKPOINT_H_
#define DUET_WORKER_MODELS_QUANTIZED_CHECKPOINT_H_

#include <cstdint>
#include <deque>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/safetensors_checkpoint.h"
#include "common/weight_quantization.h"
#include "kernels/ops.h"
#include "worker/models/model_shard.h"
#include "worker/models/weight_buffer.h"

namespace duet::worker {

// The format `module`'s weight is stored in, from the tensors present:
// <module>.qweight (AWQ), .weight_packed (INT4), an F8_E4M3 .weight (FP8), or
// plain.
WeightFormat StoredWeightFormat(const SafetensorsCheckpoint& checkpoint, std::string_view module);

// The [row_range, col_range] block of `module`'s [rows, cols] weight, stored in
// `format` (not kPlain) as `scheme` describes. Views into the mapped file where
// the block is contiguous, else copies appended to *buffers; *bytes_loaded grows
// by the bytes of the block. InvalidArgument naming the tensor for a missing
// tensor, a wrong dtype or shape, a split that is not whole groups/blocks, or
// an FP8 NaN.
absl::StatusOr<kernels::Weight> LoadQuantizedBlock(const SafetensorsCheckpoint& checkpoint,
                                                   const WeightQuantization& scheme,
                                                   std::string_view module, int64_t rows, int64_t cols,
                                                   IndexRange row_range, IndexRange col_range,
                                                   std::deque<HugePageBuffer>* buffers,
                                                   uint64_t* bytes_loaded);

}  // namespace duet::worker

#endif  // DUET_WORKER_MODELS_QUANTIZED_CHECKPOINT_H_
