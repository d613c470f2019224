#include "router/api/openai_protocol.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <utility>

#include "common/str_cat.h"
#include "common/utf8.h"

// Returns the error of `expr` (a std::optional<OpenAiError>) when it has one.
#define DUET_RETURN_IF_OPENAI_ERROR(expr)                         \
  do {                                                            \
    if (std::optional<OpenAiError> error_ = (expr)) return error_; \
  } while (false)

namespace duet::api {
namespace {

constexpr int kMaxJsonDepth = 64;

// The field when present and not null (null means "absent", as in the
// OpenAI SDKs).
const Json* Get(const Json& body, std::string_view name) {
  const auto it = body.find(std::string(name));
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

OpenAiError MustBe(std::string_view name, std::string_view what) {
  return InvalidRequestError(StrCat("'", name, "' must be ", what), std::string(name));
}

int32_t SaturateToInt32(int64_t value) {
  if (value > std::numeric_limits<int32_t>::max()) return std::numeric_limits<int32_t>::max();
  if (value < std::numeric_limits<int32_t>::min()) return std::numeric_limits<int32_t>::min();
  return static_cast<int32_t>(value);
}

// An integer, also written as a float without a fraction (3.0), as
// pydantic-based servers accept. Unsigned values beyond int64 saturate.
bool AsInteger(const Json& value, int64_t* out) {
  if (value.is_number_unsigned()) {
    const uint64_t number = value.get<uint64_t>();
    *out = number > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
               ? std::numeric_limits<int64_t>::max()
               : static_cast<int64_t>(number);
    return true;
  }
  if (value.is_number_integer()) {
    *out = value.get<int64_t>();
    return true;
  }
  if (value.is_number_float()) {
    const double number = value.get<double>();
    if (!std::isfinite(number) || std::trunc(number) != number || std::fabs(number) > 9.0e18) return false;
    *out = static_cast<int64_t>(number);
    return true;
  }
  return false;
}

std::optional<OpenAiError> ReadBool(const Json& body, std::string_view name, bool* out) {
  const Json* value = Get(body, name);
  if (value == nullptr) return std::nullopt;
  if (!value->is_boolean()) return MustBe(name, "a boolean");
  *out = value->get<bool>();
  return std::nullopt;
}

std::optional<OpenAiError> ReadString(const Json& body, std::string_view name, std::optional<std::string>* out) {
  const Json* value = Get(body, name);
  if (value == nullptr) return std::nullopt;
  if (!value->is_string()) return MustBe(name, "a string");
  *out = value->get<std::string>();
  return std::nullopt;
}

// A finite number within [min, max]; `range` words the bounds for the message.
std::optional<OpenAiError> ReadNumber(const Json& body, std::string_view name, double min, double max,
                                      std::string_view range, std::optional<double>* out) {
  const Json* value = Get(body, name);
  if (value == nullptr) return std::nullopt;
  if (!value->is_number()) return MustBe(name, "a number");
  const double number = value->get<double>();
  if (!std::isfinite(number) || number < min || number > max) return MustBe(name, range);
  *out = number;
  return std::nullopt;
}

std::optional<OpenAiError> ReadInteger(const Json& body, std::string_view name, int64_t min, int64_t max,
                                       std::string_view range, std::optional<int64_t>* out) {
  const Json* value = Get(body, name);
  if (value == nullptr) return std::nullopt;
  int64_t number = 0;
  if (!AsInteger(*value, &number)) return MustBe(name, "an integer");
  if (number < min || number > max) return MustBe(name, range);
  *out = number;
  return std::nullopt;
}

std::optional<OpenAiError> ReadTokenIds(const Json& value, std::string_view name, int32_t vocab_size,
                                        std::vector<int32_t>* out) {
  if (!value.is_array()) return MustBe(name, "an array of token ids");
  for (const Json& item : value) {
    int64_t id = 0;
    if (!AsInteger(item, &id)) return MustBe(name, "an array of token ids");
    if (id < 0 || id >= vocab_size) return MustBe(name, "token ids within the vocabulary");
    out->push_back(static_cast<int32_t>(id));
  }
  return std::nullopt;
}

void CollectUnknown(const Json& body, std::initializer_list<std::string_view> known,
                    std::vector<std::string>* unknown) {
  for (const auto& [key, value] : body.items()) {
    bool is_known = false;
    for (std::string_view name : known) is_known |= key == name;
    if (!is_known) unknown->push_back(key);
  }
}

std::optional<OpenAiError> ReadStop(const Json& body, const engine::RequestLimits& limits,
                                    std::vector<std::string>* stop) {
  const Json* value = Get(body, "stop");
  if (value == nullptr) return std::nullopt;
  if (value->is_string()) {
    stop->push_back(value->get<std::string>());
  } else if (value->is_array()) {
    for (const Json& item : *value) {
      if (!item.is_string()) return MustBe("stop", "a string or an array of strings");
      stop->push_back(item.get<std::string>());
    }
  } else {
    return MustBe("stop", "a string or an array of strings");
  }
  if (static_cast<int32_t>(stop->size()) > limits.max_stop_strings) {
    return InvalidRequestError(StrCat("at most ", limits.max_stop_strings, " stop strings are allowed"), "stop");
  }
  for (const std::string& text : *stop) {
    if (text.empty()) return InvalidRequestError("stop strings must not be empty", "stop");
    if (static_cast<int32_t>(text.size()) > limits.max_stop_string_bytes) {
      return InvalidRequestError(StrCat("stop strings must be at most ", limits.max_stop_string_bytes, " bytes"),
                                 "stop");
    }
  }
  return std::nullopt;
}

std::optional<OpenAiError> ReadLogitBias(const Json& body, int32_t vocab_size, std::map<int32_t, float>* bias) {
  const Json* value = Get(body, "logit_bias");
  if (value == nullptr) return std::nullopt;
  if (!value->is_object()) return MustBe("logit_bias", "an object of token ids to numbers");
  for (const auto& [key, item] : value->items()) {
    int64_t id = 0;
    const auto [end, error] = std::from_chars(key.data(), key.data() + key.size(), id);
    if (error != std::errc() || end != key.data() + key.size()) {
      return MustBe("logit_bias", "an object of token ids to numbers");
    }
    if (id < 0 || id >= vocab_size) return MustBe("logit_bias", "keyed by token ids within the vocabulary");
    if (!item.is_number()) return MustBe("logit_bias", "an object of token ids to numbers");
    const double number = item.get<double>();
    if (!std::isfinite(number) || std::fabs(number) > 100) {
      return MustBe("logit_bias", "an object of values between -100 and 100");
    }
    (*bias)[static_cast<int32_t>(id)] = static_cast<float>(number);
  }
  return std::nullopt;
}

// A JSON Schema given as an object, or as the JSON text of one.
std::optional<OpenAiError> ReadSchema(const Json& value, const std::string& param, Json* schema) {
  if (value.is_object() || value.is_boolean()) {
    *schema = value;
    return std::nullopt;
  }
  if (value.is_string()) {
    const std::string& text = value.get_ref<const std::string&>();
    Json parsed = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_discarded() && (parsed.is_object() || parsed.is_boolean())) {
      *schema = std::move(parsed);
      return std::nullopt;
    }
  }
  return MustBe(param, "a JSON Schema (an object, or its JSON text)");
}

std::optional<OpenAiError> ReadChoices(const Json& value, const std::string& param,
                                       std::vector<std::string>* choices) {
  if (!value.is_array() || value.empty()) return MustBe(param, "a non-empty array of strings");
  for (const Json& choice : value) {
    if (!choice.is_string()) return MustBe(param, "a non-empty array of strings");
    choices->push_back(choice.get<std::string>());
  }
  return std::nullopt;
}

// response_format (OpenAI) and vLLM's guided_json / guided_regex /
// guided_choice and structured_outputs: at most one constraint.
std::optional<OpenAiError> ReadStructuredOutput(const Json& body, GenerationSettings* settings) {
  std::vector<std::pair<std::string, grammar::GrammarSpec>> found;
  auto add = [&](std::string param, grammar::GrammarSpec spec) { found.emplace_back(std::move(param), std::move(spec)); };
  if (const Json* format = Get(body, "response_format")) {
    if (!format->is_object()) return MustBe("response_format", "an object");
    const Json* type = Get(*format, "type");
    if (type == nullptr || !type->is_string()) return MustBe("response_format", "an object with a string 'type'");
    const std::string& name = type->get_ref<const std::string&>();
    if (name == "json_object") {
      add("response_format", {});
    } else if (name == "json_schema") {
      const Json* wrapper = Get(*format, "json_schema");
      if (wrapper == nullptr || !wrapper->is_object()) {
        return MustBe("response_format.json_schema", "an object with a 'schema'");
      }
      const Json* schema = Get(*wrapper, "schema");
      if (schema == nullptr) return InvalidRequestError("response_format.json_schema.schema is required",
                                                        "response_format.json_schema.schema");
      grammar::GrammarSpec spec;
      spec.kind = grammar::GrammarSpec::Kind::kJsonSchema;
      DUET_RETURN_IF_OPENAI_ERROR(ReadSchema(*schema, "response_format.json_schema.schema", &spec.schema));
      add("response_format", std::move(spec));
    } else if (name != "text") {
      return MustBe("response_format.type", "one of 'text', 'json_object' and 'json_schema'");
    }
  }
  auto read_vllm = [&](const Json& source, const std::string& prefix, bool nested) -> std::optional<OpenAiError> {
    const std::string json_key = nested ? "json" : "guided_json";
    const std::string regex_key = nested ? "regex" : "guided_regex";
    const std::string choice_key = nested ? "choice" : "guided_choice";
    const std::string grammar_key = nested ? "grammar" : "guided_grammar";
    if (const Json* value = Get(source, json_key); value != nullptr && !value->is_null()) {
      grammar::GrammarSpec spec;
      spec.kind = grammar::GrammarSpec::Kind::kJsonSchema;
      DUET_RETURN_IF_OPENAI_ERROR(ReadSchema(*value, prefix + json_key, &spec.schema));
      add(prefix + json_key, std::move(spec));
    }
    if (const Json* value = Get(source, regex_key); value != nullptr && !value->is_null()) {
      if (!value->is_string()) return MustBe(prefix + regex_key, "a string");
      grammar::GrammarSpec spec;
      spec.kind = grammar::GrammarSpec::Kind::kRegex;
      spec.regex = value->get<std::string>();
      add(prefix + regex_key, std::move(spec));
    }
    if (const Json* value = Get(source, choice_key); value != nullptr && !value->is_null()) {
      grammar::GrammarSpec spec;
      spec.kind = grammar::GrammarSpec::Kind::kChoice;
      DUET_RETURN_IF_OPENAI_ERROR(ReadChoices(*value, prefix + choice_key, &spec.choices));
      add(prefix + choice_key, std::move(spec));
    }
    if (const Json* value = Get(source, grammar_key); value != nullptr && !value->is_null()) {
      return InvalidRequestError(prefix + grammar_key + " (EBNF grammars) is not supported; use a JSON Schema, "
                                 "a regex or a list of choices", prefix + grammar_key);
    }
    if (nested) {
      if (const Json* value = Get(source, "json_object"); value != nullptr && !value->is_null()) {
        if (!value->is_boolean()) return MustBe(prefix + "json_object", "a boolean");
        if (value->get<bool>()) add(prefix + "json_object", {});
      }
    }
    return std::nullopt;
  };
  DUET_RETURN_IF_OPENAI_ERROR(read_vllm(body, "", /*nested=*/false));
  if (const Json* nested = Get(body, "structured_outputs"); nested != nullptr && !nested->is_null()) {
    if (!nested->is_object()) return MustBe("structured_outputs", "an object");
    DUET_RETURN_IF_OPENAI_ERROR(read_vllm(*nested, "structured_outputs.", /*nested=*/true));
  }
  if (found.size() > 1) {
    return InvalidRequestError(StrCat("only one output constraint may be given; got ", found[0].first, " and ",
                                      found[1].first),
                               found[1].first);
  }
  if (found.size() == 1) {
    settings->structured_param = std::move(found[0].first);
    settings->structured = std::move(found[0].second);
  }
  return std::nullopt;
}

// Fields both endpoints share, sampling first. `chat` selects the chat
// meaning of logprobs (a boolean with top_logprobs) over the completions one
// (an integer).
std::optional<OpenAiError> ParseGeneration(const Json& body, const ProtocolLimits& limits, bool chat,
                                           GenerationSettings* settings) {
  std::optional<std::string> model;
  DUET_RETURN_IF_OPENAI_ERROR(ReadString(body, "model", &model));
  if (model.has_value() && *model != limits.served_model_name) {
    OpenAiError error;
    error.status = 404;
    error.message = "The model does not exist; GET /v1/models lists the model this server serves.";
    error.param = "model";
    error.code = "model_not_found";
    return error;
  }
  std::optional<std::string> user;
  DUET_RETURN_IF_OPENAI_ERROR(ReadString(body, "user", &user));
  // vLLM's field: requests with different salts never share prefix-cache
  // blocks.
  std::optional<std::string> cache_salt;
  DUET_RETURN_IF_OPENAI_ERROR(ReadString(body, "cache_salt", &cache_salt));
  if (cache_salt.has_value()) {
    if (cache_salt->empty()) return MustBe("cache_salt", "a non-empty string");
    settings->request.cache_salt = *std::move(cache_salt);
  }

  DUET_RETURN_IF_OPENAI_ERROR(ReadBool(body, "stream", &settings->stream));
  if (const Json* options = Get(body, "stream_options")) {
    if (!options->is_object()) return MustBe("stream_options", "an object");
    if (!settings->stream) {
      return InvalidRequestError("stream_options may only be set when stream is true", "stream_options");
    }
    if (const Json* include = Get(*options, "include_usage")) {
      if (!include->is_boolean()) return MustBe("stream_options.include_usage", "a boolean");
      settings->include_usage = include->get<bool>();
    }
    for (const auto& [key, value] : options->items()) {
      if (key != "include_usage") settings->unknown_fields.push_back(StrCat("stream_options.", key));
    }
  }
  DUET_RETURN_IF_OPENAI_ERROR(ReadStructuredOutput(body, settings));

  engine::GenerateRequest& request = settings->request;
  engine::SamplingOptions& sampling = request.sampling;
  const GenerationDefaults& defaults = limits.generation_defaults;

  std::optional<double> number;
  DUET_RETURN_IF_OPENAI_ERROR(ReadNumber(body, "temperature", 0, 2, "between 0 and 2", &number));
  sampling.temperature = static_cast<float>(number.value_or(defaults.temperature.value_or(1.0)));
  number.reset();
  DUET_RETURN_IF_OPENAI_ERROR(ReadNumber(body, "top_p", std::numeric_limits<double>::min(), 1,
                                         "greater than 0 and at most 1", &number));
  if (number.has_value()) {
    sampling.top_p = static_cast<float>(*number);
  } else if (defaults.top_p.has_value() && *defaults.top_p > 0 && *defaults.top_p <= 1) {
    sampling.top_p = static_cast<float>(*defaults.top_p);
  }
  number.reset();
  DUET_RETURN_IF_OPENAI_ERROR(ReadNumber(body, "min_p", 0, 1, "between 0 and 1", &number));
  if (number.has_value()) sampling.min_p = static_cast<float>(*number);
  number.reset();
  DUET_RETURN_IF_OPENAI_ERROR(ReadNumber(body, "presence_penalty", -2, 2, "between -2 and 2", &number));
  sampling.presence_penalty = static_cast<float>(number.value_or(0));
  number.reset();
  DUET_RETURN_IF_OPENAI_ERROR(ReadNumber(body, "frequency_penalty", -2, 2, "between -2 and 2", &number));
  sampling.frequency_penalty = static_cast<float>(number.value_or(0));
  number.reset();
  DUET_RETURN_IF_OPENAI_ERROR(ReadNumber(body, "repetition_penalty", std::numeric_limits<double>::min(),
                                         std::numeric_limits<double>::max(), "greater than 0", &number));
  if (number.has_value()) {
    sampling.repetition_penalty = static_cast<float>(*number);
  } else if (defaults.repetition_penalty.has_value() && *defaults.repetition_penalty > 0) {
    sampling.repetition_penalty = static_cast<float>(*defaults.repetition_penalty);
  }

  std::optional<int64_t> integer;
  DUET_RETURN_IF_OPENAI_ERROR(ReadInteger(body, "top_k", -1, std::numeric_limits<int64_t>::max(),
                                          "-1, 0 (both off) or a positive integer", &integer));
  if (integer.has_value()) {
    if (*integer > 0) sampling.top_k = SaturateToInt32(*integer);
  } else if (defaults.top_k.has_value() && *defaults.top_k > 0) {
    sampling.top_k = SaturateToInt32(*defaults.top_k);
  }
  integer.reset();
  DUET_RETURN_IF_OPENAI_ERROR(ReadInteger(body, "seed", std::numeric_limits<int64_t>::min(),
                                          std::numeric_limits<int64_t>::max(), "an integer", &integer));
  if (integer.has_value()) sampling.seed = static_cast<uint64_t>(*integer);
  integer.reset();
  DUET_RETURN_IF_OPENAI_ERROR(ReadInteger(body, "n", 1, limits.engine.max_n,
                                          StrCat("between 1 and ", limits.engine.max_n), &integer));
  request.n = static_cast<int32_t>(integer.value_or(1));

  // max_completion_tokens replaced max_tokens in the chat API; it wins.
  for (const char* name : {"max_tokens", "max_completion_tokens"}) {
    if (!chat && std::string_view(name) == "max_completion_tokens") continue;
    integer.reset();
    DUET_RETURN_IF_OPENAI_ERROR(ReadInteger(body, name, 1, std::numeric_limits<int64_t>::max(),
                                            "a positive integer", &integer));
    if (integer.has_value()) {
      request.max_tokens = SaturateToInt32(*integer);
      settings->max_tokens_param = name;
    }
  }
  integer.reset();
  DUET_RETURN_IF_OPENAI_ERROR(ReadInteger(body, "min_tokens", 0, std::numeric_limits<int64_t>::max(),
                                          "a non-negative integer", &integer));
  request.min_tokens = SaturateToInt32(integer.value_or(0));
  if (request.max_tokens.has_value() && request.min_tokens > *request.max_tokens) {
    return InvalidRequestError(StrCat("min_tokens must not exceed ", settings->max_tokens_param), "min_tokens");
  }
  DUET_RETURN_IF_OPENAI_ERROR(ReadBool(body, "ignore_eos", &request.ignore_eos));
  DUET_RETURN_IF_OPENAI_ERROR(ReadBool(body, "skip_special_tokens", &request.skip_special_tokens));
  DUET_RETURN_IF_OPENAI_ERROR(ReadStop(body, limits.engine, &request.stop));
  if (const Json* ids = Get(body, "stop_token_ids")) {
    DUET_RETURN_IF_OPENAI_ERROR(ReadTokenIds(*ids, "stop_token_ids", limits.engine.vocab_size,
                                             &request.stop_token_ids));
  }
  DUET_RETURN_IF_OPENAI_ERROR(ReadLogitBias(body, limits.engine.vocab_size, &sampling.logit_bias));

  const int64_t max_top_logprobs = limits.engine.max_top_logprobs;
  const std::string top_range = StrCat("between 0 and ", max_top_logprobs);
  integer.reset();
  if (chat) {
    bool logprobs = false;
    DUET_RETURN_IF_OPENAI_ERROR(ReadBool(body, "logprobs", &logprobs));
    DUET_RETURN_IF_OPENAI_ERROR(ReadInteger(body, "top_logprobs", 0, max_top_logprobs, top_range, &integer));
    if (integer.has_value() && !logprobs) {
      return InvalidRequestError("top_logprobs requires logprobs to be true", "top_logprobs");
    }
    if (logprobs) settings->logprobs = static_cast<int32_t>(integer.value_or(0));
  } else {
    DUET_RETURN_IF_OPENAI_ERROR(ReadInteger(body, "logprobs", 0, max_top_logprobs, top_range, &integer));
    if (integer.has_value()) settings->logprobs = static_cast<int32_t>(*integer);
  }
  if (settings->logprobs.has_value()) sampling.top_logprobs = *settings->logprobs;
  return std::nullopt;
}

// Message content as text: a string, or the text parts of an array joined
// by newlines; null (an assistant turn with tool calls only) or absent is
// the empty text. As vLLM hands messages to the template: Qwen3's tests
// `'</think>' in message.content`, which null would fail.
std::optional<OpenAiError> FlattenContent(Json* content) {
  if (content->is_null()) {
    *content = "";
    return std::nullopt;
  }
  if (content->is_string()) return std::nullopt;
  if (!content->is_array()) return MustBe("messages", "objects whose content is a string or an array of parts");
  std::string text;
  bool first = true;
  for (const Json& part : *content) {
    if (!part.is_object()) return MustBe("messages", "objects whose content parts are objects");
    const Json* type = Get(part, "type");
    if (type == nullptr || !type->is_string() || type->get<std::string>() != "text") {
      return InvalidRequestError("only text content parts are supported", "messages");
    }
    const Json* part_text = Get(part, "text");
    if (part_text == nullptr || !part_text->is_string()) {
      return MustBe("messages", "objects whose text parts carry a string 'text'");
    }
    if (!first) text += '\n';
    text += part_text->get<std::string>();
    first = false;
  }
  *content = std::move(text);
  return std::nullopt;
}

std::optional<OpenAiError> ReadMessages(const Json& body, Json* messages) {
  const Json* value = Get(body, "messages");
  if (value == nullptr) return InvalidRequestError("'messages' is required", "messages");
  if (!value->is_array()) return MustBe("messages", "an array");
  if (value->empty()) return InvalidRequestError("'messages' must not be empty", "messages");
  *messages = Json::array();
  for (const Json& item : *value) {
    if (!item.is_object()) return MustBe("messages", "an array of objects");
    const Json* role = Get(item, "role");
    if (role == nullptr || !role->is_string()) return MustBe("messages", "objects with a string 'role'");
    Json message = item;
    if (!message.contains("content")) message["content"] = nullptr;
    // Assistant tool calls carry their arguments as JSON text; templates
    // (Llama 3's tojson) expect the object, so it is parsed, as vLLM does.
    if (Json* calls = message.contains("tool_calls") ? &message["tool_calls"] : nullptr; calls != nullptr && calls->is_array()) {
      for (Json& call : *calls) {
        if (!call.is_object() || !call.contains("function") || !call["function"].is_object()) continue;
        Json& function = call["function"];
        if (!function.contains("arguments") || !function["arguments"].is_string()) continue;
        const std::string& text = function["arguments"].get_ref<const std::string&>();
        Json parsed = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
        if (!parsed.is_discarded() && parsed.is_object()) function["arguments"] = std::move(parsed);
      }
    }
    DUET_RETURN_IF_OPENAI_ERROR(FlattenContent(&message["content"]));
    messages->push_back(std::move(message));
  }
  return std::nullopt;
}

std::optional<OpenAiError> ReadChatTemplateFields(const Json& body, ChatPromptRequest* prompt) {
  if (const Json* tools = Get(body, "tools")) {
    if (!tools->is_array()) return MustBe("tools", "an array");
    prompt->tools = *tools;
  }
  DUET_RETURN_IF_OPENAI_ERROR(ReadBool(body, "add_generation_prompt", &prompt->add_generation_prompt));
  if (const Json* kwargs = Get(body, "chat_template_kwargs")) {
    if (!kwargs->is_object()) return MustBe("chat_template_kwargs", "an object");
    prompt->template_kwargs = *kwargs;
  }
  return std::nullopt;
}

std::optional<OpenAiError> ReadCompletionPrompts(const Json& body, int32_t vocab_size,
                                                 std::vector<CompletionPrompt>* prompts) {
  constexpr std::string_view kShape =
      "a string, an array of strings, an array of token ids or an array of token-id arrays";
  const Json* value = Get(body, "prompt");
  if (value == nullptr) return InvalidRequestError("'prompt' is required", "prompt");
  if (value->is_string()) {
    prompts->push_back(CompletionPrompt{true, value->get<std::string>(), {}});
    return std::nullopt;
  }
  if (!value->is_array() || value->empty()) return MustBe("prompt", kShape);
  const Json& first = value->front();
  if (first.is_number()) {
    CompletionPrompt prompt{false, "", {}};
    DUET_RETURN_IF_OPENAI_ERROR(ReadTokenIds(*value, "prompt", vocab_size, &prompt.token_ids));
    prompts->push_back(std::move(prompt));
    return std::nullopt;
  }
  for (const Json& item : *value) {
    if (first.is_string() && item.is_string()) {
      prompts->push_back(CompletionPrompt{true, item.get<std::string>(), {}});
    } else if (first.is_array() && item.is_array()) {
      CompletionPrompt prompt{false, "", {}};
      DUET_RETURN_IF_OPENAI_ERROR(ReadTokenIds(item, "prompt", vocab_size, &prompt.token_ids));
      prompts->push_back(std::move(prompt));
    } else {
      return MustBe("prompt", kShape);
    }
  }
  return std::nullopt;
}

}  // namespace

OpenAiError InvalidRequestError(std::string message, std::string param, std::string code) {
  OpenAiError error;
  error.message = std::move(message);
  error.param = std::move(param);
  error.code = std::move(code);
  return error;
}

std::optional<OpenAiError> ParseJsonObject(std::string_view body, Json* object) {
  // Bounded nesting first: the parser and the values' destructors recurse.
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth) {
        return InvalidRequestError(StrCat("the request body nests deeper than ", kMaxJsonDepth, " levels"));
      }
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  Json parsed = Json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return InvalidRequestError("the request body is not valid JSON");
  if (!parsed.is_object()) return InvalidRequestError("the request body must be a JSON object");
  *object = std::move(parsed);
  return std::nullopt;
}

