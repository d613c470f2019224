// Fuzzes the worker's side of the router↔worker contract: StepRequests as
// they arrive off the wire, decoded and run one after another by a fresh
// StepExecutor (one rank, the qwen3 fixture model on the CPU backend, 32 KV
// blocks of 16, max_model_len 256), exactly as WorkerService::Step hands
// them over.
//
// Input: 'S' then steps in the binary wire format, each preceded by its
// length (two bytes, little endian); or 's' then steps in protobuf text
// format separated by lines "---" (readable seeds). Steps that do not decode
// are skipped, as gRPC refuses them before the service.
//
// Invariants: Execute fails on one rank only for a request whose masks follow
// when its LateMasks are missing or malformed (elsewhere a failure would mean
// a broken group); a rejected step says why, samples nothing and changes no state; an
// accepted one samples once per ScheduledSequence with sample = true, every
// token in the vocabulary, logprobs (when asked) finite, at most 0 and with
// at most the requested alternatives, the sampled token's among them.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "duet/worker/v1/worker.pb.h"
#include "kernels/ops.h"
#include "tests/test_paths.h"
#include "worker/comm/communicator.h"
#include "worker/kv_cache.h"
#include "worker/models/registry.h"
#include "worker/step_executor.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_proto.h"

namespace {

namespace worker = duet::worker;
namespace v1 = duet::worker::v1;

constexpr int kBlockSize = 16;
constexpr int kNumBlocks = 32;
constexpr int64_t kMaxModelLen = 256;
constexpr int kMaxSteps = 16;

struct Fixture {
  std::unique_ptr<worker::DecoderModel> model;
  std::unique_ptr<duet::kernels::Backend> backend;
  std::unique_ptr<worker::Communicator> comm;
};

const Fixture& Shared() {
  static const Fixture* const fixture = [] {
    const std::string dir = duet::testing::SourceDir() + "/tests/golden/fixtures/qwen3";
    absl::StatusOr<duet::ModelConfig> config = duet::LoadModelConfig(dir);
    absl::StatusOr<std::unique_ptr<worker::WeightSource>> weights =
        config.ok() ? worker::OpenCheckpointWeights(dir) : config.status();
    absl::StatusOr<std::unique_ptr<worker::DecoderModel>> model =
        weights.ok() ? worker::LoadModel(*config, *std::move(weights)) : weights.status();
    if (!model.ok()) {
      std::fprintf(stderr, "cannot load the qwen3 fixture: %s\n", model.status().ToString().c_str());
      std::abort();
    }
    auto* out = new Fixture;
    out->model = *std::move(model);
    out->backend = duet::kernels::MakeCpuBackend(1);
    out->comm = worker::MakeLocalCommunicator();
    return out;
  }();
  return *fixture;
}

std::vector<v1::StepRequest> DecodeSteps(std::string_view input) {
  std::vector<v1::StepRequest> steps;
  if (input.empty()) return steps;
  const char kind = input.front();
  input.remove_prefix(1);
  if (kind == 'S') {
    while (input.size() >= 2 && static_cast<int>(steps.size()) < kMaxSteps) {
      const size_t length = static_cast<unsigned char>(input[0]) | (static_cast<size_t>(input[1]) & 0xff) << 8;
      input.remove_prefix(2);
      const std::string_view bytes = input.substr(0, length);
      input.remove_prefix(bytes.size());
      v1::StepRequest step;
      if (duet::fuzz::DecodeQuietly(std::string(bytes), /*text=*/false, &step)) steps.push_back(std::move(step));
    }
  } else if (kind == 's') {
    while (!input.empty() && static_cast<int>(steps.size()) < kMaxSteps) {
      const size_t separator = input.find("\n---\n");
      const std::string text(input.substr(0, separator));
      input.remove_prefix(separator == std::string_view::npos ? input.size() : separator + 5);
      v1::StepRequest step;
      if (duet::fuzz::DecodeQuietly(text, /*text=*/true, &step)) steps.push_back(std::move(step));
    }
  }
  return steps;
}

void CheckAccepted(const v1::StepRequest& request, const v1::StepResult& result,
                   const absl::flat_hash_map<uint64_t, uint32_t>& top_logprobs_of, int64_t vocab_size) {
  int expected = 0;
  for (const v1::ScheduledSequence& step : request.scheduled()) expected += step.sample() ? 1 : 0;
  FUZZ_CHECK(result.sampled_size() == expected);
  int index = 0;
  for (const v1::ScheduledSequence& step : request.scheduled()) {
    if (!step.sample()) continue;
    const v1::SampledToken& token = result.sampled(index++);
    FUZZ_CHECK(token.seq_id() == step.seq_id());
    FUZZ_CHECK(token.token_id() >= 0 && token.token_id() < vocab_size);
    const auto asked = top_logprobs_of.find(step.seq_id());
    FUZZ_CHECK(asked != top_logprobs_of.end());
    if (asked->second == UINT32_MAX) {
      FUZZ_CHECK(!token.has_logprob() && token.top_logprobs_size() == 0);
      continue;
    }
    FUZZ_CHECK(token.has_logprob());
    FUZZ_CHECK(std::isfinite(token.logprob()) || token.logprob() == -INFINITY);
    FUZZ_CHECK(token.logprob() <= 0.0f);
    FUZZ_CHECK(static_cast<uint32_t>(token.top_logprobs_size()) <= asked->second);
    for (const v1::TopLogprob& top : token.top_logprobs()) {
      FUZZ_CHECK(top.token_id() >= 0 && top.token_id() < vocab_size);
      FUZZ_CHECK(top.logprob() <= 0.0f);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<v1::StepRequest> steps =
      DecodeSteps(std::string_view(reinterpret_cast<const char*>(data), size));
  if (steps.empty()) return 0;
  const Fixture& fixture = Shared();
  worker::KvCache cache(fixture.model->config().num_hidden_layers,
                        fixture.model->KvLayout(kNumBlocks, kBlockSize));
  worker::StepExecutor executor(*fixture.model, *fixture.backend, *fixture.comm, cache, kMaxModelLen);
  const int64_t vocab_size = fixture.model->config().vocab_size;
  // The top_logprobs each live sequence asked for (UINT32_MAX: none).
  absl::flat_hash_map<uint64_t, uint32_t> top_logprobs_of;
  for (size_t next = 0; next < steps.size();) {
    const v1::StepRequest& request = steps[next++];
    const int64_t sequences_before = executor.num_sequences();
    // As the service does: a request's LateMasks are the next message.
    const absl::StatusOr<v1::StepResult> result = executor.Execute(request, [&](v1::StepRequest* late) {
      if (next == steps.size()) return false;
      *late = steps[next++];
      return true;
    });
    if (!result.ok()) {
      // Only a request whose masks follow can fail on one rank (its
      // LateMasks missing or malformed); the group is then formed again.
      bool masks_follow = false;
      for (const v1::ScheduledSequence& step : request.scheduled()) masks_follow |= step.mask_follows();
      FUZZ_CHECK(masks_follow);
      break;
    }
    FUZZ_CHECK(result->step_id() == request.step_id());
    if (!result->error().empty()) {
      FUZZ_CHECK(result->sampled_size() == 0);
      FUZZ_CHECK(executor.num_sequences() == sequences_before);
      continue;
    }
    for (const uint64_t id : request.finished_seq_ids()) top_logprobs_of.erase(id);
    for (const v1::NewSequence& added : request.new_sequences()) {
      top_logprobs_of[added.seq_id()] =
          added.sampling().has_top_logprobs() ? added.sampling().top_logprobs() : UINT32_MAX;
    }
    FUZZ_CHECK(executor.num_sequences() == static_cast<int64_t>(top_logprobs_of.size()));
    CheckAccepted(request, *result, top_logprobs_of, vocab_size);
  }
  return 0;
}
