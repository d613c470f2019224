#include "router/api/openai_service.h"

#include <algorithm>
#include <exception>
#include <random>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "common/str_cat.h"
#include "glog/logging.h"
#include "router/api/chat_prompt.h"
#include "router/api/reasoning_parser.h"

namespace duet::api {
namespace {

constexpr char kJson[] = "application/json";
constexpr size_t kMaxTemplateMessageBytes = 256;

void SendJson(HttpResponder& responder, int status, const Json& json,
              std::map<std::string, std::string> headers = {}) {
  responder.Send(status, kJson, DumpJson(json), std::move(headers));
}

void SendError(HttpResponder& responder, const OpenAiError& error, std::map<std::string, std::string> headers = {}) {
  SendJson(responder, error.status, ErrorJson(error), std::move(headers));
}

std::string RandomHex(int num_chars) {
  thread_local std::mt19937_64 generator{std::random_device{}()};
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  uint64_t bits = 0;
  for (int i = 0; i < num_chars; ++i) {
    if (i % 16 == 0) bits = generator();
    out += kDigits[bits & 0xF];
    bits >>= 4;
  }
  return out;
}

// A chat-prompt failure as the client sees it. Template errors carry the
// template's own message (its raise_exception text), cut short.
OpenAiError ChatPromptError(const absl::Status& status) {
  const absl::string_view message = status.message();
  if (absl::IsResourceExhausted(status)) {
    return InvalidRequestError("the messages are too large to render with the chat template", "messages");
  }
  if (absl::IsFailedPrecondition(status)) {
    return InvalidRequestError("the model has no chat template; use /v1/completions", "messages");
  }
  std::string detail(message.data(), std::min(message.size(), kMaxTemplateMessageBytes));
  return InvalidRequestError(StrCat("the chat template could not render the messages: ", detail), "messages");
}

// What a GenerationCall needs to know about its request.
struct CallConfig {
  bool chat = true;
  ResponseHeader header;
  bool stream = false;
  bool include_usage = false;
  bool logprobs = false;
  int32_t n = 1;
  bool reasoning = false;  // split <think> blocks (chat only)
  // Read tool calls out of the content in this format (chat with tools).
  std::optional<ToolCallFormat> tool_format;
  bool parallel_tool_calls = true;
  std::vector<int32_t> eos_token_ids;
  const tokenizer::Tokenizer* tokenizer = nullptr;
  Metrics* metrics = nullptr;
  absl::Time arrival;
  std::string key_name;  // the API key's, or empty
  TenantLease lease;     // the key's concurrency slot, given back when done
  bool log = true;       // log the request's outcome (never its text)
};

// One OpenAI request in flight: the engine requests of its prompts feed
// their events here (CallSink), and it answers through the responder.
// Events that arrive while the requests are still being submitted are kept
// and delivered by Start. Thread-safe.
class GenerationCall {
 public:
  GenerationCall(CallConfig config, std::shared_ptr<HttpResponder> responder,
                 const std::vector<bool>& prompts_open_reasoning, const std::vector<int32_t>& num_prompt_tokens)
      : config_(std::move(config)), responder_(std::move(responder)) {
    for (size_t p = 0; p < num_prompt_tokens.size(); ++p) {
      prompts_.push_back(PromptState{num_prompt_tokens[p]});
      for (int32_t s = 0; s < config_.n; ++s) {
        Choice& choice = choices_.emplace_back();
        if (config_.reasoning) choice.parser.emplace(prompts_open_reasoning[p]);
        if (config_.tool_format) choice.tools.emplace(*config_.tool_format, config_.parallel_tool_calls);
        if (config_.logprobs) choice.logprobs = config_.chat ? EmptyChatLogprobs() : EmptyCompletionLogprobs();
      }
    }
    remaining_ = static_cast<int32_t>(prompts_.size());
  }

  void OnEvent(int32_t prompt_index, engine::EngineEvent event) {
    absl::MutexLock lock(&mu_);
    if (phase_ == Phase::kSubmitting) {
      early_events_.emplace_back(prompt_index, std::move(event));
    } else if (phase_ == Phase::kRunning) {
      Process(prompt_index, event);
    }
  }

  // Every request was submitted: the response begins.
  void Start() {
    absl::MutexLock lock(&mu_);
    phase_ = Phase::kRunning;
    if (config_.stream) {
      responder_->StartStream(200, "text/event-stream", {{"Cache-Control", "no-cache"}});
      if (config_.chat) {
        for (size_t i = 0; i < choices_.size(); ++i) {
          WriteChatChunk(static_cast<int32_t>(i), Json{{"role", "assistant"}, {"content", ""}}, nullptr, nullptr,
                         nullptr);
        }
      }
    }
    std::vector<std::pair<int32_t, engine::EngineEvent>> events;
    events.swap(early_events_);
    for (auto& [prompt_index, event] : events) {
      if (phase_ != Phase::kRunning) break;
      Process(prompt_index, event);
    }
  }

