// What the router needs from a model: its description (config.json +
// generation_config.json), its tokenizer (tokenizer.json) and its chat
// template with the bos/eos strings the template is rendered with
// (tokenizer_config.json, or chat_template.jinja beside it).
//
// The weights are the workers' business; the router never reads them.
//
// Thread-safety: immutable after LoadModelAssets; the tokenizer and the
// template may be used from any number of threads at once.
#ifndef DUET_ROUTER_API_MODEL_ASSETS_H_
#define DUET_ROUTER_API_MODEL_ASSETS_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "router/chat_template/chat_template.h"
#include "router/grammar/grammar_cache.h"
#include "router/tokenizer/tokenizer.h"

namespace duet::api {

struct ModelAssets {
  std::string model_dir;
  std::string tokenizer_dir;
  ModelConfig config;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
  // nullopt when the tokenizer directory has none (a base model): chat
  // requests are then refused.
  std::optional<chat_template::ChatTemplate> chat_template;
  std::string chat_template_source;  // its Jinja text (empty without one)
  // tokenizer_config.json's bos_token / eos_token (a string or an
  // {"content": ...} object); empty when absent or null.
  std::string bos_token;
  std::string eos_token;
  // Structured-output grammars compiled against this tokenizer (shared by
  // the front ends; null when the assets were not made by LoadModelAssets).
  std::shared_ptr<grammar::GrammarCache> grammars;
};

// The chat template of a tokenizer_config.json text: "chat_template" as one
// string, or the entry named "default" of a list of {"name", "template"}.
// nullopt when the field is absent or null. InvalidArgument (naming `source`)
// for any other shape, or a list without a "default" entry.
absl::StatusOr<std::optional<std::string>> ChatTemplateSource(std::string_view tokenizer_config_json,
                                                              std::string_view source);

// Loads <model_dir>/config.json (+ generation_config.json), and from
// `tokenizer_dir` (empty: model_dir) tokenizer.json and, when present,
// tokenizer_config.json and chat_template.jinja (which wins over
// tokenizer_config.json's template, as in transformers). Errors name the file.
// `model_dir` may name a GGUF file instead: its metadata is the config, and,
// unless `tokenizer_dir` names a directory, the tokenizer (gguf_vocab.h), the
// chat template (tokenizer.chat_template) and the bos/eos tokens.
absl::StatusOr<ModelAssets> LoadModelAssets(const std::string& model_dir, const std::string& tokenizer_dir);

}  // namespace duet::api

#endif  // DUET_ROUTER_API_MODEL_ASSETS_H_
