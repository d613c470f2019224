// The group-quantized checkpoint formats (kernels/group_quant.h): matrices
// packed here from integer codes with this test's own packing code (AutoAWQ's
// pack order written out as AutoAWQ writes it, compressed-tensors' offset
// nibbles, e4m3 bytes), unpacked by the reference element by element, and
// every CPU kernel against the reference backend, with the bit-for-bit
// properties batching relies on.
#include "kernels/group_quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/half.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/ops.h"
#include "kernels/quant_dot.h"
#include "tests/kernels/test_util.h"

namespace duet::kernels::testing {
namespace {

// AutoAWQ packs, for each word of 8 outputs, output kAwqPackOrder[i] into
// nibble i (awq/modules/linear/gemm.py's order_map).
constexpr int kAwqPackOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};

// A packed matrix and the fp32 value every element must dequantise to.
struct GroupCase {
  std::string label;
  Weight w;
  std::vector<uint32_t> words;  // kAwqInt4 / kInt4 data
  std::vector<uint8_t> bytes;   // kF8E4M3 data
  std::vector<uint8_t> scales;
  std::vector<uint32_t> zeros;
  std::vector<float> values;  // [rows, cols]

  GroupCase() = default;
  GroupCase(const GroupCase&) = delete;
  GroupCase& operator=(const GroupCase&) = delete;
  // Points w at this object's own storage.
  void Bind() {
    w.data = w.type == WeightType::kF8E4M3 ? static_cast<const void*>(bytes.data()) : words.data();
    w.scales = scales.data();
    w.zeros = zeros.empty() ? nullptr : zeros.data();
  }
};

// Scales in `type`'s storage and their exact fp32 values.
void PushScale(WeightType type, float value, std::vector<uint8_t>* storage, float* exact) {
  if (type == WeightType::kF32) {
    const size_t at = storage->size();
    storage->resize(at + 4);
    std::memcpy(storage->data() + at, &value, 4);
    *exact = value;
    return;
  }
  const uint16_t bits = type == WeightType::kF16 ? FloatToF16(value) : FloatToBf16(value);
  storage->push_back(static_cast<uint8_t>(bits & 0xff));
  storage->push_back(static_cast<uint8_t>(bits >> 8));
  *exact = type == WeightType::kF16 ? F16ToFloat(bits) : Bf16ToFloat(bits);
}

float RandomScale(std::mt19937& rng) {
  std::uniform_real_distribution<float> magnitude(0.002f, 0.02f);
  return (rng() & 1 ? -1.0f : 1.0f) * magnitude(rng);
}

// The expected value as the format defines it: (q − z)·s, computed as
// group_quant.h says (exact for 16-bit scales).
float Int4Value(int q, int z, float s) {
  return std::fma(static_cast<float>(q), s, -(static_cast<float>(z) * s));
}

std::unique_ptr<GroupCase> MakeAwq(int64_t rows, int64_t cols, int64_t g, uint32_t seed) {
  std::mt19937 rng(seed);
  auto c = std::make_unique<GroupCase>();
  c->label = absl::StrCat("awq ", rows, "x", cols, " g", g);
  c->w = Weight{.type = WeightType::kAwqInt4, .rows = rows, .cols = cols, .scale_type = WeightType::kF16,
                .group_size = g};
  const int64_t groups = cols / g;
  std::vector<int> q(rows * cols), z(rows * groups);
  std::vector<float> s(rows * groups);
  for (int& v : q) v = static_cast<int>(rng() % 16);
  for (int& v : z) v = static_cast<int>(rng() % 16);
  // scales [groups, rows]
  for (int64_t k = 0; k < groups; ++k) {
    for (int64_t r = 0; r < rows; ++r) PushScale(WeightType::kF16, RandomScale(rng), &c->scales, &s[r * groups + k]);
  }
  c->words.assign(cols * (rows / 8), 0);
  c->zeros.assign(groups * (rows / 8), 0);
  for (int64_t i = 0; i < cols; ++i) {
    for (int64_t word = 0; word < rows / 8; ++word) {
      for (int nibble = 0; nibble < 8; ++nibble) {
        const int64_t r = 8 * word + kAwqPackOrder[nibble];
        c->words[i * (rows / 8) + word] |= static_cast<uint32_t>(q[r * cols + i]) << (4 * nibble);
      }
    }
  }
  for (int64_t k = 0; k < groups; ++k) {
    for (int64_t word = 0; word < rows / 8; ++word) {
      for (int nibble = 0; nibble < 8; ++nibble) {
        const int64_t r = 8 * word + kAwqPackOrder[nibble];
        c->zeros[k * (rows / 8) + word] |= static_cast<uint32_t>(z[r * groups + k]) << (4 * nibble);
      }
    }
  }
  c->values.resize(rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < cols; ++i) {
      c->values[r * cols + i] = Int4Value(q[r * cols + i], z[r * groups + i / g], s[r * groups + i / g]);
    }
  }
  c->Bind();
  return c;
}