  // A submission failed and the service answers with the error: nothing
  // more is sent from here.
  void Abandon() {
    absl::MutexLock lock(&mu_);
    phase_ = Phase::kDone;
    early_events_.clear();
    config_.lease.Release();
  }

 private:
  enum class Phase { kSubmitting, kRunning, kDone };

  struct PromptState {
    int32_t num_prompt_tokens = 0;
    int32_t num_cached_prompt_tokens = 0;  // as sample 0 saw it
    bool first_token_seen = false;
  };

  struct ToolCall {
    std::string id;
    std::string name;
    std::string arguments;
  };

  struct Choice {
    std::optional<ReasoningParser> parser;
    std::optional<ToolCallParser> tools;
    std::vector<ToolCall> tool_calls;
    std::string content;
    std::string reasoning;
    Json logprobs = nullptr;
    int64_t text_offset = 0;  // completions logprobs: characters so far
    int32_t num_completion_tokens = 0;
    std::optional<absl::Time> last_token_time;
    engine::FinishReason finish_reason = engine::FinishReason::kNone;
    Json stop_reason = nullptr;
  };

  void Process(int32_t prompt_index, engine::EngineEvent& event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (event.kind == engine::EngineEvent::Kind::kError) {
      Fail(event.error);
      return;
    }
    PromptState& prompt = prompts_[prompt_index];
    const int32_t index = prompt_index * config_.n + event.index;
    Choice& choice = choices_[index];
    const absl::Time now = absl::Now();
    if (!event.token_ids.empty()) ObserveTokens(prompt, choice, event.token_ids.size(), now);
    if (event.index == 0) prompt.num_cached_prompt_tokens = event.num_cached_prompt_tokens;
    choice.num_completion_tokens = event.num_completion_tokens;

    Json logprobs = nullptr;
    if (config_.logprobs && !event.logprobs.empty()) {
      logprobs = config_.chat ? EmptyChatLogprobs() : EmptyCompletionLogprobs();
      if (config_.chat) {
        AppendChatLogprobs(*config_.tokenizer, event.logprobs, &logprobs["content"]);
        AppendChatLogprobs(*config_.tokenizer, event.logprobs, &choice.logprobs["content"]);
      } else {
        int64_t offset = choice.text_offset;
        AppendCompletionLogprobs(*config_.tokenizer, event.logprobs, &offset, &logprobs);
        AppendCompletionLogprobs(*config_.tokenizer, event.logprobs, &choice.text_offset, &choice.logprobs);
      }
    }
    const bool finished = event.kind == engine::EngineEvent::Kind::kFinished;
    std::vector<ReasoningSegment> segments = Split(choice, event.text, finished);
    std::vector<Json> tool_deltas;
    if (choice.tools.has_value()) segments = ReadToolCalls(choice, segments, finished, &tool_deltas);
    for (const ReasoningSegment& segment : segments) {
      (segment.is_reasoning ? choice.reasoning : choice.content) += segment.text;
    }
    if (finished) {
      choice.finish_reason = event.finish_reason;
      choice.stop_reason = StopReasonJson(event, config_.eos_token_ids);
      config_.metrics->CountFinished(engine::FinishReasonName(event.finish_reason));
    }
    if (config_.stream) Stream(index, choice, segments, tool_deltas, std::move(logprobs), finished);

    if (event.last) {
      config_.metrics->ObserveEndToEndLatency(now - config_.arrival);
      if (--remaining_ == 0) Complete();
    }
  }

  void ObserveTokens(PromptState& prompt, Choice& choice, size_t num_tokens, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!prompt.first_token_seen) {
      prompt.first_token_seen = true;
      config_.metrics->ObserveTimeToFirstToken(now - config_.arrival);
    }
    if (choice.last_token_time.has_value()) {
      const absl::Duration per_token = (now - *choice.last_token_time) / static_cast<int64_t>(num_tokens);
      for (size_t i = 0; i < num_tokens; ++i) config_.metrics->ObserveInterTokenLatency(per_token);
    }
    choice.last_token_time = now;
  }

