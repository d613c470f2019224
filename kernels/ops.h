// The backend ops the model code is written against. A Backend computes on
// memory it can address (host memory for the CPU backends, device memory for
// CUDA); callers own every buffer and pass raw pointers plus shapes. All
// activations are fp32; weights are used in the type they are stored in,
// block-quantized types included (dequantised inside the op, never ahead, or
// on the CPU by default multiplied as integers against activations rounded to
// 8 bits inside the op: QuantizedMatmul).
//
// Thread-safety: a Backend may be called from one thread at a time; it may use
// its own worker threads inside a call. Every op is batch-invariant: the result
// for one row is bit-identical whatever other rows are in the same call and
// however many threads the backend uses (for Matmul: one fixed reduction order
// over k per output element, see kernels/cpu/matmul_kernels.h).
#ifndef DUET_KERNELS_OPS_H_
#define DUET_KERNELS_OPS_H_

#include <cstdint>
#include <memory>
#include <string_view>

namespace duet::kernels {

// How a weight matrix is stored. The float types hold one element each; the
// block-quantized types are GGUF's (llama.cpp's ggml types of the same names):
// every row is a sequence of blocks of WeightTypeBlockElements(type) elements,
// each WeightTypeBlockBytes(type) bytes, laid out exactly as in a GGUF file
// (kernels/block_quant.h documents each layout). The group-quantized types are
// the Hugging Face checkpoint formats whose scales (and zero points) are
// tensors of their own, used exactly as stored (kernels/group_quant.h
// documents each layout): AWQ's and compressed-tensors' 4-bit integers and
// 8-bit floats.
enum class WeightType : uint8_t {
  kF32,
  kF16,
  kBF16,
  kQ8_0,  // 32 elements: fp16 scale, 32 int8
  kQ4_0,  // 32 elements: fp16 scale, 16 bytes of 4-bit values (offset 8)
  kQ4_1,  // 32 elements: fp16 scale and min, 16 bytes of 4-bit values
  kQ4_K,  // 256 elements: 8 sub-blocks of 32 with 6-bit scales and mins
  kQ5_K,  // 256 elements: as Q4_K with a fifth bit per value
  kQ6_K,  // 256 elements: 16 sub-blocks of 16 with int8 scales
  kAwqInt4,  // AutoAWQ "gemm": int32 [cols, rows / 8] in AWQ's nibble order, zero points
  kInt4,     // compressed-tensors pack-quantized: int32 [rows, cols / 8], offset 8
  kF8E4M3,   // float8_e4m3fn [rows, cols], scales per block of rows × cols
};

// The type's name as GGUF spells it ("F32", "Q4_K", ...).
std::string_view WeightTypeName(WeightType type);

// Whether `type` is stored in blocks of several elements (the GGUF types).
bool IsBlockQuantized(WeightType type);

// Whether `type` is one of the group-quantized checkpoint formats (kAwqInt4,
// kInt4, kF8E4M3), whose Weight carries scales. These have no row blocks:
// the functions below that speak of blocks or rows CHECK-fail for them, and
// kernels/group_quant.h gives their sizes and row access.
bool IsGroupQuantized(WeightType type);

// Elements per block: 1 for the float types, 32 or 256 for the quantized ones.
int64_t WeightTypeBlockElements(WeightType type);

// Bytes per block (for the float types: per element).
int64_t WeightTypeBlockBytes(WeightType type);

// Bytes of one row of `cols` elements. CHECK-fails unless cols is a multiple
// of WeightTypeBlockElements(type).
int64_t WeightRowBytes(WeightType type, int64_t cols);

// Size in bytes of one element of a float type (CHECK-fails for the
// block-quantized types, which have no per-element size).
int WeightTypeSize(WeightType type);

// A matrix as stored in a checkpoint, Hugging Face Linear layout: one row per
// output feature (kAwqInt4 stores it transposed, see group_quant.h).
struct Weight {
  const void* data = nullptr;  // [rows, WeightRowBytes(type, cols)] bytes, or as group_quant.h says
  WeightType type = WeightType::kF32;
  int64_t rows = 0;  // output features (or vocabulary entries for embeddings)
  int64_t cols = 0;  // input features (or hidden size for embeddings)