// compressed-tensors: signed q in [−8, 8) stored + 8; zero points likewise,
// packed along the rows; g = 0 for one scale per row.
std::unique_ptr<GroupCase> MakeInt4(int64_t rows, int64_t cols, int64_t g, bool zero_points, WeightType scale_type,
                                    uint32_t seed) {
  std::mt19937 rng(seed);
  auto c = std::make_unique<GroupCase>();
  const int64_t group = g == 0 ? cols : g;
  const int64_t groups = cols / group;
  c->label = absl::StrCat("int4 ", rows, "x", cols, " g", group, zero_points ? " zeros " : " symmetric ",
                          std::string(WeightTypeName(scale_type)));
  c->w = Weight{.type = WeightType::kInt4, .rows = rows, .cols = cols, .scale_type = scale_type, .group_size = group};
  std::vector<int> q(rows * cols), zp(rows * groups, 0);
  std::vector<float> s(rows * groups);
  for (int& v : q) v = static_cast<int>(rng() % 16) - 8;
  if (zero_points) {
    for (int& v : zp) v = static_cast<int>(rng() % 16) - 8;
  }
  for (int64_t i = 0; i < rows * groups; ++i) PushScale(scale_type, RandomScale(rng), &c->scales, &s[i]);
  c->words.assign(rows * (cols / 8), 0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < cols; ++i) {
      c->words[r * (cols / 8) + i / 8] |= static_cast<uint32_t>(q[r * cols + i] + 8) << (4 * (i % 8));
    }
  }
  if (zero_points) {
    c->zeros.assign(((rows + 7) / 8) * groups, 0);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t k = 0; k < groups; ++k) {
        c->zeros[(r / 8) * groups + k] |= static_cast<uint32_t>(zp[r * groups + k] + 8) << (4 * (r % 8));
      }
    }
  }
  c->values.resize(rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < cols; ++i) {
      const int64_t k = i / group;
      c->values[r * cols + i] = Int4Value(q[r * cols + i] + 8, zp[r * groups + k] + 8, s[r * groups + k]);
    }
  }
  c->Bind();
  return c;
}

// e4m3 bytes (never NaN), scales per block of scale_rows × g.
std::unique_ptr<GroupCase> MakeFp8(int64_t rows, int64_t cols, int64_t scale_rows, int64_t g, WeightType scale_type,
                                   uint32_t seed) {
  std::mt19937 rng(seed);
  auto c = std::make_unique<GroupCase>();
  c->label = absl::StrCat("fp8 ", rows, "x", cols, " blocks ", scale_rows, "x", g, " ",
                          std::string(WeightTypeName(scale_type)));
  c->w = Weight{.type = WeightType::kF8E4M3, .rows = rows, .cols = cols, .scale_type = scale_type,
                .group_size = g, .scale_rows = scale_rows};
  const int64_t block_rows = (rows + scale_rows - 1) / scale_rows, block_cols = (cols + g - 1) / g;
  std::vector<float> s(block_rows * block_cols);
  for (float& v : s) {
    std::uniform_real_distribution<float> magnitude(1e-4f, 3e-3f);
    PushScale(scale_type, magnitude(rng), &c->scales, &v);
  }
  c->bytes.resize(rows * cols);
  for (uint8_t& b : c->bytes) {
    do {
      b = static_cast<uint8_t>(rng());
    } while ((b & 0x7f) == 0x7f);
  }
  c->values.resize(rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < cols; ++i) {
      c->values[r * cols + i] = F8E4M3ToFloat(c->bytes[r * cols + i]) * s[(r / scale_rows) * block_cols + i / g];
    }
  }
  c->Bind();
  return c;
}

