// A model split over two ranks (tensor parallel for dense families, expert
// parallel and tensor parallel for the MoE fixtures), each rank a thread with
// its own shard and a real Gloo communicator over loopback, reproduces the
// transformers fixtures exactly as the whole model does: prefill, chunked
// prefill, greedy decode. Also: weight shards are exactly the slices of the
// whole tensors, and impossible splits are refused.
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "common/model_config.h"
#include "kernels/ops.h"
#include "tests/worker/models/golden_reference.h"
#include "worker/comm/gloo_communicator.h"
#include "worker/comm/rendezvous_server.h"
#include "worker/generator.h"
#include "worker/models/registry.h"

namespace duet::worker {
namespace {

constexpr float kLogitAtol = 1e-3f;
constexpr int kWorldSize = 2;

int32_t Argmax(const float* row, int64_t vocab) {
  return static_cast<int32_t>(std::max_element(row, row + vocab) - row);
}

// What one rank saw: the logits of every Append, in order.
struct RankRun {
  absl::Status status;
  std::vector<std::vector<float>> logits;
};

// Runs `script` on every rank of a 2-rank group (one thread each), each with
// its shard of `fixture` and a generator over it.
std::vector<RankRun> RunSharded(const std::string& fixture, bool expert_parallel,
                                const std::function<absl::Status(Generator&, RankRun&)>& script) {
  const std::string dir = FixtureDir(fixture);
  absl::StatusOr<std::unique_ptr<GlooRendezvous>> rendezvous = GlooRendezvous::Start("127.0.0.1");
  EXPECT_TRUE(rendezvous.ok()) << rendezvous.status();
  std::vector<RankRun> runs(kWorldSize);
  if (!rendezvous.ok()) return runs;
  const std::string bootstrap = (*rendezvous)->bootstrap();
  std::vector<std::thread> threads;
  for (int rank = 0; rank < kWorldSize; ++rank) {
    threads.emplace_back([&, rank] {
      RankRun& run = runs[rank];
      auto fail = [&run](const absl::Status& status) { run.status = status; };
      CollectiveOptions options{.connect_timeout = absl::Seconds(30), .op_timeout = absl::Seconds(30)};
      absl::StatusOr<std::unique_ptr<Communicator>> comm =
          ConnectGloo(bootstrap, rank, kWorldSize, "127.0.0.1", options);
      if (!comm.ok()) return fail(comm.status());
      absl::StatusOr<ModelConfig> config = LoadModelConfig(dir);
      if (!config.ok()) return fail(config.status());
      absl::StatusOr<std::unique_ptr<WeightSource>> weights = OpenCheckpointWeights(dir);
      if (!weights.ok()) return fail(weights.status());
      const ModelShard shard{.rank = rank, .world_size = kWorldSize, .expert_parallel = expert_parallel};
      absl::StatusOr<std::unique_ptr<DecoderModel>> model =
          LoadModel(*config, *std::move(weights), shard);
      if (!model.ok()) return fail(model.status());
      std::unique_ptr<kernels::Backend> backend = kernels::MakeCpuBackend(1);
      GeneratorOptions generator_options{.block_size = 16, .num_blocks = 64, .comm = comm->get()};
      absl::StatusOr<std::unique_ptr<Generator>> generator =
          Generator::Create(**model, *backend, generator_options);
      if (!generator.ok()) return fail(generator.status());
      run.status = script(**generator, run);
    });
  }
  for (std::thread& thread : threads) thread.join();
  return runs;
}

using Param = std::tuple<std::string /*fixture*/, bool /*expert_parallel*/>;

class ShardedModelTest : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    ref_ = LoadReference(FixtureDir(std::get<0>(GetParam())));
    absl::StatusOr<ModelConfig> config = LoadModelConfig(FixtureDir(std::get<0>(GetParam())));
    ASSERT_TRUE(config.ok()) << config.status();
    vocab_ = config->vocab_size;
  }

  // Runs the script and checks every rank succeeded with identical logits.
  std::vector<std::vector<float>> Run(const std::function<absl::Status(Generator&, RankRun&)>& script) {
    const auto& [fixture, expert_parallel] = GetParam();
    std::vector<RankRun> runs = RunSharded(fixture, expert_parallel, script);
    for (int rank = 0; rank < kWorldSize; ++rank) {
      EXPECT_TRUE(runs[rank].status.ok()) << "rank " << rank << ": " << runs[rank].status;
    }
    EXPECT_EQ(runs[0].logits, runs[1].logits) << "ranks disagree on the gathered logits";
    return runs[0].logits;
  }

  Reference ref_;
  int64_t vocab_ = 0;
};

