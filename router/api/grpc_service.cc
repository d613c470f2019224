#include "router/api/grpc_service.h"

#include <memory>
#include <utility>
#include <vector>

#include "glog/logging.h"
#include "router/api/grpc_translation.h"

namespace duet::api {

DuetService::DuetService(engine::Engine* engine, const ModelAssets* assets, std::shared_ptr<ApiKeys> api_keys,
                         absl::Duration poll_interval)
    : engine_(engine), assets_(assets), api_keys_(std::move(api_keys)), poll_interval_(poll_interval) {}

grpc::Status DuetService::Authenticate(const grpc::ServerContext& context, Tenant** tenant) const {
  *tenant = nullptr;
  if (api_keys_ == nullptr) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find("authorization");
  const std::string_view given =
      it == metadata.end() ? std::string_view() : std::string_view(it->second.data(), it->second.size());
  *tenant = api_keys_->Authenticate(given);
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
  if (tenant != nullptr) engine_request.cache_salt = api_keys_->CacheSalt(tenant, engine_request.cache_salt);
  absl::StatusOr<engine::ValidatedRequest> validated =
      engine::ValidateRequest(std::move(engine_request), engine_->request_limits());
  if (!validated.ok()) return ToGrpcStatus(validated.status());
  TenantLease lease;  // held until the call ends
  if (tenant != nullptr) {
    ApiKeys::Admission admission = api_keys_->Admit(*tenant);
    if (!admission.admitted) {
      LOG(WARNING) << "API key " << tenant->name() << " is over its " << admission.limit << " limit: gRPC request "
                   << request->request_id() << " refused";
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "too many requests for this API key; retry later");
    }
    lease = std::move(admission.lease);
  }

  // Shared with the engine: events of an aborted request may still arrive
  // after this handler returned.
  auto events = std::make_shared<engine::EventQueue>();
  const absl::StatusOr<uint64_t> id = engine_->Submit(*std::move(validated), events);
  if (!id.ok()) return ToGrpcStatus(id.status());

  engine::EngineEvent event;
  while (true) {
    if (!events->Next(&event, poll_interval_)) {
      if (context->IsCancelled()) {
        engine_->Abort(*id);
        return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client");
      }
      continue;
    }
    if (event.kind == engine::EngineEvent::Kind::kError) {
      LOG(WARNING) << "request " << *id << " (" << request->request_id() << ") failed: " << event.error;
      return ToGrpcStatus(event.error);
    }
    const bool empty_delta =
        event.kind == engine::EngineEvent::Kind::kDelta && event.token_ids.empty() && event.text.empty();
    if (!empty_delta && !writer->Write(ToGenerateResponse(event))) {
      engine_->Abort(*id);
      return grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
    }
    if (event.last) return grpc::Status::OK;
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
