#include "router/api/model_assets.h"

#include <climits>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "common/gguf.h"
#include "common/gguf_model_config.h"
#include "common/json_fields.h"
#include "common/status_macros.h"
#include "common/str_cat.h"
#include "nlohmann/json.hpp"
#include "router/tokenizer/gguf_vocab.h"

namespace duet::api {
namespace {

bool FileExists(const std::filesystem::path& path) {
  std::error_code error;
  return std::filesystem::is_regular_file(path, error);
}

absl::StatusOr<std::string> ReadFile(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(StrCat("cannot read ", path.string()));
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad()) return absl::DataLossError(StrCat("error reading ", path.string()));
  return text.str();
}

// bos_token / eos_token: a string, an AddedToken object {"content": ...}, or
// null.
absl::StatusOr<std::string> SpecialTokenString(const nlohmann::json& config, std::string_view key,
                                               std::string_view source) {
  const auto it = config.find(std::string(key));
  if (it == config.end() || it->is_null()) return std::string();
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    const auto content = it->find("content");
    if (content != it->end() && content->is_string()) return content->get<std::string>();
  }
  return absl::InvalidArgumentError(
      StrCat(source, ": field \"", key, "\" must be a string or an object with a string \"content\""));
}

absl::StatusOr<std::optional<std::string>> TemplateFromConfig(const nlohmann::json& config,
                                                              std::string_view source) {
  const auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) return std::optional<std::string>();
  if (it->is_string()) return std::optional<std::string>(it->get<std::string>());
  if (!it->is_array()) {
    return absl::InvalidArgumentError(
        StrCat(source, ": field \"chat_template\" must be a string or a list of named templates"));
  }
  for (const nlohmann::json& entry : *it) {
    if (!entry.is_object()) {
      return absl::InvalidArgumentError(
          StrCat(source, ": field \"chat_template\": every entry must be an object {\"name\", \"template\"}"));
    }
    const auto name = entry.find("name");
    const auto text = entry.find("template");
    if (name == entry.end() || !name->is_string() || text == entry.end() || !text->is_string()) {
      return absl::InvalidArgumentError(
          StrCat(source, ": field \"chat_template\": every entry needs string \"name\" and \"template\""));
    }
    if (name->get<std::string>() == "default") return std::optional<std::string>(text->get<std::string>());
  }
  return absl::InvalidArgumentError(
      StrCat(source, ": field \"chat_template\" is a list without an entry named \"default\""));
}

absl::StatusOr<nlohmann::json> ParseTokenizerConfig(std::string_view text, std::string_view source) {
  DUET_ASSIGN_OR_RETURN(nlohmann::json config, ParseJsonText(text, source));
  DUET_RETURN_IF_ERROR(JsonFields::ExpectObject(config, source, "the top level"));
  return config;
}

absl::StatusOr<chat_template::ChatTemplate> ParseTemplate(const std::string& source, const std::string& owner) {
  absl::StatusOr<chat_template::ChatTemplate> parsed = chat_template::ChatTemplate::Parse(source);
  if (!parsed.ok()) {
    return absl::Status(parsed.status().code(), StrCat("chat template of ", owner, ": ", parsed.status().message()));
  }
  return parsed;
}

// The text of token `key` (a token id in the metadata), or "" when absent.
absl::StatusOr<std::string> GgufTokenText(const GgufFile& file, const tokenizer::Tokenizer& tokenizer,
                                          std::string_view key) {
  if (file.FindMetadata(key) == nullptr) return std::string();
  DUET_ASSIGN_OR_RETURN(const int64_t id, file.GetInt(key));
  const std::optional<std::string_view> token =
      id >= 0 && id <= INT32_MAX ? tokenizer.IdToToken(static_cast<int32_t>(id)) : std::nullopt;
  if (!token.has_value()) {
    return absl::InvalidArgumentError(StrCat(file.path(), ": metadata key ", key, " = ", id, " is not a token id"));
  }
  return std::string(*token);
}

