// GGUF block dequantisation (kernels/block_quant.h) on blocks built by hand
// from the layouts it documents, and the CPU backend's block-quantized matmul
// against the fp32 matmul of the dequantised weights. The bit-exact agreement
// with gguf-py's numpy dequantisation is tests/common/test_gguf_interop.py's.
#include "kernels/block_quant.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/half.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/ops.h"
#include "tests/kernels/test_util.h"

namespace duet::kernels::testing {
namespace {

void PutHalf(std::vector<uint8_t>& block, size_t offset, float value) {
  const uint16_t bits = FloatToF16(value);
  std::memcpy(block.data() + offset, &bits, 2);
}

std::vector<float> Dequantize(WeightType type, const std::vector<uint8_t>& row) {
  const int64_t cols =
      static_cast<int64_t>(row.size()) / WeightTypeBlockBytes(type) * WeightTypeBlockElements(type);
  std::vector<float> out(cols);
  DequantizeRow(type, row.data(), cols, out.data());
  return out;
}

TEST(BlockQuantTest, BlockSizesAreGgufs) {
  EXPECT_EQ(WeightRowBytes(WeightType::kQ8_0, 64), 68);
  EXPECT_EQ(WeightRowBytes(WeightType::kQ4_0, 32), 18);
  EXPECT_EQ(WeightRowBytes(WeightType::kQ4_1, 96), 60);
  EXPECT_EQ(WeightRowBytes(WeightType::kQ4_K, 512), 288);
  EXPECT_EQ(WeightRowBytes(WeightType::kQ5_K, 256), 176);
  EXPECT_EQ(WeightRowBytes(WeightType::kQ6_K, 256), 210);
  EXPECT_EQ(WeightRowBytes(WeightType::kBF16, 3), 6);
  EXPECT_DEATH(WeightRowBytes(WeightType::kQ4_K, 32), "");
}

TEST(BlockQuantTest, Q8_0) {
  std::vector<uint8_t> block(34);
  PutHalf(block, 0, 0.5f);
  for (int j = 0; j < 32; ++j) block[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(j - 16));
  const std::vector<float> values = Dequantize(WeightType::kQ8_0, block);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(values[j], 0.5f * (j - 16)) << j;
}

TEST(BlockQuantTest, Q4_0LowNibblesFirstThenHigh) {
  std::vector<uint8_t> block(18);
  PutHalf(block, 0, 0.25f);
  for (int j = 0; j < 16; ++j) block[2 + j] = static_cast<uint8_t>(j | (15 - j) << 4);
  const std::vector<float> values = Dequantize(WeightType::kQ4_0, block);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(values[j], 0.25f * (j - 8)) << j;
    EXPECT_EQ(values[16 + j], 0.25f * (15 - j - 8)) << j;
  }
}

TEST(BlockQuantTest, Q4_1AddsTheMin) {
  std::vector<uint8_t> block(20);
  PutHalf(block, 0, 0.125f);
  PutHalf(block, 2, -1.0f);
  for (int j = 0; j < 16; ++j) block[4 + j] = static_cast<uint8_t>(j | 3 << 4);
  const std::vector<float> values = Dequantize(WeightType::kQ4_1, block);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(values[j], 0.125f * j - 1.0f) << j;
    EXPECT_EQ(values[16 + j], 0.125f * 3 - 1.0f) << j;
  }
}

// Packs 6-bit scales and mins of 8 sub-blocks as Q4_K/Q5_K store them.
std::array<uint8_t, 12> PackScalesK4(const std::array<uint8_t, 8>& scales,
                                     const std::array<uint8_t, 8>& mins) {
  std::array<uint8_t, 12> packed{};
  for (int j = 0; j < 4; ++j) {
    packed[j] = (scales[j] & 63) | (scales[j + 4] >> 4) << 6;
    packed[j + 4] = (mins[j] & 63) | (mins[j + 4] >> 4) << 6;
    packed[j + 8] = (scales[j + 4] & 15) | (mins[j + 4] & 15) << 4;
  }
  return packed;
}