// tools (each {"type": "function", "function": {"name", "parameters"}}),
// tool_choice and parallel_tool_calls. Templates that know tool_choice see it.
std::optional<OpenAiError> ReadTools(const Json& body, ToolSettings* out) {
  if (const Json* tools = Get(body, "tools"); tools != nullptr && tools->is_array()) {
    for (const Json& tool : *tools) {
      const Json* function = tool.is_object() ? Get(tool, "function") : nullptr;
      const Json* type = tool.is_object() ? Get(tool, "type") : nullptr;
      const Json* name = function != nullptr && function->is_object() ? Get(*function, "name") : nullptr;
      if (type == nullptr || *type != "function" || name == nullptr || !name->is_string() ||
          name->get_ref<const std::string&>().empty()) {
        return MustBe("tools", "an array of {\"type\": \"function\", \"function\": {\"name\": ...}}");
      }
      grammar::ToolFunction parsed;
      parsed.name = name->get<std::string>();
      if (const Json* parameters = Get(*function, "parameters"); parameters != nullptr && !parameters->is_null()) {
        if (!parameters->is_object()) return MustBe("tools", "functions whose parameters are a JSON Schema object");
        parsed.parameters = *parameters;
      }
      out->functions.push_back(std::move(parsed));
    }
  }
  out->choice = out->functions.empty() ? ToolSettings::Choice::kNone : ToolSettings::Choice::kAuto;
  if (const Json* choice = Get(body, "tool_choice"); choice != nullptr && !choice->is_null()) {
    if (choice->is_string()) {
      const std::string& name = choice->get_ref<const std::string&>();
      if (name == "none") {
        out->choice = ToolSettings::Choice::kNone;
      } else if (name == "auto") {
        out->choice = ToolSettings::Choice::kAuto;
      } else if (name == "required") {
        out->choice = ToolSettings::Choice::kRequired;
      } else {
        return MustBe("tool_choice", "'none', 'auto', 'required' or {\"type\": \"function\", ...}");
      }
    } else if (choice->is_object()) {
      const Json* function = Get(*choice, "function");
      const Json* name = function != nullptr && function->is_object() ? Get(*function, "name") : nullptr;
      if (Get(*choice, "type") == nullptr || *Get(*choice, "type") != "function" || name == nullptr ||
          !name->is_string()) {
        return MustBe("tool_choice", "'none', 'auto', 'required' or {\"type\": \"function\", ...}");
      }
      out->choice = ToolSettings::Choice::kNamed;
      out->function = name->get<std::string>();
      const bool offered = std::any_of(out->functions.begin(), out->functions.end(),
                                       [&](const grammar::ToolFunction& f) { return f.name == out->function; });
      if (!offered) return InvalidRequestError("tool_choice names a function that is not in tools", "tool_choice");
    } else {
      return MustBe("tool_choice", "a string or an object");
    }
    if (out->functions.empty() && out->choice != ToolSettings::Choice::kNone) {
      return InvalidRequestError("tool_choice other than 'none' needs tools", "tool_choice");
    }
  }
  DUET_RETURN_IF_OPENAI_ERROR(ReadBool(body, "parallel_tool_calls", &out->parallel));
  return std::nullopt;
}