  // The event's text as reasoning and content runs, in order.
  std::vector<ReasoningSegment> Split(Choice& choice, const std::string& text, bool finished) {
    if (!choice.parser.has_value()) {
      if (text.empty()) return {};
      return {ReasoningSegment{false, text}};
    }
    std::vector<ReasoningSegment> segments = choice.parser->Add(text);
    if (finished) {
      for (ReasoningSegment& rest : choice.parser->Finish()) segments.push_back(std::move(rest));
    }
    return segments;
  }

  // Content segments through the choice's tool-call parser: what stays
  // content, and the calls' deltas in OpenAI's stream shape.
  std::vector<ReasoningSegment> ReadToolCalls(Choice& choice, const std::vector<ReasoningSegment>& segments,
                                              bool finished, std::vector<Json>* deltas) {
    std::vector<ReasoningSegment> out;
    auto take = [&](const ToolParseDelta& delta) {
      if (!delta.content.empty()) out.push_back(ReasoningSegment{false, delta.content});
      for (const ToolCallDelta& call : delta.calls) {
        Json function = Json::object();
        Json item = {{"index", call.index}};
        if (call.name.has_value()) {
          choice.tool_calls.push_back({StrCat("call_", RandomHex(24)), *call.name, ""});
          item["id"] = choice.tool_calls.back().id;
          item["type"] = "function";
          function["name"] = *call.name;
        }
        choice.tool_calls.back().arguments += call.arguments;
        function["arguments"] = call.arguments;
        item["function"] = std::move(function);
        deltas->push_back(Json{{"tool_calls", Json::array({std::move(item)})}});
      }
    };
    for (const ReasoningSegment& segment : segments) {
      if (segment.is_reasoning) {
        out.push_back(segment);
      } else {
        take(choice.tools->Add(segment.text));
      }
    }
    if (finished) take(choice.tools->Finish());
    return out;
  }

  // "tool_calls" when the output ended on its own after calls.
  static Json ChoiceFinishReason(const Choice& choice) {
    if (!choice.tool_calls.empty() && choice.finish_reason == engine::FinishReason::kStop) return "tool_calls";
    return FinishReasonJson(choice.finish_reason);
  }

  void Stream(int32_t index, const Choice& choice, const std::vector<ReasoningSegment>& segments,
              const std::vector<Json>& tool_deltas, Json logprobs, bool finished) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const Json finish_reason = finished ? ChoiceFinishReason(choice) : Json(nullptr);
    if (!config_.chat) {
      std::string text;
      for (const ReasoningSegment& segment : segments) text += segment.text;
      if (text.empty() && logprobs.is_null() && !finished) return;
      responder_->Write(SseEvent(
          CompletionChunkJson(config_.header, index, text, std::move(logprobs), finish_reason, choice.stop_reason)));
      return;
    }
    for (const ReasoningSegment& segment : segments) {
      Json delta = segment.is_reasoning ? Json{{"reasoning_content", segment.text}, {"reasoning", segment.text}}
                                        : Json{{"content", segment.text}};
      WriteChatChunk(index, std::move(delta), std::move(logprobs), nullptr, nullptr);
      logprobs = nullptr;
    }
    for (const Json& delta : tool_deltas) {
      WriteChatChunk(index, delta, std::move(logprobs), nullptr, nullptr);
      logprobs = nullptr;
    }
    if (!logprobs.is_null() || finished) {
      WriteChatChunk(index, Json::object(), std::move(logprobs), finish_reason, choice.stop_reason);
    }
  }

  void WriteChatChunk(int32_t index, Json delta, Json logprobs, Json finish_reason, Json stop_reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    responder_->Write(SseEvent(ChatChunkJson(config_.header, index, std::move(delta), std::move(logprobs),
                                             std::move(finish_reason), std::move(stop_reason))));
  }