std::vector<std::unique_ptr<GroupCase>> AllCases() {
  std::vector<std::unique_ptr<GroupCase>> cases;
  uint32_t seed = 100;
  cases.push_back(MakeAwq(128, 256, 64, ++seed));
  cases.push_back(MakeAwq(72, 128, 128, ++seed));  // a 64-output tile and an 8-output tail
  cases.push_back(MakeAwq(8, 64, 32, ++seed));
  cases.push_back(MakeInt4(37, 256, 128, false, WeightType::kF16, ++seed));
  cases.push_back(MakeInt4(40, 192, 32, true, WeightType::kBF16, ++seed));
  cases.push_back(MakeInt4(16, 200, 0, false, WeightType::kF32, ++seed));  // one scale per row
  cases.push_back(MakeInt4(24, 136, 8, true, WeightType::kF16, ++seed));
  cases.push_back(MakeFp8(37, 200, 16, 48, WeightType::kF32, ++seed));  // partial edge blocks
  cases.push_back(MakeFp8(20, 100, 20, 100, WeightType::kF32, ++seed));  // one scale for the tensor
  cases.push_back(MakeFp8(33, 77, 1, 77, WeightType::kBF16, ++seed));    // one per row, ragged k
  cases.push_back(MakeFp8(16, 256, 128, 128, WeightType::kF32, ++seed));
  return cases;
}

TEST(GroupQuantTest, EveryElementIsItsStoredCode) {
  for (const auto& c : AllCases()) {
    EXPECT_EQ(GroupQuantProblem(c->w), "") << c->label;
    std::vector<float> rows(c->values.size());
    DequantizeGroupRows(c->w, 0, c->w.rows, rows.data());
    size_t mismatches = 0;
    for (size_t i = 0; i < rows.size(); ++i) mismatches += rows[i] != c->values[i];
    EXPECT_EQ(mismatches, 0u) << c->label;
    // One row on its own, from the middle.
    const int64_t r = c->w.rows / 2;
    std::vector<float> one(c->w.cols);
    DequantizeWeightRows(c->w, r, 1, one.data());
    EXPECT_EQ(std::memcmp(one.data(), c->values.data() + r * c->w.cols, one.size() * 4), 0) << c->label;
  }
}

// AWQ's nibble order on one word: outputs 0..7 hold 0..7, packed as AutoAWQ
// does, read back in output order.
TEST(GroupQuantTest, AwqNibbleOrder) {
  uint32_t word = 0;
  for (int nibble = 0; nibble < 8; ++nibble) word |= static_cast<uint32_t>(kAwqPackOrder[nibble]) << (4 * nibble);
  EXPECT_EQ(word, 0x75316420u);
  for (int o = 0; o < 8; ++o) EXPECT_EQ((word >> (4 * kAwqNibble[o])) & 15, static_cast<uint32_t>(o)) << o;
  const uint16_t one = FloatToF16(1.0f);
  const uint8_t scales[16] = {static_cast<uint8_t>(one & 0xff), static_cast<uint8_t>(one >> 8),
                              static_cast<uint8_t>(one & 0xff), static_cast<uint8_t>(one >> 8),
                              static_cast<uint8_t>(one & 0xff), static_cast<uint8_t>(one >> 8),
                              static_cast<uint8_t>(one & 0xff), static_cast<uint8_t>(one >> 8),
                              static_cast<uint8_t>(one & 0xff), static_cast<uint8_t>(one >> 8),
                              static_cast<uint8_t>(one & 0xff), static_cast<uint8_t>(one >> 8),
                              static_cast<uint8_t>(one & 0xff), static_cast<uint8_t>(one >> 8),
                              static_cast<uint8_t>(one & 0xff), static_cast<uint8_t>(one >> 8)};
  const uint32_t zeros = 0x11111111u;  // zero point 1 for every output
  const Weight w{.data = &word, .type = WeightType::kAwqInt4, .rows = 8, .cols = 1, .scales = scales,
                 .scale_type = WeightType::kF16, .zeros = &zeros, .group_size = 1};
  ASSERT_EQ(GroupQuantProblem(w), "");
  for (int o = 0; o < 8; ++o) EXPECT_EQ(GroupQuantElement(w, o, 0), static_cast<float>(o - 1)) << o;
}

