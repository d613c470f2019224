#include "worker/models/quantized_checkpoint.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "common/str_cat.h"
#include "kernels/group_quant.h"

namespace duet::worker {
namespace {

using kernels::Weight;
using kernels::WeightType;

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

std::string ShapeString(std::span<const int64_t> shape) {
  return StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// Reads tensors of one module and checks them, every error naming the tensor.
class ModuleTensors {
 public:
  ModuleTensors(const SafetensorsCheckpoint& checkpoint, std::string_view module,
                std::deque<HugePageBuffer>* buffers)
      : checkpoint_(checkpoint), module_(module), buffers_(buffers) {}

  std::string Name(std::string_view suffix) const { return StrCat(module_, ".", suffix); }
  bool Has(std::string_view suffix) const { return checkpoint_.Find(Name(suffix)).has_value(); }

  absl::Status Error(std::string_view suffix, std::string_view problem) const {
    return absl::InvalidArgumentError(
        StrCat(checkpoint_.model_dir(), ": tensor ", Name(suffix), ": ", problem));
  }

  // The tensor `suffix` with dtype among `dtypes` and exactly `shape`.
  absl::StatusOr<TensorView> Get(std::string_view suffix, std::initializer_list<DType> dtypes,
                                 std::vector<int64_t> shape) const {
    std::optional<TensorView> tensor = checkpoint_.Find(Name(suffix));
    if (!tensor.has_value()) return Error(suffix, "missing");
    if (std::find(dtypes.begin(), dtypes.end(), tensor->dtype) == dtypes.end()) {
      std::vector<std::string> names;
      for (DType dtype : dtypes) names.emplace_back(DTypeName(dtype));
      return Error(suffix, StrCat("dtype ", DTypeName(tensor->dtype), ", expected ", absl::StrJoin(names, " or ")));
    }
    if (!std::equal(tensor->shape.begin(), tensor->shape.end(), shape.begin(), shape.end())) {
      return Error(suffix, StrCat("shape ", ShapeString(tensor->shape), ", expected ", ShapeString(shape),
                                  " for a [", rows_, ", ", cols_, "] weight"));
    }
    return *tensor;
  }

  void SetShape(int64_t rows, int64_t cols) {
    rows_ = rows;
    cols_ = cols;
  }

  // Rows `rows` and bytes [byte_begin, byte_begin + byte_count) of each row of
  // a row-major tensor with `row_bytes` per row: a view when that is whole
  // rows, else a copy.
  const void* Slice(const TensorView& tensor, int64_t row_bytes, IndexRange rows, int64_t byte_begin,
                    int64_t byte_count, uint64_t* bytes_loaded) {
    *bytes_loaded += static_cast<uint64_t>(rows.count * byte_count);
    const std::byte* first = tensor.data + rows.begin * row_bytes;
    if (byte_begin == 0 && byte_count == row_bytes) return first;
    std::byte* copy = static_cast<std::byte*>(
        buffers_->emplace_back(static_cast<size_t>(std::max<int64_t>(1, rows.count * byte_count))).data());
    for (int64_t r = 0; r < rows.count; ++r) {
      std::memcpy(copy + r * byte_count, first + r * row_bytes + byte_begin, static_cast<size_t>(byte_count));
    }
    return copy;
  }

 private:
  const SafetensorsCheckpoint& checkpoint_;
  std::string module_;
  std::deque<HugePageBuffer>* buffers_;
  int64_t rows_ = 0, cols_ = 0;
};

WeightType ScaleType(DType dtype) {
  switch (dtype) {
    case DType::kF16: return WeightType::kF16;
    case DType::kBF16: return WeightType::kBF16;
    default: return WeightType::kF32;
  }
}

int64_t ScaleBytes(DType dtype) { return static_cast<int64_t>(DTypeSizeBytes(dtype)); }

// Whether [range) splits `size` on multiples of `unit` (the end may be the whole size).
bool Splits(IndexRange range, int64_t size, int64_t unit) {
  return range.begin % unit == 0 && (range.count % unit == 0 || range.end() == size);
}

std::string RangeString(IndexRange range) { return StrCat("[", range.begin, ", ", range.end(), ")"); }

absl::StatusOr<Weight> LoadAwq(ModuleTensors& t, const WeightQuantization& scheme, int64_t rows, int64_t cols,
                               IndexRange rr, IndexRange cr, uint64_t* bytes_loaded) {
  const int64_t g = scheme.group_size;
  if (rows % 8 != 0) return t.Error("qweight", StrCat(rows, " output features do not pack by 8"));
  if (cols % g != 0) return t.Error("qweight", StrCat(cols, " input features are not whole groups of ", g));
  if (rr.begin % 8 != 0 || rr.count % 8 != 0) {
    return t.Error("qweight", StrCat("output features ", RangeString(rr), " of a shard do not fall on its 8-output words"));
  }
  if (cr.begin % g != 0 || cr.count % g != 0) {
    return t.Error("qweight", StrCat("input features ", RangeString(cr), " of a shard are not whole groups of ", g));
  }
  DUET_ASSIGN_OR_RETURN(const TensorView qweight, t.Get("qweight", {DType::kI32}, {cols, rows / 8}));
  DUET_ASSIGN_OR_RETURN(const TensorView qzeros, t.Get("qzeros", {DType::kI32}, {cols / g, rows / 8}));
  DUET_ASSIGN_OR_RETURN(const TensorView scales, t.Get("scales", {DType::kF16}, {cols / g, rows}));
  Weight w{.type = WeightType::kAwqInt4, .rows = rr.count, .cols = cr.count};
  w.data = t.Slice(qweight, rows / 2, cr, rr.begin / 2, rr.count / 2, bytes_loaded);
  const IndexRange groups{cr.begin / g, cr.count / g};
  w.zeros = t.Slice(qzeros, rows / 2, groups, rr.begin / 2, rr.count / 2, bytes_loaded);
  w.scales = t.Slice(scales, rows * 2, groups, rr.begin * 2, rr.count * 2, bytes_loaded);
  w.scale_type = WeightType::kF16;
  w.group_size = g;
  return w;
}

absl::StatusOr<Weight> LoadInt4(ModuleTensors& t, const WeightQuantization& scheme, int64_t rows, int64_t cols,
                                IndexRange rr, IndexRange cr, uint64_t* bytes_loaded) {
  const bool per_row = scheme.group_size == 0;
  const int64_t g = per_row ? cols : scheme.group_size;
  if (cols % 8 != 0) return t.Error("weight_packed", StrCat(cols, " input features do not pack by 8"));
  if (cols % g != 0) return t.Error("weight_packed", StrCat(cols, " input features are not whole groups of ", g));
  if (per_row ? (cr.begin % 8 != 0 || cr.count % 8 != 0) : (cr.begin % g != 0 || cr.count % g != 0)) {
    return t.Error("weight_packed", StrCat("input features ", RangeString(cr), " of a shard are not whole ",
                                           per_row ? "words of 8" : StrCat("groups of ", g)));
  }
  const int64_t groups = cols / g;
  DUET_ASSIGN_OR_RETURN(const TensorView packed, t.Get("weight_packed", {DType::kI32}, {rows, cols / 8}));
  DUET_ASSIGN_OR_RETURN(const TensorView scale,
                        t.Get("weight_scale", {DType::kF16, DType::kBF16, DType::kF32}, {rows, groups}));
  if (t.Has("weight_shape")) {
    // The unpacked [rows, cols], as compressed-tensors records it.
    DUET_ASSIGN_OR_RETURN(const TensorView stored, t.Get("weight_shape", {DType::kI32, DType::kI64}, {2}));
    int64_t dims[2];
    for (int i = 0; i < 2; ++i) {
      if (stored.dtype == DType::kI32) {
        int32_t value;
        std::memcpy(&value, stored.data + 4 * i, sizeof(value));
        dims[i] = value;
      } else {
        std::memcpy(&dims[i], stored.data + 8 * i, sizeof(dims[i]));
      }
    }
    if (dims[0] != rows || dims[1] != cols) {
      return t.Error("weight_shape", StrCat("holds [", dims[0], ", ", dims[1], "], expected [", rows, ", ", cols, "]"));
    }
  }
  const int64_t shard_groups_begin = per_row ? 0 : cr.begin / g;
  const int64_t shard_groups = per_row ? 1 : cr.count / g;
  Weight w{.type = WeightType::kInt4, .rows = rr.count, .cols = cr.count};
  w.data = t.Slice(packed, cols / 2, rr, cr.begin / 2, cr.count / 2, bytes_loaded);
  const int64_t sb = ScaleBytes(scale.dtype);
  w.scales = t.Slice(scale, groups * sb, rr, shard_groups_begin * sb, shard_groups * sb, bytes_loaded);
  w.scale_type = ScaleType(scale.dtype);
  if (scheme.zero_points) {
    if (!Splits(rr, rows, 8)) {
      return t.Error("weight_zero_point", StrCat("output features ", RangeString(rr), " of a shard do not fall on its 8-row words"));
    }
    DUET_ASSIGN_OR_RETURN(const TensorView zeros, t.Get("weight_zero_point", {DType::kI32}, {CeilDiv(rows, 8), groups}));
    w.zeros = t.Slice(zeros, groups * 4, {rr.begin / 8, CeilDiv(rr.count, 8)}, shard_groups_begin * 4,
                      shard_groups * 4, bytes_loaded);
  }
  w.group_size = per_row ? cr.count : g;
  return w;
}

absl::StatusOr<Weight> LoadFp8(ModuleTensors& t, const WeightQuantization& scheme, int64_t rows, int64_t cols,
                               IndexRange rr, IndexRange cr, uint64_t* bytes_loaded) {
  DUET_ASSIGN_OR_RETURN(const TensorView weight, t.Get("weight", {DType::kF8E4M3}, {rows, cols}));
  const std::string& scale_name = scheme.fp8_scale_name;
  Weight w{.type = WeightType::kF8E4M3, .rows = rr.count, .cols = cr.count};
  const std::initializer_list<DType> scale_dtypes = {DType::kF32, DType::kBF16, DType::kF16};
  switch (scheme.fp8_scales) {
    case Fp8Scales::kTensor: {
      absl::StatusOr<TensorView> scale = t.Get(scale_name, scale_dtypes, {});
      if (!scale.ok()) scale = t.Get(scale_name, scale_dtypes, {1});
      if (!scale.ok()) return scale.status();
      w.scales = scale->data;
      w.scale_type = ScaleType(scale->dtype);
      *bytes_loaded += scale->num_bytes;
      w.scale_rows = rr.count;
      w.group_size = cr.count;
      break;
    }
    case Fp8Scales::kChannel: {
      absl::StatusOr<TensorView> scale = t.Get(scale_name, scale_dtypes, {rows, 1});
      if (!scale.ok()) scale = t.Get(scale_name, scale_dtypes, {rows});
      if (!scale.ok()) return scale.status();
      const int64_t sb = ScaleBytes(scale->dtype);
      w.scales = t.Slice(*scale, sb, rr, 0, sb, bytes_loaded);
      w.scale_type = ScaleType(scale->dtype);
      w.scale_rows = 1;
      w.group_size = cr.count;
      break;
    }
    case Fp8Scales::kBlock: {
      const int64_t br = scheme.block_rows, bc = scheme.block_cols;
      if (!Splits(rr, rows, br)) {
        return t.Error(scale_name, StrCat("output features ", RangeString(rr), " of a shard are not whole ", br, "-row scale blocks"));
      }
      if (!Splits(cr, cols, bc)) {
        return t.Error(scale_name, StrCat("input features ", RangeString(cr), " of a shard are not whole ", bc, "-column scale blocks"));
      }
      const int64_t scale_cols = CeilDiv(cols, bc);
      DUET_ASSIGN_OR_RETURN(const TensorView scale, t.Get(scale_name, scale_dtypes, {CeilDiv(rows, br), scale_cols}));
      const int64_t sb = ScaleBytes(scale.dtype);
      w.scales = t.Slice(scale, scale_cols * sb, {rr.begin / br, CeilDiv(rr.count, br)}, (cr.begin / bc) * sb,
                         CeilDiv(cr.count, bc) * sb, bytes_loaded);
      w.scale_type = ScaleType(scale.dtype);
      w.scale_rows = br;
      w.group_size = bc;
      break;
    }
  }
  w.data = t.Slice(weight, cols, rr, cr.begin, cr.count, bytes_loaded);
  // The kernels take e4m3's NaN patterns (0x7f, 0xff) for finite values.
  const uint8_t* bytes = static_cast<const uint8_t*>(w.data);
  for (int64_t i = 0; i < w.rows * w.cols; ++i) {
    if ((bytes[i] & 0x7f) == 0x7f) {
      return t.Error("weight", StrCat("holds a NaN at [", rr.begin + i / w.cols, ", ", cr.begin + i % w.cols, "]"));
    }
  }
  return w;
}

}  // namespace

WeightFormat StoredWeightFormat(const SafetensorsCheckpoint& checkpoint, std::string_view module) {
  if (checkpoint.Find(StrCat(module, ".qweight")).has_value()) return WeightFormat::kAwq;
  if (checkpoint.Find(StrCat(module, ".weight_packed")).has_value()) return WeightFormat::kInt4;
  const std::optional<TensorView> weight = checkpoint.Find(StrCat(module, ".weight"));
  if (weight.has_value() && weight->dtype == DType::kF8E4M3) return WeightFormat::kFp8;
  return WeightFormat::kPlain;
}

absl::StatusOr<Weight> LoadQuantizedBlock(const SafetensorsCheckpoint& checkpoint,
                                          const WeightQuantization& scheme, std::string_view module,
                                          int64_t rows, int64_t cols, IndexRange row_range,
                                          IndexRange col_range, std::deque<HugePageBuffer>* buffers,
                                          uint64_t* bytes_loaded) {
  ModuleTensors tensors(checkpoint, module, buffers);
  tensors.SetShape(rows, cols);
  const WeightFormat stored = StoredWeightFormat(checkpoint, module);
  if (stored != scheme.format) {
    return absl::InvalidArgumentError(StrCat(
        checkpoint.model_dir(), ": module ", module, " is stored as ", WeightFormatName(stored),
        " but config.json's quantization_config (quant_method \"", scheme.method, "\") declares ",
        WeightFormatName(scheme.format)));
  }
  absl::StatusOr<Weight> weight;
  switch (scheme.format) {
    case WeightFormat::kAwq:
      weight = LoadAwq(tensors, scheme, rows, cols, row_range, col_range, bytes_loaded);
      break;
    case WeightFormat::kInt4:
      weight = LoadInt4(tensors, scheme, rows, cols, row_range, col_range, bytes_loaded);
      break;
    case WeightFormat::kFp8:
      weight = LoadFp8(tensors, scheme, rows, cols, row_range, col_range, bytes_loaded);
      break;
    case WeightFormat::kPlain:
      return absl::InternalError("LoadQuantizedBlock takes a quantized format");
  }
  if (!weight.ok()) return weight.status();
  if (const std::string problem = kernels::GroupQuantProblem(*weight); !problem.empty()) {
    return absl::InvalidArgumentError(StrCat(checkpoint.model_dir(), ": module ", module, ": ", problem));
  }
  return weight;
}

}  // namespace duet::worker
