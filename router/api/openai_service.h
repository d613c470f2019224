// The OpenAI-compatible HTTP gateway over the engine, as one HttpHandler:
//   POST /v1/chat/completions, POST /v1/completions (complete or streamed as
//   server-sent events), GET /v1/models, POST /tokenize, POST /detokenize,
//   GET /health (200 while the workers serve, 503 otherwise), GET /metrics.
//
// A request is parsed and validated (openai_protocol.h), its prompt built
// (chat template or tokenizer), and submitted to the engine: one engine
// request per prompt, each with n samples; choice index = prompt index × n +
// sample index. The engine's events are turned into chunks on the engine's
// output thread and written to the HttpResponder without blocking. A client
// that goes away aborts its engine requests.
//
// API keys (api_keys.h), when configured, guard every route but /health and
// /metrics; a generation request counts against its key's rate and
// concurrency limits and, with several keys, gets its tenant's prefix-cache
// salt. Each finished generation request is logged in one line (id, key
// name, token counts, outcome), never with its prompt or output text.
//
// Errors use the OpenAI envelope: 400 for invalid requests, 401 for a
// missing or wrong API key, 404 for an unknown model or path, 429 with
// Retry-After when the engine's queue is full or the key is over a limit
// (whose name appears in the log, not in the response), 503 while the
// workers are down. Inside a stream an error is
// `data: {"error": ...}` followed by `data: [DONE]`.
//
// Thread-safety: Handle may be called from any number of threads at once.
// The engine and the assets must outlive the service. A response in flight
// lives on in the engine's sinks after the service is gone, and the engine's
// destructor still ends it (an Aborted error event), so the Metrics must
// outlive the engine.
#ifndef DUET_ROUTER_API_OPENAI_SERVICE_H_
#define DUET_ROUTER_API_OPENAI_SERVICE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "router/api/api_keys.h"
#include "router/api/http_server.h"
#include "router/api/metrics.h"
#include "router/api/model_assets.h"
#include "router/api/openai_protocol.h"
#include "router/api/tool_call_parser.h"
#include "router/engine/engine.h"

namespace duet::api {

struct OpenAiOptions {
  // The name /v1/models reports and requests must use (or omit).
  std::string served_model_name;
  // When set, every route but /health and /metrics needs
  // "Authorization: Bearer <key>" with one of these keys.
  std::shared_ptr<ApiKeys> api_keys;
  // One log line per finished generation request (never its text).
  bool log_requests = true;
  // Split <think> ... </think> into reasoning_content when the tokenizer
  // has both tags as tokens; false keeps the whole output in content.
  bool enable_reasoning_parser = true;
  // How tool calls are read from the output: "auto" (the format the chat
  // template writes, if any), "none", or a format name (tool_call_parser.h).
  std::string tool_call_parser = "auto";
  // Most samples per prompt (also bounded by the engine's limit).
  int32_t max_n = 16;
  // Fill sampling fields a request leaves unset from generation_config.json.
  bool use_generation_defaults = true;
  // Sent as Retry-After with 429.
  int32_t retry_after_seconds = 1;
};

class OpenAiService {
 public:
  OpenAiService(engine::Engine* engine, const ModelAssets* assets, OpenAiOptions options, Metrics* metrics);

  OpenAiService(const OpenAiService&) = delete;
  OpenAiService& operator=(const OpenAiService&) = delete;

  // Answers one request through `responder`, now or later.
  void Handle(const HttpRequest& request, std::shared_ptr<HttpResponder> responder);

  // Handle as the HttpServer's handler; the service must outlive the server.
  HttpHandler AsHandler() {
    return [this](const HttpRequest& request, std::shared_ptr<HttpResponder> responder) {
      Handle(request, std::move(responder));
    };
  }

 private:
  struct Prompt {
    std::vector<int32_t> token_ids;
    bool opens_reasoning = false;  // the template already opened <think>
    // The template wrote a closed think block where the answer starts (e.g.
    // Qwen3's enable_thinking=false): no reasoning comes.
    bool closes_reasoning = false;
  };
  enum class Endpoint { kChat, kCompletion };

  // Whether the prompt ends with </think> and whitespace (needs think_tag_ids_).
  bool PromptClosesReasoning(absl::Span<const int32_t> token_ids) const;
  void Route(const HttpRequest& request, const std::shared_ptr<HttpResponder>& responder);
  // Whether the request may go on; `tenant` is its key's holder (nullptr
  // when no keys are configured).
  bool Authorized(const HttpRequest& request, Tenant** tenant) const;

  // Where a generation request comes from.
  struct Caller {
    Tenant* tenant = nullptr;
    absl::Time arrival;
  };
  void HandleChat(const Json& body, const std::shared_ptr<HttpResponder>& responder, const Caller& caller);
  void HandleCompletion(const Json& body, const std::shared_ptr<HttpResponder>& responder, const Caller& caller);
  void HandleModels(const std::shared_ptr<HttpResponder>& responder) const;
  void HandleTokenize(const Json& body, const std::shared_ptr<HttpResponder>& responder) const;
  void HandleDetokenize(const Json& body, const std::shared_ptr<HttpResponder>& responder) const;
  void HandleHealth(const std::shared_ptr<HttpResponder>& responder) const;

  // Validates every prompt, submits them and answers through the responder.
  void Generate(Endpoint endpoint, const GenerationSettings& settings, std::vector<Prompt> prompts,
                const std::shared_ptr<HttpResponder>& responder, const Caller& caller);

  ProtocolLimits Limits() const;
  void LogUnknownFields(const std::vector<std::string>& names);
  std::optional<int32_t> TokenId(const char* token) const;

  engine::Engine* const engine_;
  const ModelAssets* const assets_;
  const OpenAiOptions options_;
  Metrics* const metrics_;
  const int64_t created_;  // Unix seconds, reported by /v1/models
  // Both think tags as token ids, when the parser applies to this model.
  std::optional<std::pair<int32_t, int32_t>> think_tag_ids_;
  // The format tool calls are parsed in; nullopt: tools stay text.
  std::optional<ToolCallFormat> tool_format_;
  // Output constraints, compiled once per distinct constraint.
  std::shared_ptr<grammar::GrammarCache> grammars_;

  absl::Mutex mu_;
  absl::flat_hash_set<std::string> logged_unknown_fields_ ABSL_GUARDED_BY(mu_);
};

// The response to send for a Submit or event error: 429 (ResourceExhausted),
// 503 (Unavailable, Aborted), 400 (InvalidArgument), 500 otherwise.
OpenAiError ErrorForStatus(const absl::Status& status);

}  // namespace duet::api

#endif  // DUET_ROUTER_API_OPENAI_SERVICE_H_