// compressed-tensors' symmetric int4: stored 0 is −8, 8 is 0, 15 is 7.
TEST(GroupQuantTest, Int4OffsetEncoding) {
  const uint32_t word = 0xf8700000u | 0x00000008u;  // values 8, 0, 0, 0, 0, 7, 8, 15
  const float scale = 0.5f;
  const Weight w{.data = &word, .type = WeightType::kInt4, .rows = 1, .cols = 8, .scales = &scale,
                 .scale_type = WeightType::kF32, .group_size = 8};
  ASSERT_EQ(GroupQuantProblem(w), "");
  const float expected[8] = {0.0f, -4.0f, -4.0f, -4.0f, -4.0f, -0.5f, 0.0f, 3.5f};
  for (int c = 0; c < 8; ++c) EXPECT_EQ(GroupQuantElement(w, 0, c), expected[c]) << c;
}

// e4m3's extremes through the reference and the SIMD dequantiser: the largest
// finite value, subnormals, signed zero.
TEST(GroupQuantTest, Fp8SpecialValues) {
  const uint8_t bytes[16] = {0x7e, 0xfe, 0x01, 0x81, 0x07, 0x08, 0x00, 0x80,
                             0x38, 0x78, 0x3c, 0x40, 0xc0, 0x06, 0x09, 0x77};
  const float scale = 2.0f;
  const Weight w{.data = bytes, .type = WeightType::kF8E4M3, .rows = 2, .cols = 8, .scales = &scale,
                 .scale_type = WeightType::kF32, .group_size = 8, .scale_rows = 2};
  ASSERT_EQ(GroupQuantProblem(w), "");
  std::vector<float> reference(16);
  DequantizeGroupRows(w, 0, 2, reference.data());
  EXPECT_EQ(reference[0], 896.0f);
  EXPECT_EQ(reference[1], -896.0f);
  EXPECT_EQ(reference[2], 0x1p-8f);
  EXPECT_EQ(reference[3], -0x1p-8f);
  EXPECT_EQ(reference[4], 7 * 0x1p-8f);
  EXPECT_EQ(reference[5], 0x1p-5f);
  EXPECT_EQ(reference[6], 0.0f);
  EXPECT_TRUE(std::signbit(reference[7]));
  EXPECT_EQ(reference[9], 512.0f);
  if (cpu::IsaSupported(cpu::Isa::kAvx2)) {
    std::vector<float> simd(16);
    cpu::DequantizeGroupRowsAvx2(w, 0, 2, simd.data());
    EXPECT_EQ(std::memcmp(simd.data(), reference.data(), 64), 0);
  }
}