std::optional<OpenAiError> ParseChatCompletionRequest(const Json& body, const ProtocolLimits& limits,
                                                      ChatCompletionRequest* out) {
  DUET_RETURN_IF_OPENAI_ERROR(ReadMessages(body, &out->prompt.messages));
  DUET_RETURN_IF_OPENAI_ERROR(ParseGeneration(body, limits, /*chat=*/true, &out->settings));
  DUET_RETURN_IF_OPENAI_ERROR(ReadChatTemplateFields(body, &out->prompt));
  DUET_RETURN_IF_OPENAI_ERROR(ReadTools(body, &out->tools));
  if (const Json* tool_choice = Get(body, "tool_choice"); tool_choice != nullptr && !tool_choice->is_null()) {
    if (!out->prompt.template_kwargs.contains("tool_choice")) {
      out->prompt.template_kwargs["tool_choice"] = *tool_choice;
    }
  }
  CollectUnknown(body,
                 {"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "n", "stop",
                  "seed", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs",
                  "stream", "stream_options", "user", "tools", "tool_choice", "response_format", "top_k", "min_p",
                  "repetition_penalty", "min_tokens", "ignore_eos", "skip_special_tokens", "stop_token_ids",
                  "chat_template_kwargs", "add_generation_prompt", "cache_salt", "parallel_tool_calls", "guided_json", "guided_regex", "guided_choice", "guided_grammar",
                  "structured_outputs"},
                 &out->settings.unknown_fields);
  return std::nullopt;
}