  UsageCounts Usage() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    UsageCounts usage;
    for (const PromptState& prompt : prompts_) {
      usage.prompt_tokens += prompt.num_prompt_tokens;
      usage.cached_prompt_tokens += prompt.num_cached_prompt_tokens;
    }
    for (const Choice& choice : choices_) usage.completion_tokens += choice.num_completion_tokens;
    return usage;
  }

  void Complete() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    phase_ = Phase::kDone;
    Finish(200, "");
    if (config_.stream) {
      if (config_.include_usage) {
        const char* object = config_.chat ? "chat.completion.chunk" : "text_completion";
        responder_->Write(SseEvent(UsageChunkJson(config_.header, object, Usage())));
      }
      responder_->Write(std::string(kSseDone));
      responder_->FinishStream();
      return;
    }
    std::vector<ChoiceOutput> outputs;
    for (size_t i = 0; i < choices_.size(); ++i) {
      Choice& choice = choices_[i];
      ChoiceOutput& output = outputs.emplace_back();
      output.index = static_cast<int32_t>(i);
      output.content = std::move(choice.content);
      if (choice.parser.has_value()) output.reasoning = std::move(choice.reasoning);
      output.finish_reason = choice.finish_reason;
      if (!choice.tool_calls.empty()) {
        output.tool_calls = Json::array();
        for (const ToolCall& call : choice.tool_calls) {
          output.tool_calls.push_back({{"id", call.id},
                                       {"type", "function"},
                                       {"function", {{"name", call.name}, {"arguments", call.arguments}}}});
        }
      }
      output.stop_reason = std::move(choice.stop_reason);
      output.logprobs = std::move(choice.logprobs);
    }
    const Json body = config_.chat ? ChatCompletionJson(config_.header, outputs, Usage())
                                   : CompletionJson(config_.header, outputs, Usage());
    SendJson(*responder_, 200, body);
  }

  void Fail(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    phase_ = Phase::kDone;
    LOG(WARNING) << "request " << config_.header.id << " failed: " << status;
    config_.metrics->CountFinished("error");
    const OpenAiError error = ErrorForStatus(status);
    Finish(error.status, absl::StatusCodeToString(status.code()));
    if (!config_.stream) {
      SendError(*responder_, error);
      return;
    }
    responder_->Write(SseEvent(ErrorJson(error)));
    responder_->Write(std::string(kSseDone));
    responder_->FinishStream();
  }

  // Gives the key's slot back, counts its tokens and logs the outcome:
  // token counts and finish reasons, no text.
  void Finish(int status, std::string_view error) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    config_.lease.Release();
    const UsageCounts usage = Usage();
    if (!config_.key_name.empty()) {
      config_.metrics->CountKeyTokens(config_.key_name, usage.prompt_tokens, usage.completion_tokens);
    }
    if (!config_.log) return;
    std::string reasons;
    for (const Choice& choice : choices_) {
      if (!reasons.empty()) reasons += ",";
      reasons += choice.finish_reason == engine::FinishReason::kNone ? "none"
                                                                     : engine::FinishReasonName(choice.finish_reason);
    }
    LOG(INFO) << "request " << config_.header.id << (config_.chat ? " chat" : " completion")
              << (config_.key_name.empty() ? "" : " key=") << config_.key_name << " status=" << status
              << (error.empty() ? "" : " error=") << error << " prompt_tokens=" << usage.prompt_tokens
              << " cached_tokens=" << usage.cached_prompt_tokens << " completion_tokens=" << usage.completion_tokens
              << " finish=" << reasons << " seconds=" << absl::ToDoubleSeconds(absl::Now() - config_.arrival);
  }

  CallConfig config_;
  const std::shared_ptr<HttpResponder> responder_;
  absl::Mutex mu_;
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kSubmitting;
  std::vector<std::pair<int32_t, engine::EngineEvent>> early_events_ ABSL_GUARDED_BY(mu_);
  std::vector<PromptState> prompts_ ABSL_GUARDED_BY(mu_);
  std::vector<Choice> choices_ ABSL_GUARDED_BY(mu_);  // [num_prompts * n]
  int32_t remaining_ ABSL_GUARDED_BY(mu_) = 0;        // engine requests not yet finished
};

// Routes one engine request's events to its call.
class CallSink : public engine::EventSink {
 public:
  CallSink(std::shared_ptr<GenerationCall> call, int32_t prompt_index)
      : call_(std::move(call)), prompt_index_(prompt_index) {}
  void OnEvent(engine::EngineEvent event) override { call_->OnEvent(prompt_index_, std::move(event)); }

 private:
  const std::shared_ptr<GenerationCall> call_;
  const int32_t prompt_index_;
};

// A key over its rate or concurrency limit; the key's name stays out.
OpenAiError KeyLimitError() {
  OpenAiError error;
  error.status = 429;
  error.type = "rate_limit_error";
  error.code = "rate_limit_exceeded";
  error.message = "Too many requests for this API key; retry later.";
  return error;
}

}  // namespace

OpenAiError ErrorForStatus(const absl::Status& status) {
  OpenAiError error;
  switch (status.code()) {
    case absl::StatusCode::kResourceExhausted:
      error.status = 429;
      error.type = "rate_limit_error";
      error.code = "rate_limit_exceeded";
      error.message = "The server has too many requests waiting; retry later.";
      return error;
    case absl::StatusCode::kUnavailable:
      error.status = 503;
      error.type = "server_error";
      error.code = "service_unavailable";
      error.message = "The model's workers are unavailable; retry later.";
      return error;
    case absl::StatusCode::kAborted:
      error.status = 503;
      error.type = "server_error";
      error.code = "service_unavailable";
      error.message = "The server is shutting down.";
      return error;
    case absl::StatusCode::kInvalidArgument: {
      const absl::string_view message = status.message();
      return InvalidRequestError(std::string(message.data(), message.size()));
    }
    default:
      error.status = 500;
      error.type = "server_error";
      error.message = "The server failed to complete the request.";
      return error;
  }
}

