#include "router/engine/request.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace duet::engine {
namespace {

using ::testing::HasSubstr;

RequestLimits Limits() {
  RequestLimits limits;
  limits.max_model_len = 100;
  limits.vocab_size = 50;
  return limits;
}

GenerateRequest Valid() {
  GenerateRequest request;
  request.prompt_token_ids = {1, 2, 3};
  return request;
}

// The error message of a request changed by `edit`.
template <typename Edit>
std::string Error(Edit edit) {
  GenerateRequest request = Valid();
  edit(request);
  absl::StatusOr<ValidatedRequest> result = ValidateRequest(request, Limits());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(result.status().message());
}

TEST(ValidateRequestTest, ResolvesMaxTokensFromTheContext) {
  absl::StatusOr<ValidatedRequest> request = ValidateRequest(Valid(), Limits());
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(request->max_tokens(), 97);
  GenerateRequest capped = Valid();
  capped.max_tokens = 10;
  EXPECT_EQ(ValidateRequest(capped, Limits())->max_tokens(), 10);
}

TEST(ValidateRequestTest, NamesTheFieldAndTheRule) {
  EXPECT_THAT(Error([](auto& r) { r.prompt_token_ids.clear(); }), HasSubstr("prompt is empty"));
  EXPECT_THAT(Error([](auto& r) { r.prompt_token_ids[1] = 50; }), HasSubstr("prompt token id 50 at position 1"));
  EXPECT_THAT(Error([](auto& r) { r.prompt_token_ids.assign(100, 1); }), HasSubstr("context length of 100"));
  EXPECT_THAT(Error([](auto& r) { r.max_tokens = 98; }), HasSubstr("at most 97 tokens"));
  EXPECT_THAT(Error([](auto& r) { r.max_tokens = 0; }), HasSubstr("max_tokens must be >= 1"));
  EXPECT_THAT(Error([](auto& r) { r.sampling.temperature = -1; }), HasSubstr("temperature"));
  EXPECT_THAT(Error([](auto& r) { r.sampling.top_p = 1.5f; }), HasSubstr("top_p must be in (0, 1], got 1.5"));
  EXPECT_THAT(Error([](auto& r) { r.sampling.top_p = 0.0f; }), HasSubstr("top_p"));
  EXPECT_THAT(Error([](auto& r) { r.sampling.top_k = -2; }), HasSubstr("top_k"));
  EXPECT_THAT(Error([](auto& r) { r.sampling.min_p = 2.0f; }), HasSubstr("min_p"));
  EXPECT_THAT(Error([](auto& r) { r.sampling.presence_penalty = 3; }), HasSubstr("presence_penalty"));
  EXPECT_THAT(Error([](auto& r) { r.sampling.frequency_penalty = -3; }), HasSubstr("frequency_penalty"));
  EXPECT_THAT(Error([](auto& r) { r.sampling.repetition_penalty = 0.0f; }), HasSubstr("repetition_penalty"));
  EXPECT_THAT(Error([](auto& r) { r.sampling.logit_bias[60] = 1; }), HasSubstr("logit_bias names token id 60"));
  EXPECT_THAT(Error([](auto& r) { r.sampling.logit_bias[5] = 101; }), HasSubstr("[-100, 100]"));
  EXPECT_THAT(Error([](auto& r) { r.sampling.top_logprobs = 21; }), HasSubstr("top_logprobs"));
  EXPECT_THAT(Error([](auto& r) { r.n = 0; }), HasSubstr("n must be in [1, 16]"));
  EXPECT_THAT(Error([](auto& r) { r.stop = {""}; }), HasSubstr("stop strings must not be empty"));
  EXPECT_THAT(Error([](auto& r) { r.stop.assign(17, "x"); }), HasSubstr("at most 16 stop strings"));
  EXPECT_THAT(Error([](auto& r) { r.stop_token_ids = {99}; }), HasSubstr("stop_token_ids"));
  EXPECT_THAT(Error([](auto& r) { r.min_tokens = 98; }), HasSubstr("min_tokens"));
}

}  // namespace
}  // namespace duet::engine