std::optional<OpenAiError> ParseCompletionRequest(const Json& body, const ProtocolLimits& limits,
                                                  CompletionRequest* out) {
  DUET_RETURN_IF_OPENAI_ERROR(ReadCompletionPrompts(body, limits.engine.vocab_size, &out->prompts));
  DUET_RETURN_IF_OPENAI_ERROR(ParseGeneration(body, limits, /*chat=*/false, &out->settings));
  bool echo = false;
  DUET_RETURN_IF_OPENAI_ERROR(ReadBool(body, "echo", &echo));
  if (echo) return InvalidRequestError("echo is not supported yet", "echo");
  std::optional<std::string> suffix;
  DUET_RETURN_IF_OPENAI_ERROR(ReadString(body, "suffix", &suffix));
  if (suffix.has_value() && !suffix->empty()) return InvalidRequestError("suffix is not supported yet", "suffix");
  std::optional<int64_t> best_of;
  DUET_RETURN_IF_OPENAI_ERROR(ReadInteger(body, "best_of", 1, std::numeric_limits<int64_t>::max(),
                                          "a positive integer", &best_of));
  if (best_of.has_value() && *best_of != out->settings.request.n) {
    return InvalidRequestError("best_of other than n is not supported yet", "best_of");
  }
  CollectUnknown(body,
                 {"model", "prompt", "max_tokens", "temperature", "top_p", "n", "stop", "seed", "presence_penalty",
                  "frequency_penalty", "logit_bias", "logprobs", "stream", "stream_options", "user", "echo",
                  "suffix", "best_of", "response_format", "top_k", "min_p", "repetition_penalty", "min_tokens",
                  "ignore_eos", "skip_special_tokens", "stop_token_ids", "cache_salt", "guided_json", "guided_regex", "guided_choice", "guided_grammar",
                  "structured_outputs"},
                 &out->settings.unknown_fields);
  return std::nullopt;
}