constexpr std::array<uint8_t, 8> kScales = {1, 2, 63, 17, 33, 48, 5, 62};
constexpr std::array<uint8_t, 8> kMins = {0, 7, 1, 63, 40, 16, 31, 9};

TEST(BlockQuantTest, Q4_KSubBlockScalesAndMins) {
  std::vector<uint8_t> block(144);
  PutHalf(block, 0, 0.5f);
  PutHalf(block, 2, 0.25f);
  const std::array<uint8_t, 12> packed = PackScalesK4(kScales, kMins);
  std::memcpy(block.data() + 4, packed.data(), 12);
  // Value l of sub-block j is (l + j) % 16.
  for (int pair = 0; pair < 4; ++pair) {
    for (int l = 0; l < 32; ++l) {
      block[16 + 32 * pair + l] =
          static_cast<uint8_t>((l + 2 * pair) % 16 | ((l + 2 * pair + 1) % 16) << 4);
    }
  }
  const std::vector<float> values = Dequantize(WeightType::kQ4_K, block);
  for (int j = 0; j < 8; ++j) {
    for (int l = 0; l < 32; ++l) {
      const float expected = 0.5f * kScales[j] * static_cast<float>((l + j) % 16) - 0.25f * kMins[j];
      EXPECT_EQ(values[32 * j + l], expected) << "sub-block " << j << " value " << l;
    }
  }
}

TEST(BlockQuantTest, Q5_KTakesTheFifthBitFromQh) {
  std::vector<uint8_t> block(176);
  PutHalf(block, 0, 0.5f);
  PutHalf(block, 2, 0.25f);
  const std::array<uint8_t, 12> packed = PackScalesK4(kScales, kMins);
  std::memcpy(block.data() + 4, packed.data(), 12);
  // Value l of sub-block j: low bits l % 16, high bit set when (l + j) is odd.
  for (int l = 0; l < 32; ++l) {
    uint8_t qh = 0;
    for (int j = 0; j < 8; ++j) qh |= static_cast<uint8_t>(((l + j) % 2) << j);
    block[16 + l] = qh;
    for (int pair = 0; pair < 4; ++pair) block[48 + 32 * pair + l] = static_cast<uint8_t>(l % 16 | (l % 16) << 4);
  }
  const std::vector<float> values = Dequantize(WeightType::kQ5_K, block);
  for (int j = 0; j < 8; ++j) {
    for (int l = 0; l < 32; ++l) {
      const int q = l % 16 + 16 * ((l + j) % 2);
      const float expected = 0.5f * kScales[j] * static_cast<float>(q) - 0.25f * kMins[j];
      EXPECT_EQ(values[32 * j + l], expected) << "sub-block " << j << " value " << l;
    }
  }
}

TEST(BlockQuantTest, Q6_KSixBitValuesWithSignedScales) {
  // Build the block from the values it should hold: q[i] in [0, 64) and
  // scales[16] signed, then check the dequantised row.
  std::vector<uint8_t> block(210, 0);
  std::array<int, 256> q;
  for (int i = 0; i < 256; ++i) q[i] = (7 * i + 3) % 64;
  std::array<int8_t, 16> scales;
  for (int s = 0; s < 16; ++s) scales[s] = static_cast<int8_t>(s % 2 ? -3 * s : 5 * s - 100);
  for (int half = 0; half < 2; ++half) {
    for (int g = 0; g < 4; ++g) {
      for (int l = 0; l < 32; ++l) {
        const int value = q[128 * half + 32 * g + l];
        uint8_t& low = block[64 * half + l + 32 * (g & 1)];
        low |= static_cast<uint8_t>((value & 15) << (g >= 2 ? 4 : 0));
        block[128 + 32 * half + l] |= static_cast<uint8_t>((value >> 4) << (2 * g));
      }
    }
  }
  std::memcpy(block.data() + 192, scales.data(), 16);
  PutHalf(block, 208, 0.0625f);
  const std::vector<float> values = Dequantize(WeightType::kQ6_K, block);
  for (int i = 0; i < 256; ++i) {
    const int scale = scales[i / 16];
    EXPECT_EQ(values[i], 0.0625f * static_cast<float>(scale) * static_cast<float>(q[i] - 32)) << i;
  }
}

