#include "router/api/grpc_service.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/str_cat.h"
#include "glog/logging.h"
#include "router/api/grpc_translation.h"

namespace duet::api {

namespace {

// What one Generate call did, logged and counted when it ends however it
// ends (the destructor runs on every return path).
class GenerateRecord {
 public:
  GenerateRecord(std::string request_id, const Tenant* tenant, const DuetServiceOptions& options)
      : request_id_(std::move(request_id)),
        key_name_(tenant == nullptr ? "" : tenant->name()),
        options_(options),
        arrival_(absl::Now()) {}
  GenerateRecord(const GenerateRecord&) = delete;
  GenerateRecord& operator=(const GenerateRecord&) = delete;

  ~GenerateRecord() {
    int64_t completion_tokens = 0;
    std::string reasons;
    for (const Sample& sample : samples_) {
      completion_tokens += sample.completion_tokens;
      if (!reasons.empty()) reasons += ",";
      reasons += sample.finish_reason == engine::FinishReason::kNone ? "none"
                                                                      : engine::FinishReasonName(sample.finish_reason);
    }
    if (submitted_ && !key_name_.empty() && options_.metrics != nullptr) {
      options_.metrics->CountKeyTokens(key_name_, prompt_tokens_, completion_tokens);
    }
    if (!options_.log_requests || !submitted_) return;
    LOG(INFO) << "request " << request_id_ << " grpc" << (key_name_.empty() ? "" : " key=") << key_name_
              << " status=" << (status_.ok() ? "OK" : GrpcCodeName(status_.error_code()))
              << " prompt_tokens=" << prompt_tokens_ << " cached_tokens=" << cached_tokens_
              << " completion_tokens=" << completion_tokens << " finish=" << reasons
              << " seconds=" << absl::ToDoubleSeconds(absl::Now() - arrival_);
  }

  void Submitted(std::string engine_id) {
    submitted_ = true;
    if (request_id_.empty()) request_id_ = std::move(engine_id);
  }

  void Observe(const engine::EngineEvent& event) {
    if (event.kind == engine::EngineEvent::Kind::kError) return;
    if (event.index >= static_cast<int32_t>(samples_.size())) samples_.resize(event.index + 1);
    Sample& sample = samples_[event.index];
    sample.completion_tokens = event.num_completion_tokens;
    if (event.kind == engine::EngineEvent::Kind::kFinished) sample.finish_reason = event.finish_reason;
    prompt_tokens_ = std::max<int64_t>(prompt_tokens_, event.num_prompt_tokens);
    cached_tokens_ = std::max<int64_t>(cached_tokens_, event.num_cached_prompt_tokens);
  }

  grpc::Status End(grpc::Status status) {
    status_ = status;
    return status;
  }

 private:
  struct Sample {
    int64_t completion_tokens = 0;
    engine::FinishReason finish_reason = engine::FinishReason::kNone;
  };

  static std::string GrpcCodeName(grpc::StatusCode code) {
    return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  }

  std::string request_id_;
  const std::string key_name_;
  const DuetServiceOptions& options_;
  const absl::Time arrival_;
  bool submitted_ = false;
  grpc::Status status_;
  int64_t prompt_tokens_ = 0;
  int64_t cached_tokens_ = 0;
  std::vector<Sample> samples_;
};

}  // namespace

DuetService::DuetService(engine::Engine* engine, const ModelAssets* assets, DuetServiceOptions options)
    : engine_(engine), assets_(assets), options_(std::move(options)) {
  if (options_.metrics != nullptr && options_.api_keys != nullptr) {
    for (const std::string& name : options_.api_keys->names()) options_.metrics->AddKey(name);
  }
  grammars_ = assets_->grammars != nullptr ? assets_->grammars
                                           : std::make_shared<grammar::GrammarCache>(assets_->tokenizer.get());
}

grpc::Status DuetService::Authenticate(const grpc::ServerContext& context, Tenant** tenant) const {
  *tenant = nullptr;
  if (options_.api_keys == nullptr) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find("authorization");
  const std::string_view given =
      it == metadata.end() ? std::string_view() : std::string_view(it->second.data(), it->second.size());
  *tenant = options_.api_keys->Authenticate(given);
  if (*tenant == nullptr) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "missing or wrong API key (metadata authorization: Bearer KEY)");
  }
  return grpc::Status::OK;
}