  // The group-quantized types only (null / unused otherwise), as stored.
  const void* scales = nullptr;
  WeightType scale_type = WeightType::kF32;  // kF16, kBF16 or kF32
  const void* zeros = nullptr;               // packed 4-bit zero points; null: none
  int64_t group_size = 0;  // input features (columns) per scale
  int64_t scale_rows = 1;  // output features (rows) per scale: 1 except kF8E4M3 blocks
};

// How the paged KV cache stores each K and V value.
enum class KvDtype : uint8_t {
  kFloat32,   // exact
  kBfloat16,  // half the bytes; rounded to nearest even as it is written
};

// Bytes of one cached value: 4 or 2.
int64_t KvDtypeBytes(KvDtype dtype);
std::string_view KvDtypeName(KvDtype dtype);  // "fp32" or "bf16"
// Accepts "fp32" / "float32" and "bf16" / "bfloat16".
bool ParseKvDtype(std::string_view name, KvDtype* dtype);

// Paged KV cache of one layer: K and V each [num_blocks, block_size,
// num_kv_heads, head_dim] values of `dtype`. Token t of a sequence lives in
// block block_table[t / block_size], slot t % block_size.
struct KvCacheLayout {
  int32_t num_blocks = 0;
  int32_t block_size = 16;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
  KvDtype dtype = KvDtype::kFloat32;
};

// The sequences of one attention call. Sequence s owns query rows
// [query_start[s], query_start[s + 1]); those queries are its tokens at
// positions context_len[s] - num_queries .. context_len[s] - 1, and their K/V
// are already written to the cache. Attention is causal: the query at position
// p sees cached positions 0..p. A decode step is the case num_queries == 1.
struct AttentionBatch {
  int32_t num_seqs = 0;
  const int32_t* query_start = nullptr;   // [num_seqs + 1]
  const int32_t* context_len = nullptr;   // [num_seqs]
  const int32_t* block_tables = nullptr;  // [num_seqs, max_blocks_per_seq]
  int32_t max_blocks_per_seq = 0;
};

// Per-row sampling controls, validated upstream (temperature >= 0,
// 0 <= top_p <= 1, 0 <= min_p <= 1). temperature == 0 means greedy (argmax).
struct SamplingParams {
  float temperature = 1.0f;
  int32_t top_k = 0;    // 0: off
  float top_p = 1.0f;   // 1: off
  float min_p = 0.0f;   // 0: off
  uint64_t seed = 0;    // with `offset`, fixes the random draw of a row
  uint64_t offset = 0;  // e.g. the index of the token being sampled
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string_view name() const = 0;

  // y = x · wᵀ, accumulated in fp32.  x: [m, w.cols], y: [m, w.rows].
  virtual void Matmul(const float* x, const Weight& w, float* y, int64_t m) = 0;

  // y = x / sqrt(mean(x²) + eps) * weight, per row.
  // x, y: [rows, dim]; weight: [dim]. y may alias x.
  virtual void RmsNorm(const float* x, const float* weight, float* y, int64_t rows, int64_t dim,
                       float eps) = 0;

  // Rotary embedding in place, rotate-half layout (dims i and i + rotary_dim/2
  // form a pair) on the first rotary_dim dims of every head, by the fp32 angle
  // float(position) * inv_freq[i] with fp32 cos/sin, as transformers does.
  // x: [num_tokens, num_heads, head_dim]; positions: [num_tokens];
  // inv_freq: [rotary_dim / 2] (llama3 scaling already applied, see rope.h).
  virtual void Rope(float* x, const int32_t* positions, int64_t num_tokens, int32_t num_heads,
                    int32_t head_dim, const float* inv_freq, int32_t rotary_dim) = 0;

