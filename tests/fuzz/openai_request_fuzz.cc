// Fuzzes the OpenAI request path of the gateway up to the engine: the body is
// parsed (openai_protocol.h), its prompt built as the service builds it
// (chat template and tokenizer of the llama fixture with the Llama 3.1
// tokenizer, or the tokenizer alone for completions) and the result checked
// by engine::ValidateRequest, exactly the calls OpenAiService makes before
// Submit.
//
// Input: the first byte picks the endpoint (its value mod 4: chat,
// completions, tokenize, detokenize); the rest is the request body.
//
// Invariants: every rejection is an OpenAI error with status 400 or 404, a
// type and a message that does not repeat the request's text; an accepted
// generation request either passes ValidateRequest or is refused with
// InvalidArgument, and a validated one respects the engine's limits.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "router/api/chat_prompt.h"
#include "router/api/model_assets.h"
#include "router/api/openai_protocol.h"
#include "router/engine/request.h"
#include "tests/fuzz/fuzz_assets.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace api = duet::api;
namespace engine = duet::engine;
using duet::fuzz::Assets;
using duet::fuzz::VocabSize;

constexpr int32_t kMaxModelLen = 2048;

api::ProtocolLimits Limits() {
  api::ProtocolLimits limits;
  limits.served_model_name = "fuzz-model";
  limits.engine.max_model_len = kMaxModelLen;
  limits.engine.vocab_size = VocabSize();
  limits.generation_defaults = Assets().config.generation;
  return limits;
}

// Strings of the body long and unusual enough that fixed error text cannot
// contain them by chance.
void CollectStrings(const api::Json& value, std::vector<std::string>* out) {
  auto distinctive = [](const std::string& s) {
    if (s.size() < 20) return false;
    for (const char c : s) {
      if (!((c >= 'a' && c <= 'z') || c == '_' || c == '.' || c == ' ' || c == '\'')) return true;
    }
    return false;
  };
  if (value.is_string()) {
    if (distinctive(value.get<std::string>())) out->push_back(value.get<std::string>());
  } else if (value.is_object()) {
    for (const auto& [key, element] : value.items()) {
      if (distinctive(key)) out->push_back(key);
      CollectStrings(element, out);
    }
  } else if (value.is_array()) {
    for (const auto& element : value) CollectStrings(element, out);
  }
}

void CheckError(const api::OpenAiError& error, const api::Json* body) {
  FUZZ_CHECK(error.status == 400 || error.status == 404);
  FUZZ_CHECK(!error.message.empty() && !error.type.empty());
  FUZZ_CHECK(error.param.size() < 64);
  if (body == nullptr) return;
  std::vector<std::string> strings;
  CollectStrings(*body, &strings);
  for (const std::string& s : strings) FUZZ_CHECK(error.message.find(s) == std::string::npos);
}

// What the service does between parsing and Submit, for each prompt.
void CheckGeneration(const api::GenerationSettings& settings, std::vector<int32_t> prompt_ids,
                     std::string_view prompt_param) {
  if (std::optional<api::OpenAiError> error =
          api::CheckContextLength(static_cast<int32_t>(prompt_ids.size()), settings, kMaxModelLen, prompt_param)) {
    CheckError(*error, nullptr);
    return;
  }
  engine::GenerateRequest request = settings.request;
  request.prompt_token_ids = std::move(prompt_ids);
  const engine::RequestLimits limits = Limits().engine;
  const absl::StatusOr<engine::ValidatedRequest> validated = engine::ValidateRequest(request, limits);
  if (!validated.ok()) {
    FUZZ_CHECK(validated.status().code() == absl::StatusCode::kInvalidArgument);
    FUZZ_CHECK(!validated.status().message().empty());
    return;
  }
  FUZZ_CHECK(validated->max_tokens() >= 1);
  FUZZ_CHECK(validated->num_prompt_tokens() + validated->max_tokens() <= kMaxModelLen);
  for (const int32_t id : validated->request().prompt_token_ids) FUZZ_CHECK(id >= 0 && id < limits.vocab_size);
  FUZZ_CHECK(validated->request().n >= 1 && validated->request().n <= limits.max_n);
}

void FuzzChat(const api::Json& body) {
  api::ChatCompletionRequest request;
  if (std::optional<api::OpenAiError> error = api::ParseChatCompletionRequest(body, Limits(), &request)) {
    CheckError(*error, &body);
    return;
  }
  const absl::StatusOr<api::ChatPrompt> prompt = api::BuildChatPrompt(Assets(), request.prompt);
  if (!prompt.ok()) {
    const absl::StatusCode code = prompt.status().code();
    FUZZ_CHECK(code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kResourceExhausted);
    return;
  }
  CheckGeneration(request.settings, prompt->token_ids, "messages");
}

void FuzzCompletion(const api::Json& body) {
  api::CompletionRequest request;
  if (std::optional<api::OpenAiError> error = api::ParseCompletionRequest(body, Limits(), &request)) {
    CheckError(*error, &body);
    return;
  }
  FUZZ_CHECK(!request.prompts.empty());
  for (const api::CompletionPrompt& prompt : request.prompts) {
    std::vector<int32_t> ids = prompt.token_ids;
    if (prompt.is_text) {
      absl::StatusOr<std::vector<int32_t>> encoded = Assets().tokenizer->Encode(prompt.text, true);
      if (!encoded.ok()) continue;
      ids = *std::move(encoded);
    }
    if (ids.empty()) continue;
    CheckGeneration(request.settings, std::move(ids), "prompt");
  }
}

void FuzzTokenize(const api::Json& body) {
  api::TokenizeRequest request;
  if (std::optional<api::OpenAiError> error = api::ParseTokenizeRequest(body, &request)) {
    CheckError(*error, &body);
    return;
  }
  if (request.is_chat) {
    (void)api::BuildChatPrompt(Assets(), request.chat);
  } else {
    (void)Assets().tokenizer->Encode(request.prompt, request.add_special_tokens);
  }
}

void FuzzDetokenize(const api::Json& body) {
  std::vector<int32_t> ids;
  if (std::optional<api::OpenAiError> error = api::ParseDetokenizeRequest(body, &ids)) {
    CheckError(*error, &body);
    return;
  }
  const absl::StatusOr<std::string> text = Assets().tokenizer->Decode(ids, true);
  if (!text.ok()) FUZZ_CHECK(text.status().code() == absl::StatusCode::kInvalidArgument);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  api::Json json;
  if (std::optional<api::OpenAiError> error = api::ParseJsonObject(body, &json)) {
    CheckError(*error, nullptr);
    return 0;
  }
  switch (data[0] % 4) {
    case 0:
      FuzzChat(json);
      break;
    case 1:
      FuzzCompletion(json);
      break;
    case 2:
      FuzzTokenize(json);
      break;
    default:
      FuzzDetokenize(json);
      break;
  }
  return 0;
}