std::optional<OpenAiError> ParseTokenizeRequest(const Json& body, TokenizeRequest* out) {
  if (Get(body, "messages") != nullptr) {
    out->is_chat = true;
    out->add_special_tokens = false;
    DUET_RETURN_IF_OPENAI_ERROR(ReadMessages(body, &out->chat.messages));
    DUET_RETURN_IF_OPENAI_ERROR(ReadChatTemplateFields(body, &out->chat));
  } else {
    std::optional<std::string> prompt;
    DUET_RETURN_IF_OPENAI_ERROR(ReadString(body, "prompt", &prompt));
    if (!prompt.has_value()) return InvalidRequestError("'prompt' or 'messages' is required", "prompt");
    out->prompt = *std::move(prompt);
  }
  DUET_RETURN_IF_OPENAI_ERROR(ReadBool(body, "add_special_tokens", &out->add_special_tokens));
  DUET_RETURN_IF_OPENAI_ERROR(ReadBool(body, "return_token_strs", &out->return_token_strs));
  return std::nullopt;
}

std::optional<OpenAiError> ParseDetokenizeRequest(const Json& body, std::vector<int32_t>* token_ids) {
  const Json* tokens = Get(body, "tokens");
  if (tokens == nullptr) return InvalidRequestError("'tokens' is required", "tokens");
  return ReadTokenIds(*tokens, "tokens", std::numeric_limits<int32_t>::max(), token_ids);
}