  // out = a + b, elementwise. a, b, out: [count]; out may alias a or b.
  virtual void Add(const float* a, const float* b, float* out, int64_t count) = 0;

  // x[r, c] += bias[c] for every row. x: [rows, cols]; bias: [cols].
  virtual void AddBias(float* x, const float* bias, int64_t rows, int64_t cols) = 0;

  // out = silu(gate) * up, elementwise. gate, up, out: [count]; out may alias.
  virtual void SiluMul(const float* gate, const float* up, float* out, int64_t count) = 0;

  // out[i] = table[ids[i]] as fp32. ids: [num_ids]; out: [num_ids, table.cols].
  // Ids must be in [0, table.rows).
  virtual void Embedding(const int32_t* ids, int64_t num_ids, const Weight& table, float* out) = 0;

  // Softmax over each row, in place. x: [rows, cols].
  virtual void Softmax(float* x, int64_t rows, int64_t cols) = 0;

  // Writes K/V of new tokens into the paged cache, as layout.dtype (bf16:
  // each value rounded to nearest even, kernels' FloatToBf16).
  // k, v: [num_tokens, layout.num_kv_heads, layout.head_dim];
  // slots: [num_tokens], slot = block_id * block_size + offset in block.
  virtual void WriteKv(const float* k, const float* v, const int32_t* slots, int64_t num_tokens,
                       const KvCacheLayout& layout, void* k_cache, void* v_cache) = 0;

  // Causal paged attention with GQA (query head h uses KV head
  // h / (num_q_heads / num_kv_heads)), over a cache of layout.dtype (bf16
  // values widened to fp32 exactly, so the result is the fp32 cache's for
  // the rounded values).
  // q, out: [total queries, num_q_heads, layout.head_dim].
  virtual void PagedAttention(const float* q, const void* k_cache, const void* v_cache,
                              const KvCacheLayout& layout, const AttentionBatch& batch,
                              int32_t num_q_heads, float scale, float* out) = 0;

  // out[r] = index of the largest logit of row r (the lowest index on ties).
  // logits: [rows, vocab]; out: [rows].
  virtual void Argmax(const float* logits, int64_t rows, int64_t vocab, int32_t* out) = 0;

  // Samples one token per row after temperature, top-k, top-p and min-p
  // filtering, exactly as kernels/sampling.h specifies; params[r].temperature
  // == 0 takes the argmax. The random draw of a row depends only on (seed,
  // offset) (kernels/random.h), so every backend picks the same token for the
  // same logits. logits: [rows, vocab], no NaNs; params, out: [rows].
  virtual void Sample(const float* logits, int64_t rows, int64_t vocab,
                      const SamplingParams* params, int32_t* out) = 0;
};

// The plain, obviously-correct implementation every other backend is tested
// against. Single-threaded and slow.
std::unique_ptr<Backend> MakeReferenceBackend();

// How the CPU backend multiplies block-quantized (GGUF) weights.
enum class QuantizedMatmul : uint8_t {
  // Activations rounded to 8 bits per block and integer dot products, as
  // llama.cpp does (kernels/quant_dot.h): the fastest, within the 8-bit
  // rounding of the exact product.
  kInt8,
  // Weights dequantised to fp32 inside the kernel, fp32 products: bit for bit
  // the fp32 matmul of the dequantised matrix.
  kFloat,
};

// "int8" / "fp32", and back (false for any other name).
std::string_view QuantizedMatmulName(QuantizedMatmul mode);
bool ParseQuantizedMatmul(std::string_view name, QuantizedMatmul* mode);

// The optimised CPU backend: multithreaded, AVX2/FMA or AVX-512 chosen at run
// time. num_threads <= 0 uses every core.
std::unique_ptr<Backend> MakeCpuBackend(int num_threads = 0,
                                        QuantizedMatmul quantized = QuantizedMatmul::kInt8);

}  // namespace duet::kernels

#endif  // DUET_KERNELS_OPS_H_
