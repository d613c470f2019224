// What structured output costs the router per token: the allowed-token mask
// of a nested JSON Schema over the Qwen3 vocabulary (151,665 tokens), as the
// engine computes it (the bitmask the step carries, then the sampled token
// accepted), walking documents tokenized by the real tokenizer.
//
//   BM_VocabularyBuild      the vocabulary's sorted token bytes (once per model)
//   BM_GrammarCold          a fresh compiled grammar: every per-position split
//                           and state mask computed for the first time
//   BM_GrammarWarm          the same schema again with other values (what a
//                           server sees after its first request): p50 / p99
//                           of the per-token time as counters, in µs
//
// Tokenizers come from $DUET_ASSETS (default: the configured assets dir).
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/str_cat.h"
#include "nlohmann/json.hpp"
#include "router/grammar/compiled_grammar.h"
#include "router/grammar/grammar_matcher.h"
#include "router/grammar/json_schema_grammar.h"
#include "router/tokenizer/tokenizer.h"

namespace duet::grammar {
namespace {

constexpr const char* kSchema = R"({"type": "object", "properties": {
    "city": {"type": "string"}, "country": {"type": "string", "maxLength": 40},
    "days": {"type": "integer", "minimum": 1, "maximum": 30},
    "unit": {"enum": ["celsius", "fahrenheit"]}, "budget": {"type": ["number", "null"]},
    "stops": {"type": "array", "maxItems": 8, "items": {"type": "object", "properties": {
        "name": {"type": "string"}, "open": {"type": "boolean"}, "rating": {"type": "integer", "minimum": 0, "maximum": 5},
        "tags": {"type": "array", "items": {"type": "string"}}}, "required": ["name", "open"]}}},
    "required": ["city", "days", "unit", "stops"]})";

const tokenizer::Tokenizer& Qwen3() {
  static const tokenizer::Tokenizer* loaded = [] {
    const char* env = std::getenv("DUET_ASSETS");
    const std::string assets = env != nullptr && *env != '\0' ? env : DUET_DEFAULT_ASSETS;
    auto tokenizer = tokenizer::Tokenizer::FromFile(assets + "/tokenizers/qwen3/tokenizer.json");
    if (!tokenizer.ok()) {
      std::fprintf(stderr, "cannot load the Qwen3 tokenizer: %s\n", std::string(tokenizer.status().message()).c_str());
      std::exit(1);
    }
    return tokenizer->release();
  }();
  return *loaded;
}

std::shared_ptr<const TokenVocabulary> Vocabulary() {
  static const auto vocabulary = TokenVocabulary::FromTokenizer(Qwen3());
  return vocabulary;
}

// Document `i`: the schema's shape with values that differ per document.
std::vector<int32_t> Document(int i) {
  const char* cities[] = {"Zürich", "Kyoto", "São Paulo", "Reykjavík", "Nairobi", "Oslo", "Montréal", "Lima"};
  std::string text = StrCat(R"({"city": ")", cities[i % 8], R"(", "country": "C)", i, R"(", "days": )",
                            1 + i * 3 % 30, R"(, "unit": ")", i % 2 ? "celsius" : "fahrenheit",
                            R"(", "budget": )", i % 3 ? StrCat(i * 125.5) : "null", R"(, "stops": [)");
  for (int s = 0; s < 2 + i % 3; ++s) {
    if (s > 0) text += ", ";
    text += StrCat(R"({"name": "Stop )", s, " of ", cities[(i + s) % 8], R"(", "open": )", s % 2 ? "true" : "false",
                   R"(, "rating": )", (i + s) % 6, R"(, "tags": ["old town", "view \"north\""]})");
  }
  text += "]}";
  return *Qwen3().Encode(text, /*add_special_tokens=*/false);
}

// One document through a matcher, as the engine does it per token.
void Walk(const std::shared_ptr<CompiledGrammar>& grammar, const std::vector<int32_t>& ids,
          std::vector<double>* micros) {
  GrammarMatcher matcher(grammar, {151645});
  const int32_t model_vocab = 151936;
  for (int32_t id : ids) {
    const auto start = std::chrono::steady_clock::now();
    std::string mask = matcher.NextTokenBitmask(model_vocab);
    benchmark::DoNotOptimize(mask.data());
    const bool accepted = matcher.AcceptToken(id);
    const auto end = std::chrono::steady_clock::now();
    if (!accepted) std::abort();
    if (micros != nullptr) micros->push_back(std::chrono::duration<double, std::micro>(end - start).count());
  }
}

Grammar SchemaGrammar() { return *JsonSchemaGrammar(nlohmann::ordered_json::parse(kSchema)); }

void BM_VocabularyBuild(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(TokenVocabulary::FromTokenizer(Qwen3()));
}
BENCHMARK(BM_VocabularyBuild)->Unit(benchmark::kMillisecond);

void BM_GrammarCold(benchmark::State& state) {
  const Grammar grammar = SchemaGrammar();
  const std::vector<int32_t> ids = Document(0);
  for (auto _ : state) {
    auto compiled = std::make_shared<CompiledGrammar>(grammar, Vocabulary());
    Walk(compiled, ids, nullptr);
  }
  state.counters["tokens"] = static_cast<double>(ids.size());
  state.counters["ms_per_token"] = benchmark::Counter(static_cast<double>(ids.size()),
                                                      benchmark::Counter::kIsIterationInvariantRate |
                                                          benchmark::Counter::kInvert);
}
BENCHMARK(BM_GrammarCold)->Unit(benchmark::kMillisecond);

void BM_GrammarWarm(benchmark::State& state) {
  const Grammar grammar = SchemaGrammar();
  auto compiled = std::make_shared<CompiledGrammar>(grammar, Vocabulary());
  Walk(compiled, Document(0), nullptr);  // the server's first request
  std::vector<std::vector<int32_t>> documents;
  for (int i = 1; i <= 64; ++i) documents.push_back(Document(i));
  std::vector<double> micros;
  size_t next = 0;
  for (auto _ : state) Walk(compiled, documents[next++ % documents.size()], &micros);
  std::sort(micros.begin(), micros.end());
  auto percentile = [&](double p) { return micros[static_cast<size_t>(p / 100 * (micros.size() - 1))]; };
  state.counters["p50_us"] = percentile(50);
  state.counters["p90_us"] = percentile(90);
  state.counters["p99_us"] = percentile(99);
  state.counters["tokens"] = static_cast<double>(micros.size());
}
BENCHMARK(BM_GrammarWarm)->Unit(benchmark::kMicrosecond)->Iterations(64);

}  // namespace
}  // namespace duet::grammar

BENCHMARK_MAIN();
