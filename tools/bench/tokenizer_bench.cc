// Single-thread encode throughput of duet's tokenizer, in bytes of UTF-8 input
// per second (Google Benchmark prints it as MiB/s: "Mi/s").
//
//   duet_tokenizer_bench [--benchmark_filter=...]
//
// Texts (identical to tools/bench/tokenizer_hf_bench.py's): 4 MiB built from
// the tokenizer test corpus (tests/router/tokenizer/testdata/corpus.json) with
// the LCG of corpus.big_text — "mixed" uses the whole corpus (many scripts,
// emoji, special-token strings), "english" its prose/code/whitespace/number
// part. Each is encoded as one string ("whole") and line by line ("lines").
// Tokenizers come from $DUET_ASSETS (default: the configured assets dir).
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "nlohmann/json.hpp"
#include "router/tokenizer/tokenizer.h"

namespace {

using duet::tokenizer::Tokenizer;

constexpr size_t kTextBytes = size_t{4} << 20;

std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

// Twin of corpus.big_text.
std::string BigText(const std::vector<std::string>& texts, size_t min_bytes) {
  static const char* const kSeparators[] = {"", " ", "\n", "\n\n", "\t", "  "};
  uint64_t state = 42;
  std::string out;
  while (out.size() < min_bytes) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    out += texts[(state >> 33) % texts.size()];
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    out += kSeparators[(state >> 33) % 6];
  }
  return out;
}

const std::string& Text(const std::string& kind) {
  static auto* texts = new std::map<std::string, std::string>();
  if (auto it = texts->find(kind); it != texts->end()) return it->second;
  const nlohmann::json corpus = nlohmann::json::parse(ReadFile(DUET_TOKENIZER_CORPUS));
  const auto strings =
      corpus[kind == "mixed" ? "texts" : "english_texts"].get<std::vector<std::string>>();
  return texts->emplace(kind, BigText(strings, kTextBytes)).first->second;
}

const Tokenizer* LoadTokenizer(const std::string& vocabulary) {
  static auto* tokenizers = new std::map<std::string, std::unique_ptr<Tokenizer>>();
  if (auto it = tokenizers->find(vocabulary); it != tokenizers->end()) return it->second.get();
  const char* env = std::getenv("DUET_ASSETS");
  const std::string assets = env != nullptr && *env != '\0' ? env : DUET_DEFAULT_ASSETS;
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      Tokenizer::FromFile(assets + "/tokenizers/" + vocabulary + "/tokenizer.json");
  if (!tokenizer.ok()) return nullptr;
  return tokenizers->emplace(vocabulary, *std::move(tokenizer)).first->second.get();
}

void BM_Encode(benchmark::State& state, const std::string& vocabulary, const std::string& kind,
               bool by_line) {
  const Tokenizer* tokenizer = LoadTokenizer(vocabulary);
  if (tokenizer == nullptr) {
    state.SkipWithError("tokenizer asset absent");
    return;
  }
  const std::string& text = Text(kind);
  std::vector<std::string_view> lines;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    end = end == std::string::npos ? text.size() : end + 1;
    lines.emplace_back(text.data() + start, end - start);
    start = end;
  }
  size_t num_ids = 0;
  for (auto _ : state) {
    num_ids = 0;
    if (by_line) {
      for (const std::string_view line : lines) num_ids += tokenizer->Encode(line, false)->size();
    } else {
      num_ids = tokenizer->Encode(text, false)->size();
    }
    benchmark::DoNotOptimize(num_ids);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["ids"] = static_cast<double>(num_ids);
}

void RegisterAll() {
  for (const char* vocabulary : {"llama3", "qwen3"}) {
    for (const char* kind : {"english", "mixed"}) {
      for (const bool by_line : {false, true}) {
        const std::string name = std::string("Encode/") + vocabulary + "/" + kind + "/" +
                                 (by_line ? "lines" : "whole");
        benchmark::RegisterBenchmark(name.c_str(), BM_Encode, vocabulary, kind, by_line)
            ->Unit(benchmark::kMillisecond)
            ->MinTime(2.0);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  RegisterAll();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