std::optional<OpenAiError> CheckContextLength(int32_t num_prompt_tokens, const GenerationSettings& settings,
                                              int32_t max_model_len, std::string_view prompt_param) {
  if (num_prompt_tokens >= max_model_len) {
    return InvalidRequestError(StrCat("This model's maximum context length is ", max_model_len,
                                      " tokens, but the prompt has ", num_prompt_tokens,
                                      " tokens, which leaves no room for output. Shorten the prompt."),
                               std::string(prompt_param), "context_length_exceeded");
  }
  const std::optional<int32_t>& max_tokens = settings.request.max_tokens;
  if (max_tokens.has_value() && *max_tokens > max_model_len - num_prompt_tokens) {
    return InvalidRequestError(StrCat("This model's maximum context length is ", max_model_len,
                                      " tokens; the prompt has ", num_prompt_tokens, " tokens, so ",
                                      settings.max_tokens_param, " may be at most ",
                                      max_model_len - num_prompt_tokens, "."),
                               settings.max_tokens_param, "context_length_exceeded");
  }
  return std::nullopt;
}


// ---- responses ------------------------------------------------------------

namespace {

Json NullIfEmpty(const std::string& text) { return text.empty() ? Json(nullptr) : Json(text); }

// JSON has no infinities; vLLM reports an impossible token as -9999.
double LogprobJson(float logprob) {
  if (std::isnan(logprob)) return -9999.0;
  return std::max<double>(logprob, -9999.0);
}

Json BytesJson(const std::vector<uint8_t>& bytes) {
  Json out = Json::array();
  for (uint8_t byte : bytes) out.push_back(byte);
  return out;
}

// Characters (code points) in valid UTF-8 text.
int64_t CountCharacters(std::string_view text) {
  int64_t count = 0;
  for (char c : text) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return count;
}

Json ResponseJson(const ResponseHeader& header, std::string_view object) {
  return Json{{"id", header.id}, {"object", object}, {"created", header.created}, {"model", header.model}};
}

}  // namespace