bool OpenAiService::PromptClosesReasoning(absl::Span<const int32_t> token_ids) const {
  for (size_t i = token_ids.size(); i-- > 0;) {
    if (token_ids[i] == think_tag_ids_->second) return true;
    absl::StatusOr<std::string> text = assets_->tokenizer->Decode(token_ids.subspan(i, 1), /*skip_special_tokens=*/false);
    if (!text.ok() || !std::all_of(text->begin(), text->end(), [](char c) { return absl::ascii_isspace(c); })) {
      return false;
    }
  }
  return false;
}

OpenAiService::OpenAiService(engine::Engine* engine, const ModelAssets* assets, OpenAiOptions options,
                             Metrics* metrics)
    : engine_(engine),
      assets_(assets),
      options_(std::move(options)),
      metrics_(metrics),
      created_(absl::ToUnixSeconds(absl::Now())) {
  CHECK(engine_ != nullptr && assets_ != nullptr && assets_->tokenizer != nullptr && metrics_ != nullptr);
  const std::optional<int32_t> start = TokenId("<think>");
  const std::optional<int32_t> end = TokenId("</think>");
  if (options_.enable_reasoning_parser && start.has_value() && end.has_value()) {
    think_tag_ids_ = std::make_pair(*start, *end);
  }
  if (options_.api_keys != nullptr) {
    for (const std::string& name : options_.api_keys->names()) metrics_->AddKey(name);
  }
  grammars_ = assets_->grammars != nullptr ? assets_->grammars
                                           : std::make_shared<grammar::GrammarCache>(assets_->tokenizer.get());
  if (options_.tool_call_parser == "auto") {
    tool_format_ = DetectToolCallFormat(assets_->chat_template_source);
  } else if (options_.tool_call_parser != "none") {
    tool_format_ = ToolCallFormatByName(options_.tool_call_parser);
  }
}

std::optional<int32_t> OpenAiService::TokenId(const char* token) const {
  return assets_->tokenizer->TokenToId(token);
}

void OpenAiService::Handle(const HttpRequest& request, std::shared_ptr<HttpResponder> responder) {
  try {
    Route(request, responder);
  } catch (const std::exception& e) {
    LOG(ERROR) << "unexpected failure answering " << request.method << " " << request.path << ": " << e.what();
    SendError(*responder, ErrorForStatus(absl::InternalError("")));
  }
}

bool OpenAiService::Authorized(const HttpRequest& request, Tenant** tenant) const {
  *tenant = nullptr;
  if (options_.api_keys == nullptr) return true;
  const auto it = request.headers.find("authorization");
  const std::string_view given = it == request.headers.end() ? std::string_view() : std::string_view(it->second);
  *tenant = options_.api_keys->Authenticate(given);
  return *tenant != nullptr;
}

void OpenAiService::Route(const HttpRequest& request, const std::shared_ptr<HttpResponder>& responder) {
  Caller caller;
  caller.arrival = absl::Now();
  const std::string& path = request.path;
  // Health and metrics stay open, as in vLLM: load balancers and Prometheus
  // scrape them without the key.
  if (path == "/health" && request.method == "GET") return HandleHealth(responder);
  if (path == "/metrics" && request.method == "GET") {
    return responder->Send(200, "text/plain; version=0.0.4; charset=utf-8",
                           metrics_->RenderPrometheus(engine_->stats()));
  }
  if (!Authorized(request, &caller.tenant)) {
    OpenAiError error = InvalidRequestError("Incorrect or missing API key.", "", "invalid_api_key");
    error.status = 401;
    return SendError(*responder, error, {{"WWW-Authenticate", "Bearer"}});
  }
  const bool post = request.method == "POST";
  const bool get = request.method == "GET";
  if (get && path == "/v1/models") return HandleModels(responder);
  const bool generation = path == "/v1/chat/completions" || path == "/v1/completions";
  if (post && (generation || path == "/tokenize" || path == "/detokenize")) {
    Json body;
    if (std::optional<OpenAiError> error = ParseJsonObject(request.body, &body)) {
      return SendError(*responder, *error);
    }
    if (path == "/v1/chat/completions") return HandleChat(body, responder, caller);
    if (path == "/v1/completions") return HandleCompletion(body, responder, caller);
    if (path == "/tokenize") return HandleTokenize(body, responder);
    return HandleDetokenize(body, responder);
  }
  const bool known = generation || path == "/tokenize" || path == "/detokenize" || path == "/v1/models" ||
                     path == "/metrics" || path == "/health";
  OpenAiError error = InvalidRequestError(known ? "Method not allowed." : "Not found.");
  error.status = known ? 405 : 404;
  SendError(*responder, error);
}

