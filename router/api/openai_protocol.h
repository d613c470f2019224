// The OpenAI-compatible wire format, as pure functions: a JSON body becomes
// a validated request (or an OpenAiError saying why not), and responses,
// stream chunks, usage and error envelopes are built from plain values.
// No I/O and no engine calls: openai_service.* does those.
//
// Requests follow the OpenAI API reference plus vLLM's common extensions
// (top_k, min_p, repetition_penalty, min_tokens, ignore_eos,
// skip_special_tokens, stop_token_ids, chat_template_kwargs,
// add_generation_prompt, cache_salt). Unknown fields are reported back to the caller
// (to be logged), never an error; a known field with a wrong type or value
// is a 400 whose message is fixed text that never echoes the request.
//
// Thread-safety: stateless functions; the tokenizer is only read.
#ifndef DUET_ROUTER_API_OPENAI_PROTOCOL_H_
#define DUET_ROUTER_API_OPENAI_PROTOCOL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/model_config.h"
#include "nlohmann/json.hpp"
#include "router/api/chat_prompt.h"
#include "router/api/tool_call_parser.h"
#include "router/engine/engine_event.h"
#include "router/engine/request.h"
#include "router/grammar/grammar_cache.h"
#include "router/tokenizer/tokenizer.h"

namespace duet::api {

using Json = nlohmann::ordered_json;

// {"error": {"message", "type", "param", "code"}} with an HTTP status.
// Empty param / code are sent as null.
struct OpenAiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;
  std::string code;
};

// A 400 invalid_request_error.
OpenAiError InvalidRequestError(std::string message, std::string param = "", std::string code = "");

// What the protocol checks a request against before any tokenization.
struct ProtocolLimits {
  std::string served_model_name;
  engine::RequestLimits engine;  // max_n, stop strings, top logprobs, vocabulary
  // Used for sampling fields a request leaves unset (vLLM does the same).
  GenerationDefaults generation_defaults;
};

// Everything both generation endpoints share.
struct GenerationSettings {
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  // Absent: no logprobs. Otherwise the number of alternatives per token
  // (chat: top_logprobs; completions: logprobs).
  std::optional<int32_t> logprobs;
  // Which name the client used for the output limit, for error params.
  std::string max_tokens_param = "max_tokens";
  // Everything but the prompt, which the service fills in.
  engine::GenerateRequest request;
  // Top-level fields the request carried that duet does not know.
  std::vector<std::string> unknown_fields;
  // The output constraint (response_format json_object / json_schema, or
  // vLLM's guided_* / structured_outputs), compiled by the service; the
  // field that stated it, for errors.
  std::optional<grammar::GrammarSpec> structured;
  std::string structured_param;
  // Chat with tools: the format tool calls are read from the output in
  // (set by the service from tool_choice and the model), and
  // parallel_tool_calls.
  std::optional<ToolCallFormat> tool_format;
  bool parallel_tool_calls = true;
};

// tool_choice and parallel_tool_calls of a chat request.
struct ToolSettings {
  enum class Choice { kNone, kAuto, kRequired, kNamed };
  // Default: auto when the request has tools, none otherwise (as OpenAI).
  Choice choice = Choice::kNone;
  std::string function;  // kNamed: the function that must be called
  bool parallel = true;
  // The offered functions (name and parameters schema), from "tools".
  std::vector<grammar::ToolFunction> functions;
};

struct ChatCompletionRequest {
  GenerationSettings settings;
  ToolSettings tools;
  // Messages with their content flattened to text; tools, tool_choice,
  // chat_template_kwargs, add_generation_prompt.
  ChatPromptRequest prompt;
};

// One prompt of /v1/completions: text, or token ids as given.
struct CompletionPrompt {
  bool is_text = true;
  std::string text;
  std::vector<int32_t> token_ids;
};

struct CompletionRequest {
  GenerationSettings settings;
  std::vector<CompletionPrompt> prompts;  // at least one
};

// POST /tokenize: vLLM's two shapes, a prompt or chat messages.
struct TokenizeRequest {
  bool is_chat = false;
  std::string prompt;
  ChatPromptRequest chat;
  bool add_special_tokens = true;  // chat: false unless asked
  bool return_token_strs = false;
};

// The body as a JSON object (400 for malformed JSON, a non-object body or
// nesting deeper than 64 levels).
std::optional<OpenAiError> ParseJsonObject(std::string_view body, Json* object);

// Validate an already parsed body. On error `out` is unspecified.
std::optional<OpenAiError> ParseChatCompletionRequest(const Json& body, const ProtocolLimits& limits,
                                                      ChatCompletionRequest* out);