grpc::Status DuetService::Generate(grpc::ServerContext* context, const v1::GenerateRequest* request,
                                   grpc::ServerWriter<v1::GenerateResponse>* writer) {
  Tenant* tenant = nullptr;
  if (grpc::Status auth = Authenticate(*context, &tenant); !auth.ok()) return auth;
  absl::StatusOr<std::vector<int32_t>> prompt = PromptTokenIds(*assets_, *request);
  if (!prompt.ok()) return ToGrpcStatus(prompt.status());
  engine::GenerateRequest engine_request = ToEngineRequest(*request, *std::move(prompt), assets_->config.generation);
  absl::StatusOr<std::optional<grammar::GrammarSpec>> spec = StructuredOutputSpec(*request);
  if (!spec.ok()) return ToGrpcStatus(spec.status());
  if (spec->has_value()) {
    absl::StatusOr<std::shared_ptr<grammar::CompiledGrammar>> compiled = grammars_->Compile(**spec);
    if (!compiled.ok()) return ToGrpcStatus(compiled.status());
    engine_request.grammar = *std::move(compiled);
  }
  if (tenant != nullptr) {
    engine_request.cache_salt = options_.api_keys->CacheSalt(tenant, engine_request.cache_salt);
  }
  absl::StatusOr<engine::ValidatedRequest> validated =
      engine::ValidateRequest(std::move(engine_request), engine_->request_limits());
  if (!validated.ok()) return ToGrpcStatus(validated.status());
  TenantLease lease;  // held until the call ends
  if (tenant != nullptr) {
    ApiKeys::Admission admission = options_.api_keys->Admit(*tenant);
    if (!admission.admitted) {
      LOG(WARNING) << "API key " << tenant->name() << " is over its " << admission.limit << " limit: gRPC request "
                   << request->request_id() << " refused";
      if (options_.metrics != nullptr) options_.metrics->CountKeyRefused(tenant->name(), admission.limit);
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "too many requests for this API key; retry later");
    }
    lease = std::move(admission.lease);
    if (options_.metrics != nullptr) options_.metrics->CountKeyRequest(tenant->name());
  }
  // Declared after the lease: logged and counted once the lease is back.
  GenerateRecord record(request->request_id(), tenant, options_);

  // Shared with the engine: events of an aborted request may still arrive
  // after this handler returned.
  auto events = std::make_shared<engine::EventQueue>();
  const absl::StatusOr<uint64_t> id = engine_->Submit(*std::move(validated), events);
  if (!id.ok()) return ToGrpcStatus(id.status());
  record.Submitted(StrCat(*id));

  engine::EngineEvent event;
  while (true) {
    if (!events->Next(&event, options_.poll_interval)) {
      if (context->IsCancelled()) {
        engine_->Abort(*id);
        return record.End(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
      }
      continue;
    }
    record.Observe(event);
    if (event.kind == engine::EngineEvent::Kind::kError) {
      LOG(WARNING) << "request " << *id << " (" << request->request_id() << ") failed: " << event.error;
      return record.End(ToGrpcStatus(event.error));
    }
    const bool empty_delta =
        event.kind == engine::EngineEvent::Kind::kDelta && event.token_ids.empty() && event.text.empty();
    if (!empty_delta && !writer->Write(ToGenerateResponse(event))) {
      engine_->Abort(*id);
      return record.End(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
    }
    if (event.last) return record.End(grpc::Status::OK);
  }
}

grpc::Status DuetService::Tokenize(grpc::ServerContext* context, const v1::TokenizeRequest* request,
                                   v1::TokenizeResponse* response) {
  Tenant* tenant = nullptr;
  if (grpc::Status auth = Authenticate(*context, &tenant); !auth.ok()) return auth;
  absl::StatusOr<std::vector<int32_t>> ids;
  switch (request->input_case()) {
    case v1::TokenizeRequest::kText:
      ids = assets_->tokenizer->Encode(request->text(),
                                       !request->has_add_special_tokens() || request->add_special_tokens());
      break;
    case v1::TokenizeRequest::kChat:
      ids = ChatTokenIds(*assets_, request->chat(), request->add_special_tokens());
      break;
    case v1::TokenizeRequest::INPUT_NOT_SET:
      ids = absl::InvalidArgumentError("the request has no input: set text or chat");
      break;
  }
  if (!ids.ok()) return ToGrpcStatus(ids.status());
  response->mutable_token_ids()->Add(ids->begin(), ids->end());
  response->set_count(static_cast<int32_t>(ids->size()));
  response->set_max_model_len(engine_->model_info().max_model_len);
  return grpc::Status::OK;
}

grpc::Status DuetService::Detokenize(grpc::ServerContext* context, const v1::DetokenizeRequest* request,
                                     v1::DetokenizeResponse* response) {
  Tenant* tenant = nullptr;
  if (grpc::Status auth = Authenticate(*context, &tenant); !auth.ok()) return auth;
  const std::vector<int32_t> ids(request->token_ids().begin(), request->token_ids().end());
  absl::StatusOr<std::string> text = assets_->tokenizer->Decode(
      ids, !request->has_skip_special_tokens() || request->skip_special_tokens());
  if (!text.ok()) return ToGrpcStatus(text.status());
  response->set_text(*std::move(text));
  return grpc::Status::OK;
}

grpc::Status DuetService::GetModelInfo(grpc::ServerContext* context, const v1::GetModelInfoRequest*,
                                       v1::GetModelInfoResponse* response) {
  Tenant* tenant = nullptr;
  if (grpc::Status auth = Authenticate(*context, &tenant); !auth.ok()) return auth;
  const engine::ModelInfo& info = engine_->model_info();
  response->set_model_name(info.model_name);
  response->set_architecture(info.architecture);
  response->set_max_model_len(info.max_model_len);
  response->set_vocab_size(info.vocab_size);
  response->mutable_eos_token_ids()->Add(info.eos_token_ids.begin(), info.eos_token_ids.end());
  response->set_world_size(info.world_size);
  response->set_parallel_mode(info.parallel_mode);
  response->set_device(info.device);
  response->set_num_kv_blocks(info.num_kv_blocks);
  response->set_kv_block_size(info.kv_block_size);
  response->set_kv_capacity_tokens(int64_t{info.num_kv_blocks} * info.kv_block_size);
  return grpc::Status::OK;
}

}  // namespace duet::api
