// duet.v1 messages to the engine's types and back.
#include "router/api/grpc_translation.h"

#include <vector>

#include "glog/logging.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "gtest/gtest.h"
#include "tests/router/api/api_test_util.h"

namespace duet::api {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

TEST(ToEngineRequestTest, AbsentFieldsTakeTheDocumentedDefaults) {
  const engine::GenerateRequest request = ToEngineRequest(v1::GenerateRequest(), {5, 6}, GenerationDefaults{});
  EXPECT_THAT(request.prompt_token_ids, ElementsAre(5, 6));
  EXPECT_EQ(request.sampling.temperature, 1.0f);
  EXPECT_FALSE(request.sampling.top_p.has_value());
  EXPECT_FALSE(request.sampling.top_k.has_value());
  EXPECT_FALSE(request.sampling.min_p.has_value());
  EXPECT_FALSE(request.sampling.repetition_penalty.has_value());
  EXPECT_FALSE(request.sampling.seed.has_value());
  EXPECT_FALSE(request.sampling.top_logprobs.has_value());
  EXPECT_FALSE(request.max_tokens.has_value());
  EXPECT_EQ(request.n, 1);
  EXPECT_TRUE(request.skip_special_tokens);
  EXPECT_FALSE(request.ignore_eos);
  EXPECT_EQ(request.min_tokens, 0);
}

// Fields a request leaves unset come from generation_config.json, as over
// HTTP; set ones (explicit zeros included) win; out-of-range defaults are
// ignored.
TEST(ToEngineRequestTest, AbsentFieldsTakeTheModelsGenerationConfig) {
  GenerationDefaults defaults;
  defaults.temperature = 0.6;
  defaults.top_p = 0.95;
  defaults.top_k = 20;
  defaults.repetition_penalty = 1.1;
  const engine::GenerateRequest absent = ToEngineRequest(v1::GenerateRequest(), {1}, defaults);
  EXPECT_FLOAT_EQ(absent.sampling.temperature, 0.6f);
  EXPECT_FLOAT_EQ(absent.sampling.top_p.value_or(-1), 0.95f);
  EXPECT_EQ(absent.sampling.top_k.value_or(-1), 20);
  EXPECT_FLOAT_EQ(absent.sampling.repetition_penalty.value_or(-1), 1.1f);
  EXPECT_FALSE(absent.sampling.min_p.has_value()) << "generation_config has no min_p";

  v1::GenerateRequest proto;
  proto.mutable_sampling()->set_temperature(0);
  proto.mutable_sampling()->set_top_p(0.5f);
  proto.mutable_sampling()->set_top_k(0);
  proto.mutable_sampling()->set_repetition_penalty(1.0f);
  const engine::GenerateRequest set = ToEngineRequest(proto, {1}, defaults);
  EXPECT_EQ(set.sampling.temperature, 0.0f);
  EXPECT_EQ(set.sampling.top_p, 0.5f);
  EXPECT_EQ(set.sampling.top_k, 0);
  EXPECT_EQ(set.sampling.repetition_penalty, 1.0f);

  GenerationDefaults odd;
  odd.top_p = 1.5;
  odd.top_k = -1;
  odd.repetition_penalty = 0;
  const engine::GenerateRequest ignored = ToEngineRequest(v1::GenerateRequest(), {1}, odd);
  EXPECT_FALSE(ignored.sampling.top_p.has_value());
  EXPECT_FALSE(ignored.sampling.top_k.has_value());
  EXPECT_FALSE(ignored.sampling.repetition_penalty.has_value());
}

TEST(ToEngineRequestTest, ExplicitZerosAreKept) {
  v1::GenerateRequest proto;
  proto.mutable_sampling()->set_temperature(0);
  proto.mutable_sampling()->set_seed(0);
  proto.mutable_sampling()->set_top_logprobs(0);
  proto.set_max_tokens(0);
  proto.set_n(0);
  proto.set_skip_special_tokens(false);
  const engine::GenerateRequest request = ToEngineRequest(proto, {1}, GenerationDefaults{});
  EXPECT_EQ(request.sampling.temperature, 0.0f);
  EXPECT_EQ(request.sampling.seed, 0u);
  EXPECT_EQ(request.sampling.top_logprobs, 0);
  EXPECT_EQ(request.max_tokens, 0);  // ValidateRequest rejects it, naming max_tokens
  EXPECT_EQ(request.n, 0);
  EXPECT_FALSE(request.skip_special_tokens);
}

TEST(ToEngineRequestTest, EveryFieldIsCarried) {
  v1::GenerateRequest proto;
  proto.set_request_id("r1");
  v1::SamplingParams* sampling = proto.mutable_sampling();
  sampling->set_temperature(0.7f);
  sampling->set_top_p(0.9f);
  sampling->set_top_k(40);
  sampling->set_min_p(0.05f);
  sampling->set_presence_penalty(0.5f);
  sampling->set_frequency_penalty(-0.5f);
  sampling->set_repetition_penalty(1.1f);
  (*sampling->mutable_logit_bias())[7] = -100.0f;
  sampling->set_seed(1234);
  sampling->set_top_logprobs(3);
  proto.set_max_tokens(9);
  proto.set_min_tokens(2);
  proto.set_ignore_eos(true);
  proto.add_stop("\n\n");
  proto.add_stop_token_ids(11);
  proto.set_n(2);
  proto.set_cache_salt("tenant");
  const engine::GenerateRequest request = ToEngineRequest(proto, {3}, GenerationDefaults{});
  EXPECT_EQ(request.request_id, "r1");
  EXPECT_EQ(request.sampling.temperature, 0.7f);
  EXPECT_EQ(request.sampling.top_p, 0.9f);
  EXPECT_EQ(request.sampling.top_k, 40);
  EXPECT_EQ(request.sampling.min_p, 0.05f);
  EXPECT_EQ(request.sampling.presence_penalty, 0.5f);
  EXPECT_EQ(request.sampling.frequency_penalty, -0.5f);
  EXPECT_EQ(request.sampling.repetition_penalty, 1.1f);
  EXPECT_THAT(request.sampling.logit_bias, ElementsAre(Pair(7, -100.0f)));
  EXPECT_EQ(request.sampling.seed, 1234u);
  EXPECT_EQ(request.sampling.top_logprobs, 3);
  EXPECT_EQ(request.max_tokens, 9);
  EXPECT_EQ(request.min_tokens, 2);
  EXPECT_TRUE(request.ignore_eos);
  EXPECT_THAT(request.stop, ElementsAre("\n\n"));
  EXPECT_THAT(request.stop_token_ids, ElementsAre(11));
  EXPECT_EQ(request.n, 2);
  EXPECT_EQ(request.cache_salt, "tenant");
}

TEST(ToGenerateResponseTest, ADeltaWithLogprobs) {
  engine::EngineEvent event;
  event.index = 1;
  event.token_ids = {10, 11};
  event.text = "ab";
  event.logprobs = {{10, -0.5f, {{10, -0.5f}, {12, -1.5f}}}, {11, -0.25f, {}}};
  event.num_prompt_tokens = 4;
  event.num_cached_prompt_tokens = 2;
  event.num_completion_tokens = 2;
  const v1::GenerateResponse response = ToGenerateResponse(event);
  EXPECT_EQ(response.index(), 1);
  EXPECT_THAT(response.token_ids(), ElementsAre(10, 11));
  EXPECT_EQ(response.text(), "ab");
  ASSERT_EQ(response.logprobs_size(), 2);
  EXPECT_EQ(response.logprobs(0).token_id(), 10);
  EXPECT_EQ(response.logprobs(0).logprob(), -0.5f);
  ASSERT_EQ(response.logprobs(0).top_logprobs_size(), 2);
  EXPECT_EQ(response.logprobs(0).top_logprobs(1).token_id(), 12);
  EXPECT_EQ(response.logprobs(0).top_logprobs(1).logprob(), -1.5f);
  EXPECT_EQ(response.logprobs(1).top_logprobs_size(), 0);
  EXPECT_EQ(response.usage().prompt_tokens(), 4);
  EXPECT_EQ(response.usage().cached_tokens(), 2);
  EXPECT_EQ(response.usage().completion_tokens(), 2);
  EXPECT_FALSE(response.has_finish());
}

TEST(ToGenerateResponseTest, FinishedCarriesTheReasonAndTheMatchedStop) {
  engine::EngineEvent event;
  event.kind = engine::EngineEvent::Kind::kFinished;
  event.finish_reason = engine::FinishReason::kStop;
  event.stop_string = "END";
  v1::GenerateResponse response = ToGenerateResponse(event);
  ASSERT_TRUE(response.has_finish());
  EXPECT_EQ(response.finish().reason(), "stop");
  EXPECT_EQ(response.finish().stop_string(), "END");

  event.stop_string.reset();
  event.stop_token_id = 0;  // id 0 is a real token id, not "unset"
  response = ToGenerateResponse(event);
  EXPECT_EQ(response.finish().matched_stop_case(), v1::Finish::kStopTokenId);
  EXPECT_EQ(response.finish().stop_token_id(), 0);

  event.stop_token_id.reset();
  event.finish_reason = engine::FinishReason::kLength;
  response = ToGenerateResponse(event);
  EXPECT_EQ(response.finish().reason(), "length");
  EXPECT_EQ(response.finish().matched_stop_case(), v1::Finish::MATCHED_STOP_NOT_SET);
}

TEST(ToGrpcStatusTest, KeepsTheCodeAndTheMessage) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  const grpc::Status unavailable = ToGrpcStatus(absl::UnavailableError("rank 1 is gone"));
  EXPECT_EQ(unavailable.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(unavailable.error_message(), "rank 1 is gone");
  EXPECT_EQ(ToGrpcStatus(absl::InvalidArgumentError("x")).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ToGrpcStatus(absl::ResourceExhaustedError("x")).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(ToGrpcStatus(absl::AbortedError("x")).error_code(), grpc::StatusCode::ABORTED);
}

TEST(ChatPromptRequestFromProtoTest, MessagesKwargsAndTheGenerationPrompt) {
  v1::Chat chat;
  v1::ChatMessage* message = chat.add_messages();
  message->set_role("user");
  message->set_content("hi");
  google::protobuf::Struct* kwargs = chat.mutable_chat_template_kwargs();
  (*kwargs->mutable_fields())["enable_thinking"].set_bool_value(false);
  (*kwargs->mutable_fields())["count"].set_number_value(3);
  (*kwargs->mutable_fields())["scale"].set_number_value(0.5);
  (*kwargs->mutable_fields())["name"].set_string_value("x");
  (*kwargs->mutable_fields())["none"].set_null_value(google::protobuf::NULL_VALUE);
  google::protobuf::ListValue* list = (*kwargs->mutable_fields())["list"].mutable_list_value();
  list->add_values()->set_number_value(1);
  (*(*kwargs->mutable_fields())["nested"].mutable_struct_value()->mutable_fields())["a"].set_bool_value(true);

  ChatPromptRequest request = ChatPromptRequestFromProto(chat);
  EXPECT_EQ(request.messages.dump(), R"([{"role":"user","content":"hi"}])");
  EXPECT_TRUE(request.add_generation_prompt);
  const nlohmann::ordered_json& json = request.template_kwargs;
  EXPECT_EQ(json["enable_thinking"], false);
  EXPECT_TRUE(json["count"].is_number_integer());
  EXPECT_EQ(json["count"], 3);
  EXPECT_EQ(json["scale"], 0.5);
  EXPECT_EQ(json["name"], "x");
  EXPECT_TRUE(json["none"].is_null());
  EXPECT_EQ(json["list"].dump(), "[1]");
  EXPECT_EQ(json["nested"].dump(), R"({"a":true})");

  chat.set_add_generation_prompt(false);
  EXPECT_FALSE(ChatPromptRequestFromProto(chat).add_generation_prompt);
}

TEST(PromptTokenIdsTest, TokenIdsPassThroughAndNoInputIsAnError) {
  ModelAssets assets;  // no tokenizer needed for ids
  v1::GenerateRequest request;
  EXPECT_EQ(PromptTokenIds(assets, request).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(PromptTokenIds(assets, request).status().message(), HasSubstr("token_ids"));
  request.mutable_token_ids()->add_ids(4);
  request.mutable_token_ids()->add_ids(999999);
  EXPECT_THAT(PromptTokenIds(assets, request).value(), ElementsAre(4, 999999));
}

TEST(PromptTokenIdsTest, TextGetsThePostProcessorsSpecialTokens) {
  if (!testing::HasTokenizer("llama3_1")) GTEST_SKIP() << "Llama 3.1 tokenizer not found";
  absl::StatusOr<ModelAssets> assets =
      LoadModelAssets(testing::FixtureModelDir("llama"), testing::TokenizerDir("llama3_1"));
  ASSERT_TRUE(assets.ok()) << assets.status();
  v1::GenerateRequest request;
  request.set_text("Hello");
  const std::vector<int32_t> ids = PromptTokenIds(*assets, request).value();
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), 128000);  // <|begin_of_text|>
  EXPECT_EQ(ids, assets->tokenizer->Encode("Hello", /*add_special_tokens=*/true).value());
}

TEST(PromptTokenIdsTest, AChatIsNotGivenSpecialTokensTwice) {
  if (!testing::HasTokenizer("llama3_1")) GTEST_SKIP() << "Llama 3.1 tokenizer not found";
  absl::StatusOr<ModelAssets> assets =
      LoadModelAssets(testing::FixtureModelDir("llama"), testing::TokenizerDir("llama3_1"));
  ASSERT_TRUE(assets.ok()) << assets.status();
  ASSERT_TRUE(assets->chat_template.has_value());
  v1::GenerateRequest request;
  v1::ChatMessage* message = request.mutable_chat()->add_messages();
  message->set_role("user");
  message->set_content("Hello");
  const std::vector<int32_t> ids = PromptTokenIds(*assets, request).value();
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids[0], 128000);  // written by the template
  EXPECT_NE(ids[1], 128000);

  // Tokenize may ask for them anyway.
  const std::vector<int32_t> doubled = ChatTokenIds(*assets, request.chat(), /*add_special_tokens=*/true).value();
  ASSERT_EQ(doubled.size(), ids.size() + 1);
  EXPECT_EQ(doubled[0], 128000);
  EXPECT_EQ(doubled[1], 128000);
}

}  // namespace
}  // namespace duet::api
