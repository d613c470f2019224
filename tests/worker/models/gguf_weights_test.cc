// GGUF weights as the model code sees them (gguf_weights.h), on the default
// model's file: names mapped to llama.cpp's, q/k rows put back in Hugging
// Face order, and the shards tensor and expert parallelism take — row blocks
// and column blocks along whole quant blocks — exactly the slices of the
// whole matrix.
#include "worker/models/gguf_weights.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/gguf.h"
#include "kernels/block_quant.h"
#include "kernels/ops.h"
#include "tests/test_paths.h"

namespace duet::worker {
namespace {

std::string DefaultModelPath() {
  return duet::testing::BuildDir() + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

// Every element of `w` as fp32, row-major.
std::vector<float> Dequantized(const kernels::Weight& w) {
  std::vector<float> values(w.rows * w.cols);
  const int64_t row_bytes = kernels::WeightRowBytes(w.type, w.cols);
  for (int64_t r = 0; r < w.rows; ++r) {
    kernels::DequantizeRow(w.type, static_cast<const std::byte*>(w.data) + r * row_bytes, w.cols,
                           values.data() + r * w.cols);
  }
  return values;
}

class GgufWeightsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(DefaultModelPath()))
        << DefaultModelPath() << " is missing: scripts/setup.sh installs it and the build links it";
    absl::StatusOr<std::unique_ptr<WeightSource>> weights = OpenGgufWeights(DefaultModelPath());
    ASSERT_TRUE(weights.ok()) << weights.status();
    weights_ = *std::move(weights);
    absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open(DefaultModelPath());
    ASSERT_TRUE(file.ok()) << file.status();
    file_ = *std::move(file);
  }

  std::unique_ptr<WeightSource> weights_;
  std::unique_ptr<GgufFile> file_;
};

TEST_F(GgufWeightsTest, NamesMapOntoLlamaCpps) {
  EXPECT_EQ(GgufTensorFor("model.embed_tokens.weight")->name, "token_embd.weight");
  EXPECT_EQ(GgufTensorFor("model.layers.7.mlp.down_proj.weight")->name, "blk.7.ffn_down.weight");
  const std::optional<GgufTensorRef> expert =
      GgufTensorFor("model.layers.3.mlp.experts.5.up_proj.weight");
  ASSERT_TRUE(expert.has_value());
  EXPECT_EQ(expert->name, "blk.3.ffn_up_exps.weight");
  EXPECT_EQ(expert->expert, 5);
  EXPECT_FALSE(GgufTensorFor("model.layers.x.mlp.up_proj.weight").has_value());
  EXPECT_TRUE(weights_->Contains("model.layers.29.self_attn.o_proj.weight"));
  EXPECT_FALSE(weights_->Contains("lm_head.weight"));  // tied to the embeddings
}

TEST_F(GgufWeightsTest, QueryAndKeyRowsAreBackInHuggingFaceOrder) {
  // Within a head of 64, HF row i < 32 and row 32 + i are a rotate-half pair;
  // llama.cpp stores them as rows 2i and 2i + 1.
  EXPECT_EQ(PermutedRow(0, 64), 0);
  EXPECT_EQ(PermutedRow(32, 64), 1);
  EXPECT_EQ(PermutedRow(5, 64), 10);
  EXPECT_EQ(PermutedRow(64 + 33, 64), 64 + 3);
  absl::StatusOr<kernels::Weight> k = weights_->GetMatrix("model.layers.0.self_attn.k_proj.weight", 192, 576);
  ASSERT_TRUE(k.ok()) << k.status();
  const GgufTensor* stored = file_->FindTensor("blk.0.attn_k.weight");
  ASSERT_NE(stored, nullptr);
  const kernels::Weight stored_weight{stored->data, kernels::WeightType::kQ4_1, 192, 576};
  const std::vector<float> hf = Dequantized(*k);
  const std::vector<float> gguf = Dequantized(stored_weight);
  for (int64_t row = 0; row < 192; ++row) {
    const int64_t from = PermutedRow(row, 64);
    ASSERT_EQ(std::vector<float>(hf.begin() + row * 576, hf.begin() + (row + 1) * 576),
              std::vector<float>(gguf.begin() + from * 576, gguf.begin() + (from + 1) * 576))
        << "row " << row;
  }
}