std::optional<OpenAiError> ParseCompletionRequest(const Json& body, const ProtocolLimits& limits,
                                                  CompletionRequest* out);
std::optional<OpenAiError> ParseTokenizeRequest(const Json& body, TokenizeRequest* out);
// POST /detokenize: {"tokens": [ids]}.
std::optional<OpenAiError> ParseDetokenizeRequest(const Json& body, std::vector<int32_t>* token_ids);

// After tokenization: the prompt must leave room for one token, and
// max_tokens must fit beside it (400, code "context_length_exceeded").
// `prompt_param`: "messages" or "prompt".
std::optional<OpenAiError> CheckContextLength(int32_t num_prompt_tokens, const GenerationSettings& settings,
                                              int32_t max_model_len, std::string_view prompt_param);

// ---- responses ------------------------------------------------------------

// The fields every response and chunk of one request repeats.
struct ResponseHeader {
  std::string id;  // "chatcmpl-..." or "cmpl-..."
  int64_t created = 0;  // Unix seconds
  std::string model;
};

struct UsageCounts {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_prompt_tokens = 0;
};

// One finished choice of a complete (not streamed) response.
struct ChoiceOutput {
  int32_t index = 0;
  std::string content;  // chat: message.content; completions: text
  // Chat with a reasoning parser: message.reasoning_content (and the same
  // in message.reasoning); absent: the fields are left out.
  std::optional<std::string> reasoning;
  engine::FinishReason finish_reason = engine::FinishReason::kNone;
  Json stop_reason = nullptr;  // the stop string, a stop token id, or null
  Json logprobs = nullptr;
  // Chat: the calls read from the output ([{id, type, function}]), or null.
  Json tool_calls = nullptr;
};

// "stop", "length", "abort"; null while unfinished.
Json FinishReasonJson(engine::FinishReason reason);
// A stop string, a stop token id other than EOS, or null (vLLM's stop_reason).
Json StopReasonJson(const engine::EngineEvent& event, const std::vector<int32_t>& eos_token_ids);

Json UsageJson(const UsageCounts& usage);
Json ChatCompletionJson(const ResponseHeader& header, const std::vector<ChoiceOutput>& choices,
                        const UsageCounts& usage);
Json CompletionJson(const ResponseHeader& header, const std::vector<ChoiceOutput>& choices,
                    const UsageCounts& usage);

// A chat.completion.chunk with one choice; `delta` e.g. {"content": "..."};
// finish_reason null unless finished.
Json ChatChunkJson(const ResponseHeader& header, int32_t index, Json delta, Json logprobs, Json finish_reason,
                   Json stop_reason);
// A text_completion chunk with one choice.
Json CompletionChunkJson(const ResponseHeader& header, int32_t index, std::string_view text, Json logprobs,
                         Json finish_reason, Json stop_reason);
// The chunk after the last choice finished when stream_options.include_usage:
// "choices": [] and the usage. `object`: "chat.completion.chunk" or
// "text_completion".
Json UsageChunkJson(const ResponseHeader& header, std::string_view object, const UsageCounts& usage);

Json ErrorJson(const OpenAiError& error);

// Serialized JSON; invalid UTF-8 in any string becomes U+FFFD.
std::string DumpJson(const Json& json);
// One server-sent event: "data: <json>\n\n".
std::string SseEvent(const Json& json);
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

// ---- logprobs -------------------------------------------------------------

// A token's text as it is shown in logprobs (valid UTF-8; a partial
// character becomes U+FFFD) and its raw bytes.
struct TokenText {
  std::string text;
  std::vector<uint8_t> bytes;
};
TokenText TokenTextOf(const tokenizer::Tokenizer& tokenizer, int32_t token_id);

// Chat: appends {"token", "logprob", "bytes", "top_logprobs": [...]} per
// token to `content` (the array in logprobs.content).
void AppendChatLogprobs(const tokenizer::Tokenizer& tokenizer, const std::vector<engine::TokenLogprob>& logprobs,
                        Json* content);
// Completions: appends to {"tokens", "token_logprobs", "top_logprobs",
// "text_offset"}; `text_offset` is the choice's text length so far and
// advances by each token's text.
void AppendCompletionLogprobs(const tokenizer::Tokenizer& tokenizer,
                              const std::vector<engine::TokenLogprob>& logprobs, int64_t* text_offset,
                              Json* completion_logprobs);
Json EmptyChatLogprobs();        // {"content": []}
Json EmptyCompletionLogprobs();  // {"tokens": [], "token_logprobs": [], ...}

}  // namespace duet::api

#endif  // DUET_ROUTER_API_OPENAI_PROTOCOL_H_