absl::Status Append(Generator& generator, RankRun& run, const std::vector<int32_t>& tokens, bool all) {
  absl::StatusOr<std::vector<float>> logits = generator.Append(tokens, all);
  if (!logits.ok()) return logits.status();
  run.logits.push_back(*std::move(logits));
  return absl::OkStatus();
}

TEST_P(ShardedModelTest, PrefillMatchesTransformers) {
  const std::vector<std::vector<float>> logits = Run([&](Generator& generator, RankRun& run) {
    return Append(generator, run, ref_.prompt_ids, /*all=*/true);
  });
  ASSERT_EQ(logits.size(), 1u);
  ASSERT_EQ(logits[0].size(), ref_.prefill_logits.size());
  EXPECT_LE(MaxAbsDiff(logits[0].data(), ref_.prefill_logits.data(), logits[0].size()), kLogitAtol);
}

TEST_P(ShardedModelTest, ChunkedPrefillMatchesTransformers) {
  const std::vector<int32_t> first(ref_.prompt_ids.begin(), ref_.prompt_ids.begin() + ref_.chunk_lens[0]);
  const std::vector<int32_t> second(ref_.prompt_ids.begin() + ref_.chunk_lens[0], ref_.prompt_ids.end());
  const std::vector<std::vector<float>> logits = Run([&](Generator& generator, RankRun& run) {
    if (absl::Status status = Append(generator, run, first, true); !status.ok()) return status;
    return Append(generator, run, second, true);
  });
  ASSERT_EQ(logits.size(), 2u);
  std::vector<float> all = logits[0];
  all.insert(all.end(), logits[1].begin(), logits[1].end());
  ASSERT_EQ(all.size(), ref_.chunked_prefill_logits.size());
  EXPECT_LE(MaxAbsDiff(all.data(), ref_.chunked_prefill_logits.data(), all.size()), kLogitAtol);
}

