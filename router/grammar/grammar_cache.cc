#include "router/grammar/grammar_cache.h"

#include "router/grammar/json_schema_grammar.h"
#include "router/grammar/regex_grammar.h"

namespace duet::grammar {
namespace {

std::string KeyOf(const GrammarSpec& spec) {
  switch (spec.kind) {
    case GrammarSpec::Kind::kJsonSchema: return "schema:" + spec.schema.dump();
    case GrammarSpec::Kind::kJsonObject: return "object";
    case GrammarSpec::Kind::kRegex: return "regex:" + spec.regex;
    case GrammarSpec::Kind::kChoice: return "choice:" + nlohmann::ordered_json(spec.choices).dump();
    case GrammarSpec::Kind::kToolCalls: {
      nlohmann::ordered_json key = {{"format", spec.tool_format}, {"parallel", spec.parallel_tool_calls}};
      for (const ToolFunction& function : spec.functions) {
        key["functions"].push_back({{"name", function.name}, {"parameters", function.parameters}});
      }
      return "tools:" + key.dump();
    }
  }
  return "";
}

absl::StatusOr<Grammar> GrammarOf(const GrammarSpec& spec) {
  switch (spec.kind) {
    case GrammarSpec::Kind::kJsonSchema: return JsonSchemaGrammar(spec.schema);
    case GrammarSpec::Kind::kJsonObject: return JsonObjectGrammar();
    case GrammarSpec::Kind::kRegex: return RegexGrammar(spec.regex);
    case GrammarSpec::Kind::kChoice: return ChoiceGrammar(spec.choices);
    case GrammarSpec::Kind::kToolCalls: return ToolCallGrammar(spec.tool_format, spec.functions, spec.parallel_tool_calls);
  }
  return absl::InternalError("unknown constraint kind");
}

}  // namespace

GrammarCache::GrammarCache(const tokenizer::Tokenizer* tokenizer, size_t capacity)
    : tokenizer_(tokenizer), capacity_(capacity) {}

std::shared_ptr<const TokenVocabulary> GrammarCache::Vocabulary() {
  if (vocabulary_ == nullptr) vocabulary_ = TokenVocabulary::FromTokenizer(*tokenizer_);
  return vocabulary_;
}

absl::StatusOr<std::shared_ptr<CompiledGrammar>> GrammarCache::Compile(const GrammarSpec& spec) {
  const std::string key = KeyOf(spec);
  {
    absl::MutexLock lock(&mu_);
    auto found = index_.find(key);
    if (found != index_.end()) {
      entries_.splice(entries_.begin(), entries_, found->second);
      return found->second->second;
    }
  }
  // Compiled outside the lock: a large schema does not hold up the others.
  absl::StatusOr<Grammar> grammar = GrammarOf(spec);
  if (!grammar.ok()) return grammar.status();
  absl::MutexLock lock(&mu_);
  auto compiled = std::make_shared<CompiledGrammar>(*grammar, Vocabulary());
  auto found = index_.find(key);
  if (found != index_.end()) return found->second->second;  // compiled twice at once: keep the first
  entries_.emplace_front(key, compiled);
  index_[key] = entries_.begin();
  while (entries_.size() > capacity_) {
    index_.erase(entries_.back().first);
    entries_.pop_back();
  }
  return compiled;
}

}  // namespace duet::grammar