// A GGUF file carries its tokenizer and chat template in its metadata.
absl::StatusOr<ModelAssets> LoadGgufTokenizer(ModelAssets assets) {
  DUET_ASSIGN_OR_RETURN(const std::unique_ptr<GgufFile> file, GgufFile::Open(assets.tokenizer_dir));
  DUET_ASSIGN_OR_RETURN(assets.tokenizer, tokenizer::TokenizerFromGguf(*file));
  DUET_ASSIGN_OR_RETURN(assets.bos_token, GgufTokenText(*file, *assets.tokenizer, "tokenizer.ggml.bos_token_id"));
  DUET_ASSIGN_OR_RETURN(assets.eos_token, GgufTokenText(*file, *assets.tokenizer, "tokenizer.ggml.eos_token_id"));
  if (file->FindMetadata("tokenizer.chat_template") != nullptr) {
    DUET_ASSIGN_OR_RETURN(const std::string_view source, file->GetString("tokenizer.chat_template"));
    DUET_ASSIGN_OR_RETURN(assets.chat_template, ParseTemplate(std::string(source), assets.tokenizer_dir));
    assets.chat_template_source = std::string(source);
  }
  return assets;
}

absl::StatusOr<ModelAssets> LoadAssetFiles(const std::string& model_dir, const std::string& tokenizer_dir) {
  ModelAssets assets;
  assets.model_dir = model_dir;
  assets.tokenizer_dir = tokenizer_dir.empty() ? model_dir : tokenizer_dir;
  DUET_ASSIGN_OR_RETURN(assets.config, LoadModelConfig(model_dir));
  if (IsGgufFile(assets.tokenizer_dir)) return LoadGgufTokenizer(std::move(assets));

  const std::filesystem::path dir(assets.tokenizer_dir);
  const std::filesystem::path tokenizer_path = dir / "tokenizer.json";
  if (!FileExists(tokenizer_path)) {
    return absl::NotFoundError(StrCat("no tokenizer.json in ", assets.tokenizer_dir,
                                      " (give the tokenizer's directory with --tokenizer)"));
  }
  DUET_ASSIGN_OR_RETURN(assets.tokenizer, tokenizer::Tokenizer::FromFile(tokenizer_path.string()));

  std::optional<std::string> template_source;
  const std::filesystem::path config_path = dir / "tokenizer_config.json";
  if (FileExists(config_path)) {
    DUET_ASSIGN_OR_RETURN(const std::string config_text, ReadFile(config_path));
    const std::string source = config_path.string();
    DUET_ASSIGN_OR_RETURN(const nlohmann::json config, ParseTokenizerConfig(config_text, source));
    DUET_ASSIGN_OR_RETURN(template_source, TemplateFromConfig(config, source));
    DUET_ASSIGN_OR_RETURN(assets.bos_token, SpecialTokenString(config, "bos_token", source));
    DUET_ASSIGN_OR_RETURN(assets.eos_token, SpecialTokenString(config, "eos_token", source));
  }
  const std::filesystem::path jinja_path = dir / "chat_template.jinja";
  if (FileExists(jinja_path)) {
    DUET_ASSIGN_OR_RETURN(template_source, ReadFile(jinja_path));
  }
  if (template_source.has_value()) {
    DUET_ASSIGN_OR_RETURN(assets.chat_template, ParseTemplate(*template_source, assets.tokenizer_dir));
    assets.chat_template_source = *template_source;
  }
  return assets;
}

}  // namespace

absl::StatusOr<std::optional<std::string>> ChatTemplateSource(std::string_view tokenizer_config_json,
                                                              std::string_view source) {
  DUET_ASSIGN_OR_RETURN(const nlohmann::json config, ParseTokenizerConfig(tokenizer_config_json, source));
  return TemplateFromConfig(config, source);
}

absl::StatusOr<ModelAssets> LoadModelAssets(const std::string& model_dir, const std::string& tokenizer_dir) {
  DUET_ASSIGN_OR_RETURN(ModelAssets assets, LoadAssetFiles(model_dir, tokenizer_dir));
  assets.grammars = std::make_shared<grammar::GrammarCache>(assets.tokenizer.get());
  return assets;
}

}  // namespace duet::api
