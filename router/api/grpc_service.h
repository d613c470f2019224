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
// The health service is not behind the keys. With metrics, a key's admitted
// and refused Generate calls and their tokens are counted under its name
// (the same /metrics counters as HTTP); each finished Generate is logged in
// one line (id, key name, status, token counts, finish reasons, seconds),
// never with its text, unless log_requests is off.
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
#include "router/api/metrics.h"
#include "router/api/model_assets.h"
#include "router/engine/engine.h"

namespace duet::api {

struct DuetServiceOptions {
  // Null: no key needed.
  std::shared_ptr<ApiKeys> api_keys;
  // Null: nothing counted. Borrowed; must outlive the service.
  Metrics* metrics = nullptr;
  bool log_requests = true;
  // How long a Generate handler waits for an event before it looks for a
  // cancellation again.
  absl::Duration poll_interval = absl::Milliseconds(20);
};

class DuetService final : public v1::Duet::Service {
 public:
  DuetService(engine::Engine* engine, const ModelAssets* assets, DuetServiceOptions options = {});

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
  const DuetServiceOptions options_;
  std::shared_ptr<grammar::GrammarCache> grammars_;
};

}  // namespace duet::api

#endif  // DUET_ROUTER_API_GRPC_SERVICE_H_
