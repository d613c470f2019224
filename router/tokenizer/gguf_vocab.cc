#include "router/tokenizer/gguf_vocab.h"

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "common/str_cat.h"
#include "nlohmann/json.hpp"

namespace duet::tokenizer {
namespace {

using ::duet::StrCat;

using nlohmann::json;

// The splits of the HF tokenizers these vocabularies were converted from.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr std::string_view kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kDigitPattern = R"(\p{N})";

// llama.cpp's token types (llama_token_type).
constexpr int64_t kTokenTypeControl = 3;
constexpr int64_t kTokenTypeUserDefined = 4;

struct PreTokenizer {
  std::string_view name;
  std::vector<std::string_view> patterns;
  bool ignore_merges;  // a piece that is itself a token skips BPE (Llama 3)
};

const std::vector<PreTokenizer>& PreTokenizers() {
  static const auto* table = new std::vector<PreTokenizer>{
      {"llama-bpe", {kLlama3Pattern}, true},
      {"qwen2", {kQwen2Pattern}, false},
      {"smollm", {kDigitPattern, kGpt2Pattern}, false},
      {"starcoder", {kDigitPattern, kGpt2Pattern}, false},
      {"gpt-2", {kGpt2Pattern}, false},
  };
  return *table;
}

absl::StatusOr<const PreTokenizer*> FindPreTokenizer(std::string_view pre) {
  std::string names;
  for (const PreTokenizer& entry : PreTokenizers()) {
    if (entry.name == pre) return &entry;
    names += StrCat(names.empty() ? "" : ", ", entry.name);
  }
  return absl::UnimplementedError(
      StrCat("tokenizer.ggml.pre \"", pre, "\" is not supported (supported: ", names, ")"));
}

absl::Status InFile(const GgufFile& file, const absl::Status& status) {
  return absl::Status(status.code(), StrCat(file.path(), ": ", status.message()));
}

}  // namespace

absl::StatusOr<std::vector<std::string>> GgufPreTokenizerPatterns(std::string_view pre) {
  absl::StatusOr<const PreTokenizer*> entry = FindPreTokenizer(pre);
  if (!entry.ok()) return entry.status();
  return std::vector<std::string>((*entry)->patterns.begin(), (*entry)->patterns.end());
}

absl::StatusOr<std::string> TokenizerJsonFromGguf(const GgufFile& file) {
  absl::StatusOr<std::string_view> model = file.GetString("tokenizer.ggml.model");
  if (!model.ok()) return InFile(file, model.status());
  if (*model != "gpt2") {
    return InFile(file, absl::UnimplementedError(StrCat(
                            "tokenizer.ggml.model \"", *model,
                            "\" is not supported: duet reads byte-level BPE (\"gpt2\") vocabularies; "
                            "give the model's tokenizer.json directory with --tokenizer")));
  }
  absl::StatusOr<std::span<const std::string>> tokens = file.GetStringArray("tokenizer.ggml.tokens");
  if (!tokens.ok()) return InFile(file, tokens.status());
  absl::StatusOr<std::span<const std::string>> merges = file.GetStringArray("tokenizer.ggml.merges");
  if (!merges.ok()) return InFile(file, merges.status());
  std::vector<int64_t> token_types(tokens->size(), 1);
  if (file.FindMetadata("tokenizer.ggml.token_type") != nullptr) {
    absl::StatusOr<std::vector<int64_t>> types = file.GetIntArray("tokenizer.ggml.token_type");
    if (!types.ok()) return InFile(file, types.status());
    if (types->size() != tokens->size()) {
      return InFile(file, absl::InvalidArgumentError(StrCat(
                              "tokenizer.ggml.token_type has ", types->size(), " entries for ",
                              tokens->size(), " tokens")));
    }
    token_types = *std::move(types);
  }
  std::string pre_name = "gpt-2";
  if (file.FindMetadata("tokenizer.ggml.pre") != nullptr) {
    absl::StatusOr<std::string_view> pre = file.GetString("tokenizer.ggml.pre");
    if (!pre.ok()) return InFile(file, pre.status());
    pre_name = std::string(*pre);
  }
  absl::StatusOr<const PreTokenizer*> pre = FindPreTokenizer(pre_name);
  if (!pre.ok()) return InFile(file, pre.status());

  json vocab = json::object();
  json added_tokens = json::array();
  for (size_t id = 0; id < tokens->size(); ++id) {
    const std::string& token = (*tokens)[id];
    vocab[token] = id;
    if (token_types[id] == kTokenTypeControl || token_types[id] == kTokenTypeUserDefined) {
      added_tokens.push_back({{"id", id},
                              {"content", token},
                              {"single_word", false},
                              {"lstrip", false},
                              {"rstrip", false},
                              {"normalized", false},
                              {"special", token_types[id] == kTokenTypeControl}});
    }
  }
  json splits = json::array();
  for (std::string_view pattern : (*pre)->patterns) {
    splits.push_back({{"type", "Split"},
                      {"pattern", {{"Regex", pattern}}},
                      {"behavior", "Isolated"},
                      {"invert", false}});
  }
  splits.push_back({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}});

  json post_processor = nullptr;
  bool add_bos = false;
  if (file.FindMetadata("tokenizer.ggml.add_bos_token") != nullptr) {
    absl::StatusOr<bool> value = file.GetBool("tokenizer.ggml.add_bos_token");
    if (!value.ok()) return InFile(file, value.status());
    add_bos = *value;
  }
  if (add_bos) {
    absl::StatusOr<int64_t> bos = file.GetInt("tokenizer.ggml.bos_token_id");
    if (!bos.ok()) return InFile(file, bos.status());
    if (*bos < 0 || *bos >= static_cast<int64_t>(tokens->size())) {
      return InFile(file, absl::InvalidArgumentError(StrCat(
                              "tokenizer.ggml.bos_token_id ", *bos, " is not a token id")));
    }
    const std::string& bos_token = (*tokens)[*bos];
    post_processor = {
        {"type", "TemplateProcessing"},
        {"single", json::array({{{"SpecialToken", {{"id", bos_token}, {"type_id", 0}}}},
                                {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
        {"special_tokens",
         {{bos_token, {{"id", bos_token}, {"ids", json::array({*bos})}, {"tokens", json::array({bos_token})}}}}}};
  }

  json root = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added_tokens},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", splits}}},
      {"post_processor", post_processor},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", (*pre)->ignore_merges},
        {"vocab", std::move(vocab)},
        {"merges", json(std::vector<std::string>(merges->begin(), merges->end()))}}},
  };
  return root.dump();
}

absl::StatusOr<std::unique_ptr<Tokenizer>> TokenizerFromGguf(const GgufFile& file) {
  absl::StatusOr<std::string> text = TokenizerJsonFromGguf(file);
  if (!text.ok()) return text.status();
  return Tokenizer::FromJson(*text, file.path());
}

}  // namespace duet::tokenizer