TEST(GroupQuantTest, ProblemsAreNamed) {
  const uint32_t word = 0;
  const uint16_t half = 0;
  Weight awq{.data = &word, .type = WeightType::kAwqInt4, .rows = 12, .cols = 8, .scales = &half,
             .scale_type = WeightType::kF16, .zeros = &word, .group_size = 8};
  EXPECT_NE(GroupQuantProblem(awq).find("do not pack by 8"), std::string::npos);
  awq.rows = 8;
  awq.cols = 12;
  EXPECT_NE(GroupQuantProblem(awq).find("not whole groups of 8"), std::string::npos);
  awq.cols = 8;
  awq.zeros = nullptr;
  EXPECT_NE(GroupQuantProblem(awq).find("zero points"), std::string::npos);
  Weight int4{.data = &word, .type = WeightType::kInt4, .rows = 1, .cols = 16, .scales = &half,
              .scale_type = WeightType::kF16, .group_size = 12};
  EXPECT_NE(GroupQuantProblem(int4).find("not whole groups"), std::string::npos);
  int4.group_size = 16;
  int4.scale_type = WeightType::kQ8_0;
  EXPECT_NE(GroupQuantProblem(int4).find("F32, F16 or BF16"), std::string::npos);
  EXPECT_NE(GroupQuantProblem(Weight{}).find("not group-quantized"), std::string::npos);
}

// Bound for an fp32 dot product against the exact one: k·u·Σ|x·w|, twice.
std::vector<double> DotBounds(const std::vector<float>& x, const std::vector<float>& w, int64_t m, int64_t n,
                              int64_t k) {
  std::vector<double> bound(m * n);
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t c = 0; c < n; ++c) {
      double sum = 0;
      for (int64_t i = 0; i < k; ++i) sum += std::fabs(double{x[r * k + i]} * w[c * k + i]);
      bound[r * n + c] = 2.0 * static_cast<double>(k) * kUnitRoundoff * sum + 1e-30;
    }
  }
  return bound;
}

// Every ISA, thread count and row count (fused tiles up to 8 rows, panels
// beyond) against the reference's exact product, and each row equal bit for
// bit to the same row computed alone.
TEST(GroupQuantTest, CpuMatmulMatchesReferenceAndIsBatchInvariant) {
  const std::unique_ptr<Backend> reference = MakeReferenceBackend();
  uint32_t seed = 900;
  for (const auto& c : AllCases()) {
    const int64_t n = c->w.rows, k = c->w.cols;
    for (const cpu::Isa isa : {cpu::Isa::kScalar, cpu::Isa::kAvx2, cpu::Isa::kAvx512}) {
      if (!cpu::IsaSupported(isa)) continue;
      for (int threads : {1, 3}) {
        std::unique_ptr<Backend> backend = cpu::MakeCpuBackendForIsa(isa, threads, QuantizedMatmul::kFloat);
        for (int64_t m : {1, 2, 5, 8, 9, 13}) {
          const std::string what = absl::StrCat(c->label, " ", std::string(backend->name()), " m ", m);
          const std::vector<float> x = RandomFloats(m * k, ++seed);
          std::vector<float> actual(m * n), expected(m * n);
          backend->Matmul(x.data(), c->w, actual.data(), m);
          reference->Matmul(x.data(), c->w, expected.data(), m);
          ExpectWithin(actual, expected, DotBounds(x, c->values, m, n, k), what);
          for (int64_t r : {int64_t{0}, m - 1}) {
            std::vector<float> alone(n);
            backend->Matmul(x.data() + r * k, c->w, alone.data(), 1);
            EXPECT_EQ(std::memcmp(alone.data(), actual.data() + r * n, n * 4), 0) << what << " row " << r;
          }
        }
      }
    }
  }
}