Json FinishReasonJson(engine::FinishReason reason) {
  if (reason == engine::FinishReason::kNone) return nullptr;
  return engine::FinishReasonName(reason);
}

Json StopReasonJson(const engine::EngineEvent& event, const std::vector<int32_t>& eos_token_ids) {
  if (event.stop_string.has_value()) return *event.stop_string;
  if (event.stop_token_id.has_value() &&
      std::find(eos_token_ids.begin(), eos_token_ids.end(), *event.stop_token_id) == eos_token_ids.end()) {
    return *event.stop_token_id;
  }
  return nullptr;
}

Json UsageJson(const UsageCounts& usage) {
  return Json{{"prompt_tokens", usage.prompt_tokens},
              {"completion_tokens", usage.completion_tokens},
              {"total_tokens", usage.prompt_tokens + usage.completion_tokens},
              {"prompt_tokens_details", {{"cached_tokens", usage.cached_prompt_tokens}}}};
}

Json ChatCompletionJson(const ResponseHeader& header, const std::vector<ChoiceOutput>& choices,
                        const UsageCounts& usage) {
  Json json = ResponseJson(header, "chat.completion");
  Json& out = json["choices"] = Json::array();
  for (const ChoiceOutput& choice : choices) {
    Json message = {{"role", "assistant"}};
    if (choice.reasoning.has_value()) {
      message["content"] = NullIfEmpty(choice.content);
      message["reasoning_content"] = NullIfEmpty(*choice.reasoning);
      message["reasoning"] = NullIfEmpty(*choice.reasoning);
    } else {
      message["content"] = choice.content;
    }
    const bool called = choice.tool_calls.is_array() && !choice.tool_calls.empty();
    if (called) message["content"] = NullIfEmpty(choice.content);
    message["tool_calls"] = called ? choice.tool_calls : Json::array();
    const Json finish_reason = called && choice.finish_reason == engine::FinishReason::kStop
                                   ? Json("tool_calls")
                                   : FinishReasonJson(choice.finish_reason);
    out.push_back(Json{{"index", choice.index},
                       {"message", std::move(message)},
                       {"logprobs", choice.logprobs},
                       {"finish_reason", finish_reason},
                       {"stop_reason", choice.stop_reason}});
  }
  json["usage"] = UsageJson(usage);
  return json;
}