ProtocolLimits OpenAiService::Limits() const {
  ProtocolLimits limits;
  limits.served_model_name = options_.served_model_name;
  limits.engine = engine_->request_limits();
  limits.engine.max_n = std::min(limits.engine.max_n, options_.max_n);
  if (options_.use_generation_defaults) limits.generation_defaults = assets_->config.generation;
  return limits;
}

void OpenAiService::LogUnknownFields(const std::vector<std::string>& names) {
  absl::MutexLock lock(&mu_);
  for (const std::string& name : names) {
    if (logged_unknown_fields_.size() >= 1024 || !logged_unknown_fields_.insert(name).second) continue;
    LOG(WARNING) << "ignoring the unknown request field " << DumpJson(Json(name));
  }
}

void OpenAiService::HandleChat(const Json& body, const std::shared_ptr<HttpResponder>& responder,
                               const Caller& caller) {
  ChatCompletionRequest request;
  if (std::optional<OpenAiError> error = ParseChatCompletionRequest(body, Limits(), &request)) {
    return SendError(*responder, *error);
  }
  LogUnknownFields(request.settings.unknown_fields);
  const ToolSettings& tools = request.tools;
  const bool must_call =
      tools.choice == ToolSettings::Choice::kRequired || tools.choice == ToolSettings::Choice::kNamed;
  if (must_call) {
    if (!tool_format_.has_value()) {
      return SendError(*responder, InvalidRequestError(
                                       "this model's chat template writes no tool calls duet can read; start the "
                                       "server with --tool-call-parser to name the format",
                                       "tool_choice"));
    }
    if (request.settings.structured.has_value()) {
      return SendError(*responder, InvalidRequestError("tool_choice 'required' or a named function cannot be "
                                                       "combined with another output constraint",
                                                       request.settings.structured_param));
    }
    // The model can only call: enforced by a grammar of calls.
    grammar::GrammarSpec spec;
    spec.kind = grammar::GrammarSpec::Kind::kToolCalls;
    spec.tool_format = std::string(ToolCallFormatName(*tool_format_));
    spec.parallel_tool_calls = tools.parallel && tools.choice == ToolSettings::Choice::kRequired;
    for (const grammar::ToolFunction& function : tools.functions) {
      if (tools.choice == ToolSettings::Choice::kRequired || function.name == tools.function) {
        spec.functions.push_back(function);
      }
    }
    request.settings.structured = std::move(spec);
    request.settings.structured_param = "tools";
  }
  request.settings.tool_format =
      tools.choice != ToolSettings::Choice::kNone ? tool_format_ : std::optional<ToolCallFormat>();
  request.settings.parallel_tool_calls = tools.parallel;
  absl::StatusOr<ChatPrompt> prompt = BuildChatPrompt(*assets_, request.prompt);
  if (!prompt.ok()) return SendError(*responder, ChatPromptError(prompt.status()));
  Prompt built;
  built.token_ids = std::move(prompt->token_ids);
  if (think_tag_ids_.has_value()) {
    built.opens_reasoning = PromptOpensReasoning(built.token_ids, think_tag_ids_->first, think_tag_ids_->second);
    built.closes_reasoning = PromptClosesReasoning(built.token_ids);
  }
  const int32_t max_model_len = engine_->model_info().max_model_len;
  if (std::optional<OpenAiError> error = CheckContextLength(static_cast<int32_t>(built.token_ids.size()),
                                                            request.settings, max_model_len, "messages")) {
    return SendError(*responder, *error);
  }
  std::vector<Prompt> prompts;
  prompts.push_back(std::move(built));
  Generate(Endpoint::kChat, request.settings, std::move(prompts), responder, caller);
}

