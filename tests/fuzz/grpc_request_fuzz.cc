// Fuzzes the public gRPC API's request translation: the calls DuetService
// makes on a decoded message before the engine sees it (grpc_service.cc),
// with the llama fixture and the Llama 3.1 tokenizer and chat template.
//
// Input: the first byte names the message and its encoding, the rest is the
// message: 'G' GenerateRequest, 'T' TokenizeRequest, 'D' DetokenizeRequest in
// the binary wire format (what gRPC hands the service), and 'g', 't', 'd' the
// same in protobuf text format (readable seeds). Other first bytes and
// messages that do not decode are ignored, as gRPC refuses them before the
// service.
//
// Invariants: every refusal is a status with a message whose code survives
// ToGrpcStatus; a GenerateRequest is refused only with InvalidArgument (or
// ResourceExhausted/FailedPrecondition from rendering), and a validated one
// keeps its prompt ids in the vocabulary, n and max_tokens within the limits,
// prompt + max_tokens within the context; a response built from its events
// serialises.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "duet/v1/duet.pb.h"
#include "router/api/grpc_translation.h"
#include "router/api/model_assets.h"
#include "router/engine/engine_event.h"
#include "router/engine/request.h"
#include "tests/fuzz/fuzz_assets.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_proto.h"

namespace {

namespace api = duet::api;
namespace engine = duet::engine;
namespace v1 = duet::v1;
using duet::fuzz::Assets;
using duet::fuzz::DecodeQuietly;
using duet::fuzz::VocabSize;

constexpr int32_t kMaxModelLen = 2048;

void CheckRefusal(const absl::Status& status) {
  FUZZ_CHECK(!status.ok());
  FUZZ_CHECK(!status.message().empty());
  const grpc::Status translated = api::ToGrpcStatus(status);
  FUZZ_CHECK(static_cast<int>(translated.error_code()) == static_cast<int>(status.code()));
}

void FuzzGenerate(const v1::GenerateRequest& request) {
  absl::StatusOr<std::vector<int32_t>> prompt = api::PromptTokenIds(Assets(), request);
  if (!prompt.ok()) {
    CheckRefusal(prompt.status());
    const absl::StatusCode code = prompt.status().code();
    FUZZ_CHECK(code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kResourceExhausted ||
               code == absl::StatusCode::kFailedPrecondition);
    return;
  }
  engine::RequestLimits limits;
  limits.max_model_len = kMaxModelLen;
  limits.vocab_size = VocabSize();
  const absl::StatusOr<engine::ValidatedRequest> validated = engine::ValidateRequest(
      api::ToEngineRequest(request, *std::move(prompt), Assets().config.generation), limits);
  if (!validated.ok()) {
    CheckRefusal(validated.status());
    FUZZ_CHECK(validated.status().code() == absl::StatusCode::kInvalidArgument);
    return;
  }
  const engine::GenerateRequest& accepted = validated->request();
  for (const int32_t id : accepted.prompt_token_ids) FUZZ_CHECK(id >= 0 && id < limits.vocab_size);
  FUZZ_CHECK(!accepted.prompt_token_ids.empty());
  FUZZ_CHECK(accepted.n >= 1 && accepted.n <= limits.max_n);
  FUZZ_CHECK(validated->max_tokens() >= 1);
  FUZZ_CHECK(validated->num_prompt_tokens() + validated->max_tokens() <= kMaxModelLen);
  FUZZ_CHECK(static_cast<int32_t>(accepted.stop.size()) <= limits.max_stop_strings);

  // The stream messages its events would become.
  engine::EngineEvent event;
  event.kind = engine::EngineEvent::Kind::kFinished;
  event.token_ids = {accepted.prompt_token_ids.front()};
  event.text = accepted.stop.empty() ? std::string("x") : accepted.stop.front();
  event.num_prompt_tokens = validated->num_prompt_tokens();
  event.finish_reason = engine::FinishReason::kStop;
  if (!accepted.stop.empty()) event.stop_string = accepted.stop.front();
  std::string wire;
  FUZZ_CHECK(api::ToGenerateResponse(event).SerializeToString(&wire));
}

void FuzzTokenize(const v1::TokenizeRequest& request) {
  if (request.input_case() == v1::TokenizeRequest::kText) {
    absl::StatusOr<std::vector<int32_t>> ids =
        Assets().tokenizer->Encode(request.text(), !request.has_add_special_tokens() || request.add_special_tokens());
    if (!ids.ok()) CheckRefusal(ids.status());
  } else if (request.input_case() == v1::TokenizeRequest::kChat) {
    absl::StatusOr<std::vector<int32_t>> ids = api::ChatTokenIds(Assets(), request.chat(), request.add_special_tokens());
    if (!ids.ok()) CheckRefusal(ids.status());
  }
}

void FuzzDetokenize(const v1::DetokenizeRequest& request) {
  const std::vector<int32_t> ids(request.token_ids().begin(), request.token_ids().end());
  absl::StatusOr<std::string> text =
      Assets().tokenizer->Decode(ids, !request.has_skip_special_tokens() || request.skip_special_tokens());
  if (!text.ok()) CheckRefusal(text.status());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const char kind = static_cast<char>(data[0]);
  const std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  const bool text = kind == 'g' || kind == 't' || kind == 'd';
  switch (kind) {
    case 'G':
    case 'g': {
      v1::GenerateRequest request;
      if (DecodeQuietly(bytes, text, &request)) FuzzGenerate(request);
      break;
    }
    case 'T':
    case 't': {
      v1::TokenizeRequest request;
      if (DecodeQuietly(bytes, text, &request)) FuzzTokenize(request);
      break;
    }
    case 'D':
    case 'd': {
      v1::DetokenizeRequest request;
      if (DecodeQuietly(bytes, text, &request)) FuzzDetokenize(request);
      break;
    }
    default:
      break;
  }
  return 0;
}