Json CompletionJson(const ResponseHeader& header, const std::vector<ChoiceOutput>& choices,
                    const UsageCounts& usage) {
  Json json = ResponseJson(header, "text_completion");
  Json& out = json["choices"] = Json::array();
  for (const ChoiceOutput& choice : choices) {
    out.push_back(Json{{"index", choice.index},
                       {"text", choice.content},
                       {"logprobs", choice.logprobs},
                       {"finish_reason", FinishReasonJson(choice.finish_reason)},
                       {"stop_reason", choice.stop_reason}});
  }
  json["usage"] = UsageJson(usage);
  return json;
}

Json ChatChunkJson(const ResponseHeader& header, int32_t index, Json delta, Json logprobs, Json finish_reason,
                   Json stop_reason) {
  Json json = ResponseJson(header, "chat.completion.chunk");
  Json choice = {{"index", index}, {"delta", std::move(delta)}, {"logprobs", std::move(logprobs)},
                 {"finish_reason", std::move(finish_reason)}};
  if (!choice["finish_reason"].is_null()) choice["stop_reason"] = std::move(stop_reason);
  json["choices"] = Json::array({std::move(choice)});
  return json;
}

Json CompletionChunkJson(const ResponseHeader& header, int32_t index, std::string_view text, Json logprobs,
                         Json finish_reason, Json stop_reason) {
  Json json = ResponseJson(header, "text_completion");
  Json choice = {{"index", index}, {"text", text}, {"logprobs", std::move(logprobs)},
                 {"finish_reason", std::move(finish_reason)}};
  if (!choice["finish_reason"].is_null()) choice["stop_reason"] = std::move(stop_reason);
  json["choices"] = Json::array({std::move(choice)});
  return json;
}

Json UsageChunkJson(const ResponseHeader& header, std::string_view object, const UsageCounts& usage) {
  Json json = ResponseJson(header, object);
  json["choices"] = Json::array();
  json["usage"] = UsageJson(usage);
  return json;
}

Json ErrorJson(const OpenAiError& error) {
  return Json{{"error",
               {{"message", error.message},
                {"type", error.type},
                {"param", NullIfEmpty(error.param)},
                {"code", NullIfEmpty(error.code)}}}};
}

std::string DumpJson(const Json& json) { return json.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string SseEvent(const Json& json) { return StrCat("data: ", DumpJson(json), "\n\n"); }

// ---- logprobs -------------------------------------------------------------

TokenText TokenTextOf(const tokenizer::Tokenizer& tokenizer, int32_t token_id) {
  TokenText out;
  const absl::StatusOr<std::string_view> bytes = tokenizer.TokenBytes(token_id);
  if (!bytes.ok()) return out;
  out.text = Utf8Lossy(*bytes);
  out.bytes.assign(bytes->begin(), bytes->end());
  return out;
}

void AppendChatLogprobs(const tokenizer::Tokenizer& tokenizer, const std::vector<engine::TokenLogprob>& logprobs,
                        Json* content) {
  for (const engine::TokenLogprob& logprob : logprobs) {
    TokenText token = TokenTextOf(tokenizer, logprob.token_id);
    Json top = Json::array();
    for (const auto& [id, alternative] : logprob.top_logprobs) {
      TokenText text = TokenTextOf(tokenizer, id);
      top.push_back(Json{{"token", std::move(text.text)},
                         {"logprob", LogprobJson(alternative)},
                         {"bytes", BytesJson(text.bytes)}});
    }
    content->push_back(Json{{"token", std::move(token.text)},
                            {"logprob", LogprobJson(logprob.logprob)},
                            {"bytes", BytesJson(token.bytes)},
                            {"top_logprobs", std::move(top)}});
  }
}

void AppendCompletionLogprobs(const tokenizer::Tokenizer& tokenizer,
                              const std::vector<engine::TokenLogprob>& logprobs, int64_t* text_offset,
                              Json* completion_logprobs) {
  Json& out = *completion_logprobs;
  for (const engine::TokenLogprob& logprob : logprobs) {
    const TokenText token = TokenTextOf(tokenizer, logprob.token_id);
    Json top = Json::object();
    top[token.text] = LogprobJson(logprob.logprob);
    for (const auto& [id, alternative] : logprob.top_logprobs) {
      const std::string text = TokenTextOf(tokenizer, id).text;
      if (!top.contains(text)) top[text] = LogprobJson(alternative);
    }
    out["tokens"].push_back(token.text);
    out["token_logprobs"].push_back(LogprobJson(logprob.logprob));
    out["top_logprobs"].push_back(std::move(top));
    out["text_offset"].push_back(*text_offset);
    *text_offset += CountCharacters(token.text);
  }
}

Json EmptyChatLogprobs() { return Json{{"content", Json::array()}}; }

Json EmptyCompletionLogprobs() {
  return Json{{"tokens", Json::array()},
              {"token_logprobs", Json::array()},
              {"top_logprobs", Json::array()},
              {"text_offset", Json::array()}};
}

}  // namespace duet::api

#undef DUET_RETURN_IF_OPENAI_ERROR