TEST_F(GgufWeightsTest, ShardsAreSlicesOfTheWholeMatrix) {
  const std::string o_proj = "model.layers.4.self_attn.o_proj.weight";
  absl::StatusOr<kernels::Weight> whole = weights_->GetMatrix(o_proj, 576, 576);
  ASSERT_TRUE(whole.ok()) << whole.status();
  const std::vector<float> all = Dequantized(*whole);
  // Row-parallel halves: columns [0, 288) and [288, 576), 9 Q4_1 blocks each.
  for (const IndexRange cols : {IndexRange{0, 288}, IndexRange{288, 288}}) {
    absl::StatusOr<kernels::Weight> half = weights_->GetMatrixCols(o_proj, 576, 576, cols);
    ASSERT_TRUE(half.ok()) << half.status();
    EXPECT_EQ(half->type, kernels::WeightType::kQ4_1);
    EXPECT_EQ(half->cols, 288);
    const std::vector<float> values = Dequantized(*half);
    for (int64_t r = 0; r < 576; ++r) {
      for (int64_t c = 0; c < 288; ++c) {
        ASSERT_EQ(values[r * 288 + c], all[r * 576 + cols.begin + c]) << r << ", " << c;
      }
    }
  }
  // Column-parallel: a block of rows of gate_proj, and of the permuted q_proj.
  for (const std::string name : {"model.layers.4.mlp.gate_proj.weight", "model.layers.4.self_attn.q_proj.weight"}) {
    const int64_t rows = name.find("gate") != std::string::npos ? 1536 : 576;
    absl::StatusOr<kernels::Weight> full = weights_->GetMatrix(name, rows, 576);
    absl::StatusOr<kernels::Weight> part = weights_->GetMatrixRows(name, rows, 576, {rows / 3, rows / 2 - rows / 3});
    ASSERT_TRUE(full.ok() && part.ok()) << full.status() << part.status();
    const std::vector<float> full_values = Dequantized(*full);
    EXPECT_EQ(Dequantized(*part), std::vector<float>(full_values.begin() + rows / 3 * 576,
                                                     full_values.begin() + rows / 2 * 576))
        << name;
  }
  // The vocabulary shards of the (Q8_0) embedding table.
  absl::StatusOr<kernels::Weight> embed =
      weights_->GetMatrixRows("model.embed_tokens.weight", 49152, 576, {24576, 24576});
  ASSERT_TRUE(embed.ok()) << embed.status();
  EXPECT_EQ(embed->type, kernels::WeightType::kQ8_0);
  EXPECT_EQ(embed->rows, 24576);
}

TEST_F(GgufWeightsTest, SplitsThroughAQuantBlockAreRefused) {
  absl::StatusOr<kernels::Weight> part =
      weights_->GetMatrixCols("model.layers.0.mlp.down_proj.weight", 576, 1536, {0, 100});
  EXPECT_EQ(part.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(part.status().message().find("blk.0.ffn_down.weight"), std::string::npos)
      << part.status();
  absl::StatusOr<kernels::Weight> wrong_shape =
      weights_->GetMatrix("model.layers.0.mlp.down_proj.weight", 1536, 576);
  EXPECT_EQ(wrong_shape.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(weights_->GetMatrix("model.layers.99.mlp.down_proj.weight", 576, 1536).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(GgufWeightTypesTest, UnsupportedTypesNameTheTypeAndTensor) {
  EXPECT_EQ(*WeightTypeOfGgml(static_cast<uint32_t>(GgmlType::kQ4_K), "t"), kernels::WeightType::kQ4_K);
  absl::StatusOr<kernels::WeightType> q5_0 =
      WeightTypeOfGgml(static_cast<uint32_t>(GgmlType::kQ5_0), "blk.3.attn_v.weight");
  EXPECT_EQ(q5_0.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(q5_0.status().message().find("Q5_0"), std::string::npos) << q5_0.status();
  EXPECT_NE(q5_0.status().message().find("blk.3.attn_v.weight"), std::string::npos);
}

}  // namespace
}  // namespace duet::worker
