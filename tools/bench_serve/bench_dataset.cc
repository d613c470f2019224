#include "tools/bench_serve/bench_dataset.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/str_cat.h"

namespace duet::bench {
namespace {

// The ids a prompt may hold: every id with a token that is not special.
std::vector<int32_t> OrdinaryIds(const tokenizer::Tokenizer& tokenizer) {
  std::vector<int32_t> ids;
  ids.reserve(static_cast<size_t>(tokenizer.vocab_size()));
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    if (!tokenizer.IsSpecialToken(id) && tokenizer.TokenBytes(id).ok()) ids.push_back(id);
  }
  return ids;
}

int64_t CountTokens(const tokenizer::Tokenizer& tokenizer, const std::string& text) {
  absl::StatusOr<std::vector<int32_t>> ids = tokenizer.Encode(text, /*add_special_tokens=*/false);
  return ids.ok() ? static_cast<int64_t>(ids->size()) : 0;
}

}  // namespace

absl::StatusOr<std::vector<BenchPrompt>> RandomDataset(const tokenizer::Tokenizer& tokenizer,
                                                       const RandomDatasetOptions& options) {
  if (options.num_prompts < 1) return absl::InvalidArgumentError("--num-prompts must be at least 1");
  if (options.input_len < 1 || options.output_len < 1) {
    return absl::InvalidArgumentError("--random-input-len and --random-output-len must be at least 1");
  }
  if (options.prefix_len < 0) return absl::InvalidArgumentError("--random-prefix-len must not be negative");
  if (!(options.range_ratio >= 0 && options.range_ratio < 1)) {
    return absl::InvalidArgumentError("--random-range-ratio must be in [0, 1)");
  }
  const std::vector<int32_t> vocabulary = OrdinaryIds(tokenizer);
  if (vocabulary.empty()) return absl::InvalidArgumentError("the tokenizer has no ordinary tokens");
  std::mt19937_64 rng(options.seed);
  std::uniform_int_distribution<size_t> pick(0, vocabulary.size() - 1);
  const auto length = [&](int64_t mean) {
    const int64_t low = std::max<int64_t>(1, static_cast<int64_t>(std::floor(mean * (1 - options.range_ratio))));
    const int64_t high = std::max(low, static_cast<int64_t>(std::ceil(mean * (1 + options.range_ratio))));
    return std::uniform_int_distribution<int64_t>(low, high)(rng);
  };
  std::vector<int32_t> prefix(static_cast<size_t>(options.prefix_len));
  for (int32_t& id : prefix) id = vocabulary[pick(rng)];
  std::vector<BenchPrompt> prompts;
  prompts.reserve(static_cast<size_t>(options.num_prompts));
  for (int64_t i = 0; i < options.num_prompts; ++i) {
    std::vector<int32_t> ids = prefix;
    const int64_t input_len = length(options.input_len);
    for (int64_t t = 0; t < input_len; ++t) ids.push_back(vocabulary[pick(rng)]);
    absl::StatusOr<std::string> text = tokenizer.Decode(ids, /*skip_special_tokens=*/true);
    if (!text.ok()) return text.status();
    BenchPrompt prompt{.text = *std::move(text), .output_tokens = length(options.output_len)};
    prompt.prompt_tokens = CountTokens(tokenizer, prompt.text);
    prompts.push_back(std::move(prompt));
  }
  return prompts;
}

absl::StatusOr<std::vector<BenchPrompt>> ShareGptDataset(const tokenizer::Tokenizer& tokenizer,
                                                         const std::string& path, int64_t num_prompts,
                                                         std::optional<int64_t> output_len, uint64_t seed) {
  if (num_prompts < 1) return absl::InvalidArgumentError("--num-prompts must be at least 1");
  std::ifstream file(path);
  if (!file) return absl::NotFoundError(StrCat("cannot open the dataset ", path));
  std::stringstream text;
  text << file.rdbuf();
  const nlohmann::json root = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return absl::InvalidArgumentError(StrCat(path, ": not valid JSON"));
  if (!root.is_array()) return absl::InvalidArgumentError(StrCat(path, ": expected a list of conversations"));
  // The first two turns' texts of every entry that has them.
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const nlohmann::json& entry : root) {
    if (!entry.is_object()) continue;
    const auto conversations = entry.find("conversations");
    if (conversations == entry.end() || !conversations->is_array() || conversations->size() < 2) continue;
    const nlohmann::json& first = (*conversations)[0];
    const nlohmann::json& second = (*conversations)[1];
    if (!first.is_object() || !second.is_object() || !first.contains("value") || !second.contains("value") ||
        !first["value"].is_string() || !second["value"].is_string()) {
      continue;
    }
    pairs.emplace_back(first["value"].get<std::string>(), second["value"].get<std::string>());
  }
  std::mt19937_64 rng(seed);
  std::shuffle(pairs.begin(), pairs.end(), rng);
  std::vector<BenchPrompt> prompts;
  for (const auto& [prompt_text, answer] : pairs) {
    if (static_cast<int64_t>(prompts.size()) == num_prompts) break;
    BenchPrompt prompt{.text = prompt_text, .prompt_tokens = CountTokens(tokenizer, prompt_text)};
    prompt.output_tokens = output_len.value_or(CountTokens(tokenizer, answer));
    if (prompt.prompt_tokens < 4 || prompt.output_tokens < 4) continue;
    if (prompt.prompt_tokens > 1024 || prompt.prompt_tokens + prompt.output_tokens > 2048) continue;
    prompts.push_back(std::move(prompt));
  }
  if (prompts.empty()) return absl::InvalidArgumentError(StrCat(path, ": no usable conversation"));
  return prompts;
}

}  // namespace duet::bench
