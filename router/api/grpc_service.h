// The duet.v1.Duet gRPC service (proto/duet/v1/duet.proto): translation
// between the wire and the engine, nothing more. Generate tokenizes or
// renders the input, validates it once (engine::ValidateRequest), submits
// it and streams the engine's events back; Tokenize, Detokenize and
// GetModelInfo answer from the model assets and the engine.
//
// Cancellation: a Generate handler waits on its events with a short timeout
// and checks whether the client cancelled (or its deadline passed) each time;
// then it aborts the request in the engine, which frees its KV blocks before
// the next step, and ends the call with CANCELLED.
//
// API keys (api_keys.h), when configured, guard every method: the call's
// "authorization" metadata must be "Bearer KEY" (else UNAUTHENTICATED); a
// Generate counts against the key's limits (RESOURCE_EXHAUSTED past them,
// the key's name in the log only) and gets its tenant's prefix-cache salt.
// The health service is not behind the keys.
//
// Thread-safety: the synchronous gRPC server calls the handlers from many
// threads at once; the service's only mutable state is in the keys. It borrows the engine
// and the assets, which must outlive the server running it.
#ifndef DUET_ROUTER_API_GRPC_SERVICE_H_
#define DUET_ROUTER_API_GRPC_SERVICE_H_

#include <memory>

#include "absl/time/time.h"
#include "duet/v1/duet.grpc.pb.h"
#include "router/api/api_keys.h"
#include "router/api/model_assets.h"
#include "router/engine/engine.h"

namespace duet::api {

class DuetService final : public v1::Duet::Service {
 public:
  // `poll_interval`: how long a Generate handler waits for an event before
  // it looks for a cancellation again.
  // `api_keys` may be null: no key needed.
  DuetService(engine::Engine* engine, const ModelAssets* assets, std::shared_ptr<ApiKeys> api_keys = nullptr,
              absl::Duration poll_interval = absl::Milliseconds(20));

  grpc::Status Generate(grpc::ServerContext* context, const v1::GenerateRequest* request,
                        grpc::ServerWriter<v1::GenerateResponse>* writer) override;
  grpc::Status Tokenize(grpc::ServerContext* context, const v1::TokenizeRequest* request,
                        v1::TokenizeResponse* response) override;
  grpc::Status Detokenize(grpc::ServerContext* context, const v1::DetokenizeRequest* request,
                          v1::DetokenizeResponse* response) override;
  grpc::Status GetModelInfo(grpc::ServerContext* context, const v1::GetModelInfoRequest* request,
                            v1::GetModelInfoResponse* response) override;

 private:
  // OK with the caller's tenant (nullptr when no keys are configured), or
  // UNAUTHENTICATED.
  grpc::Status Authenticate(const grpc::ServerContext& context, Tenant** tenant) const;

  engine::Engine* const engine_;
  const ModelAssets* const assets_;
  const std::shared_ptr<ApiKeys> api_keys_;
  const absl::Duration poll_interval_;
};

}  // namespace duet::api

#endif  // DUET_ROUTER_API_GRPC_SERVICE_H_