TEST_P(ShardedModelTest, GreedyDecodeMatchesTransformers) {
  const int64_t num_steps = static_cast<int64_t>(ref_.decode_logits.size()) / vocab_;
  // Both ranks pick the same greedy token from the same gathered logits.
  const std::vector<std::vector<float>> logits = Run([&](Generator& generator, RankRun& run) {
    if (absl::Status status = Append(generator, run, ref_.prompt_ids, false); !status.ok()) return status;
    for (int64_t step = 0; step < num_steps; ++step) {
      const int32_t token = Argmax(run.logits.back().data(), vocab_);
      if (absl::Status status = Append(generator, run, {token}, false); !status.ok()) return status;
    }
    return absl::OkStatus();
  });
  ASSERT_EQ(static_cast<int64_t>(logits.size()), num_steps + 1);
  for (int64_t step = 0; step <= num_steps; ++step) {
    EXPECT_EQ(Argmax(logits[step].data(), vocab_), ref_.greedy_ids[step]) << "greedy token " << step;
    if (step > 0) {
      EXPECT_LE(MaxAbsDiff(logits[step].data(), ref_.decode_logits.data() + (step - 1) * vocab_, vocab_),
                kLogitAtol)
          << "decode step " << step - 1;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, ShardedModelTest,
    ::testing::Values(Param{"llama", false}, Param{"qwen2", false}, Param{"qwen3", false},
                      Param{"qwen3_moe_topk_norm", true}, Param{"qwen3_moe_no_norm", true},
                      Param{"qwen3_moe_topk_norm", false}, Param{"llama_awq", false},
                      Param{"qwen3_int4", false}, Param{"qwen2_int4_channel", false},
                      Param{"qwen3_moe_awq", false}, Param{"qwen3_moe_awq", true},
                      Param{"qwen3_moe_fp8", true}, Param{"llama_fp8_channel", false}),
    [](const ::testing::TestParamInfo<Param>& info) {
      return std::get<0>(info.param) + (std::get<1>(info.param) ? "_ep" : "_tp");
    });

// Row and column blocks of a checkpoint tensor and of a dummy tensor are the
// corresponding slices of the whole tensor.
TEST(WeightShardTest, BlocksAreSlicesOfTheWholeTensor) {
  absl::StatusOr<std::unique_ptr<WeightSource>> checkpoint = OpenCheckpointWeights(FixtureDir("qwen2"));
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  std::unique_ptr<WeightSource> dummy = MakeDummyWeights(9);
  for (WeightSource* source : {checkpoint->get(), dummy.get()}) {
    const std::string name = "model.layers.0.mlp.down_proj.weight";  // [96, 192]
    absl::StatusOr<kernels::Weight> whole = source->GetMatrix(name, 96, 192);
    absl::StatusOr<kernels::Weight> rows = source->GetMatrixRows(name, 96, 192, {48, 48});
    absl::StatusOr<kernels::Weight> cols = source->GetMatrixCols(name, 96, 192, {96, 96});
    ASSERT_TRUE(whole.ok() && rows.ok() && cols.ok());
    ASSERT_EQ(rows->rows, 48);
    ASSERT_EQ(cols->cols, 96);
    const int element = kernels::WeightTypeSize(whole->type);
    const auto* base = static_cast<const std::byte*>(whole->data);
    EXPECT_EQ(std::memcmp(rows->data, base + 48 * 192 * element, 48 * 192 * element), 0);
    for (int r = 0; r < 96; ++r) {
      EXPECT_EQ(std::memcmp(static_cast<const std::byte*>(cols->data) + r * 96 * element,
                            base + (r * 192 + 96) * element, 96 * element),
                0)
          << "row " << r;
    }
    absl::StatusOr<std::vector<float>> bias = source->GetVector("model.layers.0.self_attn.q_proj.bias", 96);
    absl::StatusOr<std::vector<float>> part =
        source->GetVectorRange("model.layers.0.self_attn.q_proj.bias", 96, {32, 64});
    ASSERT_TRUE(bias.ok() && part.ok());
    EXPECT_EQ(*part, std::vector<float>(bias->begin() + 32, bias->end()));
    EXPECT_FALSE(source->GetMatrixRows(name, 96, 192, {90, 10}).ok()) << "block past the end";
  }
}

// Two ranks together load the whole model once, plus what every rank keeps
// whole: the norms. The embedding table is split by vocabulary like the
// lm_head; were it whole on each rank, the ranks would load one more table.
TEST(ModelShardTest, RanksLoadTheModelOnceApartFromTheNorms) {
  for (const std::string fixture : {"llama", "qwen2"}) {
    const std::string dir = FixtureDir(fixture);
    absl::StatusOr<ModelConfig> config = LoadModelConfig(dir);
    ASSERT_TRUE(config.ok()) << config.status();
    auto loaded_bytes = [&](const ModelShard& shard) -> uint64_t {
      absl::StatusOr<std::unique_ptr<WeightSource>> weights = OpenCheckpointWeights(dir);
      EXPECT_TRUE(weights.ok()) << weights.status();
      absl::StatusOr<std::unique_ptr<DecoderModel>> model = LoadModel(*config, *std::move(weights), shard);
      EXPECT_TRUE(model.ok()) << model.status();
      return model.ok() ? (*model)->weight_bytes() : 0;
    };
    const uint64_t whole = loaded_bytes({});
    const uint64_t ranks = loaded_bytes({.rank = 0, .world_size = 2}) + loaded_bytes({.rank = 1, .world_size = 2});
    // Norms (two per layer and the final one) are read as fp32 vectors.
    const uint64_t norms = static_cast<uint64_t>(2 * config->num_hidden_layers + 1) * config->hidden_size * 4;
    EXPECT_LE(ranks - whole, norms) << fixture;
    EXPECT_LT(ranks - whole, static_cast<uint64_t>(config->vocab_size * config->hidden_size)) << fixture;
  }
}

TEST(ModelShardTest, RefusesSplitsThatDoNotDivide) {
  absl::StatusOr<ModelConfig> qwen2 = LoadModelConfig(FixtureDir("qwen2"));  // 6 heads, 2 kv heads
  ASSERT_TRUE(qwen2.ok());
  EXPECT_TRUE(ValidateShard(*qwen2, {.rank = 1, .world_size = 2}).ok());
  const absl::Status four = ValidateShard(*qwen2, {.rank = 0, .world_size = 4});
  EXPECT_EQ(four.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(four.message().find("num_attention_heads"), std::string::npos) << four;
  EXPECT_FALSE(ValidateShard(*qwen2, {.rank = 2, .world_size = 2}).ok());
  EXPECT_FALSE(ValidateShard(*qwen2, {.rank = 0, .world_size = 2, .expert_parallel = true}).ok());

  // One KV head, two ranks: both hold (a replica of) it.
  absl::StatusOr<ModelConfig> moe = LoadModelConfig(FixtureDir("qwen3_moe_no_norm"));
  ASSERT_TRUE(moe.ok());
  const ModelShard rank1{.rank = 1, .world_size = 2, .expert_parallel = true};
  EXPECT_EQ(rank1.KvHeads(*moe), (IndexRange{0, 1}));
  EXPECT_EQ(rank1.Experts(*moe), (IndexRange{4, 4}));
  EXPECT_EQ(rank1.QueryHeads(*moe), (IndexRange{2, 2}));
  EXPECT_EQ((ModelShard{.rank = 1, .world_size = 2}.Vocab(1001)), (IndexRange{501, 500}));
}

}  // namespace
}  // namespace duet::worker
