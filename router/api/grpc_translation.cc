#include "router/api/grpc_translation.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "common/status_macros.h"
#include "google/protobuf/struct.pb.h"

namespace duet::api {
namespace {

nlohmann::ordered_json ToJson(const google::protobuf::Value& value);

nlohmann::ordered_json ToJson(const google::protobuf::Struct& object) {
  nlohmann::ordered_json json = nlohmann::ordered_json::object();
  for (const auto& [key, member] : object.fields()) json[key] = ToJson(member);
  return json;
}

nlohmann::ordered_json ToJson(const google::protobuf::Value& value) {
  switch (value.kind_case()) {
    case google::protobuf::Value::kNumberValue: {
      const double number = value.number_value();
      // 2^53: beyond it a double no longer holds every integer.
      if (std::isfinite(number) && std::trunc(number) == number && std::fabs(number) <= 9007199254740992.0) {
        return static_cast<int64_t>(number);
      }
      return number;
    }
    case google::protobuf::Value::kStringValue:
      return value.string_value();
    case google::protobuf::Value::kBoolValue:
      return value.bool_value();
    case google::protobuf::Value::kStructValue:
      return ToJson(value.struct_value());
    case google::protobuf::Value::kListValue: {
      nlohmann::ordered_json list = nlohmann::ordered_json::array();
      for (const google::protobuf::Value& item : value.list_value().values()) list.push_back(ToJson(item));
      return list;
    }
    case google::protobuf::Value::kNullValue:
    case google::protobuf::Value::KIND_NOT_SET:
      break;
  }
  return nullptr;
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const absl::string_view message = status.message();
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(message.data(), message.size()));
}

ChatPromptRequest ChatPromptRequestFromProto(const v1::Chat& chat) {
  ChatPromptRequest request;
  for (const v1::ChatMessage& message : chat.messages()) {
    request.messages.push_back({{"role", message.role()}, {"content", message.content()}});
  }
  if (chat.has_chat_template_kwargs()) request.template_kwargs = ToJson(chat.chat_template_kwargs());
  request.add_generation_prompt = !chat.has_add_generation_prompt() || chat.add_generation_prompt();
  return request;
}

absl::StatusOr<std::vector<int32_t>> ChatTokenIds(const ModelAssets& assets, const v1::Chat& chat,
                                                  bool add_special_tokens) {
  DUET_ASSIGN_OR_RETURN(ChatPrompt prompt, BuildChatPrompt(assets, ChatPromptRequestFromProto(chat)));
  if (!add_special_tokens) return std::move(prompt.token_ids);
  return assets.tokenizer->Encode(prompt.text, /*add_special_tokens=*/true);
}

absl::StatusOr<std::vector<int32_t>> PromptTokenIds(const ModelAssets& assets,
                                                    const v1::GenerateRequest& request) {
  switch (request.input_case()) {
    case v1::GenerateRequest::kText:
      return assets.tokenizer->Encode(request.text(), /*add_special_tokens=*/true);
    case v1::GenerateRequest::kTokenIds:
      return std::vector<int32_t>(request.token_ids().ids().begin(), request.token_ids().ids().end());
    case v1::GenerateRequest::kChat:
      return ChatTokenIds(assets, request.chat(), /*add_special_tokens=*/false);
    case v1::GenerateRequest::INPUT_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("the request has no input: set one of text, token_ids or chat");
}

engine::GenerateRequest ToEngineRequest(const v1::GenerateRequest& request,
                                        std::vector<int32_t> prompt_token_ids,
                                        const GenerationDefaults& defaults) {
  engine::GenerateRequest out;
  out.request_id = request.request_id();
  out.prompt_token_ids = std::move(prompt_token_ids);

  const v1::SamplingParams& in = request.sampling();
  engine::SamplingOptions& sampling = out.sampling;
  sampling.temperature = in.has_temperature()
                             ? in.temperature()
                             : static_cast<float>(defaults.temperature.value_or(1.0));
  if (in.has_top_p()) {
    sampling.top_p = in.top_p();
  } else if (defaults.top_p.has_value() && *defaults.top_p > 0 && *defaults.top_p <= 1) {
    sampling.top_p = static_cast<float>(*defaults.top_p);
  }
  if (in.has_top_k()) {
    sampling.top_k = in.top_k();
  } else if (defaults.top_k.has_value() && *defaults.top_k > 0) {
    sampling.top_k = static_cast<int32_t>(std::min<int64_t>(*defaults.top_k, INT32_MAX));
  }
  if (in.has_min_p()) sampling.min_p = in.min_p();
  sampling.presence_penalty = in.presence_penalty();
  sampling.frequency_penalty = in.frequency_penalty();
  if (in.has_repetition_penalty()) {
    sampling.repetition_penalty = in.repetition_penalty();
  } else if (defaults.repetition_penalty.has_value() && *defaults.repetition_penalty > 0) {
    sampling.repetition_penalty = static_cast<float>(*defaults.repetition_penalty);
  }
  sampling.logit_bias.insert(in.logit_bias().begin(), in.logit_bias().end());
  if (in.has_seed()) sampling.seed = in.seed();
  if (in.has_top_logprobs()) sampling.top_logprobs = in.top_logprobs();

  if (request.has_max_tokens()) out.max_tokens = request.max_tokens();
  out.min_tokens = request.min_tokens();
  out.ignore_eos = request.ignore_eos();
  out.stop.assign(request.stop().begin(), request.stop().end());
  out.stop_token_ids.assign(request.stop_token_ids().begin(), request.stop_token_ids().end());
  out.n = request.has_n() ? request.n() : 1;
  out.skip_special_tokens = !request.has_skip_special_tokens() || request.skip_special_tokens();
  out.cache_salt = request.cache_salt();
  return out;
}

absl::StatusOr<std::optional<grammar::GrammarSpec>> StructuredOutputSpec(const v1::GenerateRequest& request) {
  if (!request.has_structured_output()) return std::optional<grammar::GrammarSpec>();
  const v1::StructuredOutput& structured = request.structured_output();
  grammar::GrammarSpec spec;
  switch (structured.constraint_case()) {
    case v1::StructuredOutput::kJsonSchema: {
      spec.kind = grammar::GrammarSpec::Kind::kJsonSchema;
      spec.schema = nlohmann::ordered_json::parse(structured.json_schema(), nullptr, /*allow_exceptions=*/false);
      if (spec.schema.is_discarded() || !(spec.schema.is_object() || spec.schema.is_boolean())) {
        return absl::InvalidArgumentError("structured_output.json_schema must be the JSON text of a JSON Schema");
      }
      break;
    }
    case v1::StructuredOutput::kJsonObject:
      if (!structured.json_object()) {
        return absl::InvalidArgumentError("structured_output.json_object must be true when set");
      }
      spec.kind = grammar::GrammarSpec::Kind::kJsonObject;
      break;
    case v1::StructuredOutput::kRegex:
      spec.kind = grammar::GrammarSpec::Kind::kRegex;
      spec.regex = structured.regex();
      break;
    case v1::StructuredOutput::kChoice:
      spec.kind = grammar::GrammarSpec::Kind::kChoice;
      spec.choices.assign(structured.choice().choices().begin(), structured.choice().choices().end());
      if (spec.choices.empty()) return absl::InvalidArgumentError("structured_output.choice lists no choices");
      break;
    case v1::StructuredOutput::CONSTRAINT_NOT_SET:
      return std::optional<grammar::GrammarSpec>();
  }
  return std::optional<grammar::GrammarSpec>(std::move(spec));
}

v1::GenerateResponse ToGenerateResponse(const engine::EngineEvent& event) {
  v1::GenerateResponse response;
  response.set_index(event.index);
  response.mutable_token_ids()->Add(event.token_ids.begin(), event.token_ids.end());
  response.set_text(event.text);
  for (const engine::TokenLogprob& logprob : event.logprobs) {
    v1::TokenLogprob* out = response.add_logprobs();
    out->set_token_id(logprob.token_id);
    out->set_logprob(logprob.logprob);
    for (const auto& [token_id, alternative] : logprob.top_logprobs) {
      v1::TopLogprob* top = out->add_top_logprobs();
      top->set_token_id(token_id);
      top->set_logprob(alternative);
    }
  }
  v1::Usage* usage = response.mutable_usage();
  usage->set_prompt_tokens(event.num_prompt_tokens);
  usage->set_completion_tokens(event.num_completion_tokens);
  usage->set_cached_tokens(event.num_cached_prompt_tokens);
  if (event.kind == engine::EngineEvent::Kind::kFinished) {
    v1::Finish* finish = response.mutable_finish();
    finish->set_reason(engine::FinishReasonName(event.finish_reason));
    if (event.stop_string.has_value()) {
      finish->set_stop_string(*event.stop_string);
    } else if (event.stop_token_id.has_value()) {
      finish->set_stop_token_id(*event.stop_token_id);
    }
  }
  return response;
}

}  // namespace duet::api