TEST(BlockQuantTest, RangeIsASliceOfTheRow) {
  for (WeightType type : {WeightType::kQ8_0, WeightType::kQ4_1, WeightType::kQ4_K,
                          WeightType::kQ6_K, WeightType::kBF16}) {
    const int64_t block = WeightTypeBlockElements(type) == 1 ? 32 : WeightTypeBlockElements(type);
    const TestWeight w = MakeTestWeight(type, 1, 4 * block, 7);
    std::vector<float> slice(2 * block);
    DequantizeRowRange(type, w.bytes.data(), block, 3 * block, slice.data());
    EXPECT_EQ(slice, std::vector<float>(w.values.begin() + block, w.values.begin() + 3 * block))
        << WeightTypeName(type);
  }
}

// The SIMD dequantisers the CPU kernels use give DequantizeRow's values bit
// for bit, every block type, rows taken from the middle of the matrix.
TEST(BlockQuantTest, SimdDequantisersEqualDequantizeRow) {
  struct Variant {
    cpu::Isa isa;
    cpu::DequantizeRowsFn fn;
  };
  uint32_t seed = 90;
  for (const Variant& variant : {Variant{cpu::Isa::kAvx2, cpu::DequantizeRowsAvx2},
                                 Variant{cpu::Isa::kAvx512, cpu::DequantizeRowsAvx512}}) {
    if (!cpu::IsaSupported(variant.isa)) continue;
    for (WeightType type : {WeightType::kQ8_0, WeightType::kQ4_0, WeightType::kQ4_1,
                            WeightType::kQ4_K, WeightType::kQ5_K, WeightType::kQ6_K}) {
      const int64_t rows = 7, cols = 3 * 256;
      const TestWeight w = MakeTestWeight(type, rows, cols, ++seed);
      std::vector<float> simd(4 * cols);
      variant.fn(w.view(), 2, 4, simd.data());
      const std::vector<float> expected(w.values.begin() + 2 * cols, w.values.begin() + 6 * cols);
      EXPECT_EQ(std::memcmp(simd.data(), expected.data(), simd.size() * 4), 0)
          << cpu::IsaName(variant.isa) << " " << WeightTypeName(type);
    }
  }
}

// In fp32 mode the CPU backend dequantises weight panels and runs its fp32
// kernel, or (AVX2, few rows) dequantises block by block inside its own
// kernel: either way a
// block-quantized matmul is bit for bit the fp32 matmul of the dequantised
// matrix, for every ISA, thread count, row count and panel split.
TEST(BlockQuantTest, CpuMatmulEqualsFp32MatmulOfDequantisedWeights) {
  uint32_t seed = 50;
  for (const cpu::Isa isa : {cpu::Isa::kScalar, cpu::Isa::kAvx2, cpu::Isa::kAvx512}) {
    if (!cpu::IsaSupported(isa)) continue;
    for (int threads : {1, 3}) {
      std::unique_ptr<Backend> backend =
          cpu::MakeCpuBackendForIsa(isa, threads, QuantizedMatmul::kFloat);
      for (WeightType type : {WeightType::kQ8_0, WeightType::kQ4_0, WeightType::kQ4_1,
                              WeightType::kQ4_K, WeightType::kQ5_K, WeightType::kQ6_K}) {
        for (int64_t m : {1, 2, 5, 8, 9, 13}) {
          for (int64_t k : {256, 2048}) {
            const int64_t n = 301;  // several panels and a ragged last one
            const std::string what = absl::StrCat(std::string(backend->name()), " ", std::string(WeightTypeName(type)),
                                                  " m ", m, " k ", k);
            const TestWeight w = MakeTestWeight(type, n, k, ++seed);
            const TestWeight dense = AsF32(w);
            const std::vector<float> x = RandomFloats(m * k, ++seed);
            std::vector<float> quantized(m * n), expected(m * n);
            backend->Matmul(x.data(), w.view(), quantized.data(), m);
            backend->Matmul(x.data(), dense.view(), expected.data(), m);
            EXPECT_EQ(std::memcmp(quantized.data(), expected.data(), quantized.size() * 4), 0)
                << what;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace duet::kernels::testing