void OpenAiService::HandleCompletion(const Json& body, const std::shared_ptr<HttpResponder>& responder,
                                     const Caller& caller) {
  CompletionRequest request;
  if (std::optional<OpenAiError> error = ParseCompletionRequest(body, Limits(), &request)) {
    return SendError(*responder, *error);
  }
  LogUnknownFields(request.settings.unknown_fields);
  const int32_t max_model_len = engine_->model_info().max_model_len;
  std::vector<Prompt> prompts;
  for (CompletionPrompt& input : request.prompts) {
    Prompt& prompt = prompts.emplace_back();
    if (input.is_text) {
      absl::StatusOr<std::vector<int32_t>> ids = assets_->tokenizer->Encode(input.text, /*add_special_tokens=*/true);
      if (!ids.ok()) return SendError(*responder, InvalidRequestError("the prompt could not be tokenized", "prompt"));
      prompt.token_ids = *std::move(ids);
    } else {
      prompt.token_ids = std::move(input.token_ids);
    }
    if (prompt.token_ids.empty()) return SendError(*responder, InvalidRequestError("the prompt is empty", "prompt"));
    if (std::optional<OpenAiError> error = CheckContextLength(static_cast<int32_t>(prompt.token_ids.size()),
                                                              request.settings, max_model_len, "prompt")) {
      return SendError(*responder, *error);
    }
  }
  Generate(Endpoint::kCompletion, request.settings, std::move(prompts), responder, caller);
}

void OpenAiService::Generate(Endpoint endpoint, const GenerationSettings& settings, std::vector<Prompt> prompts,
                             const std::shared_ptr<HttpResponder>& responder, const Caller& caller) {
  const absl::Time arrival = caller.arrival;
  const bool chat = endpoint == Endpoint::kChat;
  CallConfig config;
  config.chat = chat;
  config.header.id = StrCat(chat ? "chatcmpl-" : "cmpl-", RandomHex(32));
  config.header.created = absl::ToUnixSeconds(arrival);
  config.header.model = options_.served_model_name;
  config.stream = settings.stream;
  config.include_usage = settings.include_usage;
  config.logprobs = settings.logprobs.has_value();
  config.n = settings.request.n;
  // A constrained output from a reasoning model thinks first, freely, and
  // the constraint holds from the end of its think block (see
  // GenerateRequest::grammar_after_reasoning).
  config.reasoning = chat && think_tag_ids_.has_value();
  config.tool_format = chat ? settings.tool_format : std::optional<ToolCallFormat>();
  config.parallel_tool_calls = settings.parallel_tool_calls;
  config.eos_token_ids = engine_->model_info().eos_token_ids;
  config.tokenizer = assets_->tokenizer.get();
  config.metrics = metrics_;
  config.arrival = arrival;
  config.log = options_.log_requests;
  std::string cache_salt = settings.request.cache_salt;
  if (caller.tenant != nullptr) {
    config.key_name = caller.tenant->name();
    cache_salt = options_.api_keys->CacheSalt(caller.tenant, cache_salt);
  }

  std::shared_ptr<grammar::CompiledGrammar> constraint;
  if (settings.structured.has_value()) {
    absl::StatusOr<std::shared_ptr<grammar::CompiledGrammar>> compiled = grammars_->Compile(*settings.structured);
    if (!compiled.ok()) {
      return SendError(*responder, InvalidRequestError(std::string(compiled.status().message()),
                                                       settings.structured_param));
    }
    constraint = *std::move(compiled);
  }

  const engine::RequestLimits limits = engine_->request_limits();
  std::vector<engine::ValidatedRequest> validated;
  std::vector<bool> opens_reasoning;
  std::vector<int32_t> num_prompt_tokens;
  for (size_t i = 0; i < prompts.size(); ++i) {
    engine::GenerateRequest request = settings.request;
    request.cache_salt = cache_salt;
    request.grammar = constraint;
    if (constraint != nullptr && config.reasoning && !prompts[i].closes_reasoning) {
      engine::GenerateRequest::GrammarAfterReasoning think;
      think.open = prompts[i].opens_reasoning;
      think.start_token = think_tag_ids_->first;
      think.end_token = think_tag_ids_->second;
      request.grammar_after_reasoning = think;
    }
    request.request_id = prompts.size() == 1 ? config.header.id : StrCat(config.header.id, "-", i);
    request.prompt_token_ids = std::move(prompts[i].token_ids);
    num_prompt_tokens.push_back(static_cast<int32_t>(request.prompt_token_ids.size()));
    opens_reasoning.push_back(prompts[i].opens_reasoning);
    absl::StatusOr<engine::ValidatedRequest> valid = engine::ValidateRequest(std::move(request), limits);
    if (!valid.ok()) return SendError(*responder, ErrorForStatus(valid.status()));
    validated.push_back(*std::move(valid));
  }

  if (caller.tenant != nullptr) {
    ApiKeys::Admission admission = options_.api_keys->Admit(*caller.tenant);
    if (!admission.admitted) {
      LOG(WARNING) << "API key " << caller.tenant->name() << " is over its " << admission.limit
                   << " limit: request " << config.header.id << " answered 429";
      metrics_->CountKeyRefused(caller.tenant->name(), admission.limit);
      const int64_t retry_after =
          admission.limit == "rate" ? std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(admission.retry_after, absl::Seconds(1))))
                                    : options_.retry_after_seconds;
      return SendError(*responder, KeyLimitError(), {{"Retry-After", StrCat(retry_after)}});
    }
    metrics_->CountKeyRequest(caller.tenant->name());
    config.lease = std::move(admission.lease);
  }

  auto call = std::make_shared<GenerationCall>(std::move(config), responder, opens_reasoning, num_prompt_tokens);
  std::vector<uint64_t> ids;
  for (size_t i = 0; i < validated.size(); ++i) {
    absl::StatusOr<uint64_t> id =
        engine_->Submit(std::move(validated[i]), std::make_shared<CallSink>(call, static_cast<int32_t>(i)));
    if (!id.ok()) {
      call->Abandon();
      for (uint64_t submitted : ids) engine_->Abort(submitted);
      std::map<std::string, std::string> headers;
      if (absl::IsResourceExhausted(id.status())) {
        headers["Retry-After"] = StrCat(options_.retry_after_seconds);
      }
      return SendError(*responder, ErrorForStatus(id.status()), std::move(headers));
    }
    ids.push_back(*id);
  }
  call->Start();
  engine::Engine* engine = engine_;
  responder->OnClientGone([engine, ids] {
    for (uint64_t id : ids) engine->Abort(id);
  });
}