// AWQ's one chain per output is the same on every ISA; the row types equal
// the fp32 kernel of their ISA on the dequantised matrix.
TEST(GroupQuantTest, CpuKernelsEqualTheirDefinitions) {
  uint32_t seed = 1300;
  for (const auto& c : AllCases()) {
    const int64_t n = c->w.rows, k = c->w.cols;
    const Weight dense{.data = c->values.data(), .type = WeightType::kF32, .rows = n, .cols = k};
    for (const cpu::Isa isa : {cpu::Isa::kScalar, cpu::Isa::kAvx2, cpu::Isa::kAvx512}) {
      if (!cpu::IsaSupported(isa)) continue;
      std::unique_ptr<Backend> backend = cpu::MakeCpuBackendForIsa(isa, 2, QuantizedMatmul::kFloat);
      for (int64_t m : {1, 3, 12}) {
        const std::string what = absl::StrCat(c->label, " ", std::string(backend->name()), " m ", m);
        const std::vector<float> x = RandomFloats(m * k, ++seed);
        std::vector<float> actual(m * n), expected(m * n);
        backend->Matmul(x.data(), c->w, actual.data(), m);
        if (c->w.type == WeightType::kAwqInt4) {
          cpu::MatmulAwqScalar(x.data(), m, c->w, expected.data(), 0, n);
        } else {
          backend->Matmul(x.data(), dense, expected.data(), m);
        }
        EXPECT_EQ(std::memcmp(actual.data(), expected.data(), actual.size() * 4), 0) << what;
      }
    }
  }
}

// The 4-bit cases with an int8 dot product: whole tiles, tails, several
// activation blocks per group, one scale per row, symmetric and zero points.
std::vector<std::unique_ptr<GroupCase>> Int8Cases() {
  std::vector<std::unique_ptr<GroupCase>> cases;
  uint32_t seed = 700;
  cases.push_back(MakeAwq(128, 256, 64, ++seed));   // two 64-output tiles, blocks of 64
  cases.push_back(MakeAwq(72, 384, 128, ++seed));   // a tile and an 8-output tail
  cases.push_back(MakeAwq(192, 512, 256, ++seed));  // two blocks of 128 per group
  cases.push_back(MakeAwq(392, 256, 128, ++seed));  // 128-output tiles, a 64-output one, a tail
  cases.push_back(MakeAwq(256, 128, 64, ++seed));
  cases.push_back(MakeInt4(37, 256, 128, true, WeightType::kF16, ++seed));  // 4 tiles and a 5-output tail
  cases.push_back(MakeInt4(24, 384, 192, false, WeightType::kBF16, ++seed));  // blocks of 64, 3 per group
  cases.push_back(MakeInt4(16, 256, 0, true, WeightType::kF32, ++seed));      // one scale per row
  cases.push_back(MakeInt4(40, 128, 64, true, WeightType::kF16, ++seed));
  return cases;
}

TEST(GroupQuantTest, Int8ActivationBlocks) {
  EXPECT_EQ(GroupInt8ActivationBlock(MakeAwq(8, 256, 128, 1)->w), 128);
  EXPECT_EQ(GroupInt8ActivationBlock(MakeAwq(8, 256, 256, 1)->w), 128);
  EXPECT_EQ(GroupInt8ActivationBlock(MakeAwq(8, 128, 64, 1)->w), 64);
  EXPECT_EQ(GroupInt8ActivationBlock(MakeInt4(8, 384, 192, false, WeightType::kF16, 1)->w), 64);
  // No int8 product: the fp32 path serves these.
  EXPECT_EQ(GroupInt8ActivationBlock(MakeAwq(8, 64, 32, 1)->w), 0);
  EXPECT_EQ(GroupInt8ActivationBlock(MakeInt4(8, 200, 0, false, WeightType::kF16, 1)->w), 0);
  EXPECT_EQ(GroupInt8ActivationBlock(MakeFp8(16, 256, 128, 128, WeightType::kF32, 1)->w), 0);
}