void OpenAiService::HandleModels(const std::shared_ptr<HttpResponder>& responder) const {
  const Json model = {{"id", options_.served_model_name},
                      {"object", "model"},
                      {"created", created_},
                      {"owned_by", "duet"},
                      {"root", options_.served_model_name},
                      {"parent", nullptr},
                      {"max_model_len", engine_->model_info().max_model_len},
                      {"permission", Json::array()}};
  SendJson(*responder, 200, Json{{"object", "list"}, {"data", Json::array({model})}});
}

void OpenAiService::HandleTokenize(const Json& body, const std::shared_ptr<HttpResponder>& responder) const {
  TokenizeRequest request;
  if (std::optional<OpenAiError> error = ParseTokenizeRequest(body, &request)) {
    return SendError(*responder, *error);
  }
  absl::StatusOr<std::vector<int32_t>> ids;
  if (request.is_chat) {
    absl::StatusOr<ChatPrompt> prompt = BuildChatPrompt(*assets_, request.chat);
    if (!prompt.ok()) return SendError(*responder, ChatPromptError(prompt.status()));
    ids = request.add_special_tokens ? assets_->tokenizer->Encode(prompt->text, /*add_special_tokens=*/true)
                                     : std::move(prompt->token_ids);
  } else {
    ids = assets_->tokenizer->Encode(request.prompt, request.add_special_tokens);
  }
  if (!ids.ok()) return SendError(*responder, InvalidRequestError("the prompt could not be tokenized", "prompt"));
  Json token_strs = nullptr;
  if (request.return_token_strs) {
    token_strs = Json::array();
    for (int32_t id : *ids) token_strs.push_back(TokenTextOf(*assets_->tokenizer, id).text);
  }
  SendJson(*responder, 200,
           Json{{"count", ids->size()},
                {"max_model_len", engine_->model_info().max_model_len},
                {"tokens", *ids},
                {"token_strs", std::move(token_strs)}});
}

void OpenAiService::HandleDetokenize(const Json& body, const std::shared_ptr<HttpResponder>& responder) const {
  std::vector<int32_t> ids;
  if (std::optional<OpenAiError> error = ParseDetokenizeRequest(body, &ids)) return SendError(*responder, *error);
  absl::StatusOr<std::string> text = assets_->tokenizer->Decode(ids, /*skip_special_tokens=*/false);
  if (!text.ok()) {
    return SendError(*responder, InvalidRequestError("'tokens' must be token ids within the vocabulary", "tokens"));
  }
  SendJson(*responder, 200, Json{{"prompt", *text}});
}

void OpenAiService::HandleHealth(const std::shared_ptr<HttpResponder>& responder) const {
  if (engine_->stats().workers_healthy) return responder->Send(200, "text/plain", "");
  SendError(*responder, ErrorForStatus(absl::UnavailableError("")));
}

}  // namespace duet::api