// GroupInt8Dot is the product of the dequantised weights with the rounded
// activations (q·d_x), computed here in double from the weights' fp32
// values; and it is within the activations' rounding of the exact product.
TEST(GroupQuantTest, GroupInt8DotIsTheRoundedProduct) {
  uint32_t seed = 2100;
  for (const auto& c : Int8Cases()) {
    const int64_t n = c->w.rows, k = c->w.cols;
    const int64_t m = 3;
    std::vector<float> x = RandomFloats(m * k, ++seed);
    x[5] = 0;  // a zero, and a row with a block of zeros
    std::fill_n(x.begin() + 2 * k, GroupInt8ActivationBlock(c->w), 0.0f);
    Int8Rows rows;
    rows.Resize(m, k, GroupInt8ActivationBlock(c->w));
    for (int64_t r = 0; r < m; ++r) QuantizeInt8Row(x.data(), r, &rows);
    for (int64_t r = 0; r < m; ++r) {
      for (int64_t o = 0; o < n; ++o) {
        double rounded = 0, exact = 0, magnitude = 0, rounding = 0;
        for (int64_t i = 0; i < k; ++i) {
          const double wv = c->values[o * k + i];
          const double d_x = rows.scales_row(r)[i / rows.block];
          rounded += wv * rows.q_row(r)[i] * d_x;
          exact += wv * x[r * k + i];
          magnitude += std::fabs(wv * rows.q_row(r)[i] * d_x);
          rounding += std::fabs(wv) * d_x / 2;
        }
        const double dot = GroupInt8Dot(c->w, o, rows, r);
        const std::string what = absl::StrCat(c->label, " row ", r, " output ", o);
        ASSERT_NEAR(dot, rounded, 1e-5 * magnitude + 1e-30) << what;
        ASSERT_NEAR(dot, exact, rounding * 1.001 + 1e-5 * magnitude + 1e-30) << what;
      }
    }
  }
}

// Every ISA, thread count and row count in int8 mode: bit for bit
// GroupInt8Dot, and each row equal to the same row computed alone.
TEST(GroupQuantTest, CpuInt8MatmulIsGroupInt8DotAndBatchInvariant) {
  uint32_t seed = 2500;
  for (const auto& c : Int8Cases()) {
    const int64_t n = c->w.rows, k = c->w.cols;
    for (const cpu::Isa isa : {cpu::Isa::kScalar, cpu::Isa::kAvx2, cpu::Isa::kAvx512}) {
      if (!cpu::IsaSupported(isa)) continue;
      for (int threads : {1, 3}) {
        std::unique_ptr<Backend> backend = cpu::MakeCpuBackendForIsa(isa, threads, QuantizedMatmul::kInt8);
        for (int64_t m : {1, 2, 5, 9}) {
          const std::string what = absl::StrCat(c->label, " ", std::string(backend->name()), " m ", m);
          const std::vector<float> x = RandomFloats(m * k, ++seed);
          std::vector<float> actual(m * n), expected(m * n);
          backend->Matmul(x.data(), c->w, actual.data(), m);
          Int8Rows rows;
          rows.Resize(m, k, GroupInt8ActivationBlock(c->w));
          for (int64_t r = 0; r < m; ++r) QuantizeInt8Row(x.data(), r, &rows);
          for (int64_t r = 0; r < m; ++r) {
            for (int64_t o = 0; o < n; ++o) expected[r * n + o] = GroupInt8Dot(c->w, o, rows, r);
          }
          EXPECT_EQ(std::memcmp(actual.data(), expected.data(), actual.size() * 4), 0) << what;
          std::vector<float> alone(n);
          backend->Matmul(x.data() + (m - 1) * k, c->w, alone.data(), 1);
          EXPECT_EQ(std::memcmp(alone.data(), actual.data() + (m - 1) * n, n * 4), 0) << what;
        }
      }
    }
  }
}

TEST(GroupQuantTest, EmbeddingRowsAreDequantised) {
  const std::unique_ptr<GroupCase> c = MakeInt4(16, 64, 32, true, WeightType::kF16, 5);
  const int32_t ids[3] = {3, 0, 15};
  std::vector<std::unique_ptr<Backend>> backends;
  backends.push_back(MakeReferenceBackend());
  backends.push_back(MakeCpuBackend(2));
  for (const std::unique_ptr<Backend>& backend : backends) {
    std::vector<float> out(3 * 64);
    backend->Embedding(ids, 3, c->w, out.data());
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(std::memcmp(out.data() + i * 64, c->values.data() + ids[i] * 64, 64 * 4), 0) << backend->name();
    }
  }
}

}  // namespace
}  // namespace duet::kernels::testing
