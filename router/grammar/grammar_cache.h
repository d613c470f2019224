// Structured-output constraints as requests state them, compiled once per
// distinct constraint against the model's vocabulary and shared by every
// request that states it again (with the masks it has cached).
//
// Thread-safety: Compile may be called from any thread.
#ifndef DUET_ROUTER_GRAMMAR_GRAMMAR_CACHE_H_
#define DUET_ROUTER_GRAMMAR_GRAMMAR_CACHE_H_

#include <cstddef>
#include <list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "router/grammar/compiled_grammar.h"
#include "router/grammar/token_vocabulary.h"
#include "router/grammar/tool_call_grammar.h"
#include "router/tokenizer/tokenizer.h"

namespace duet::grammar {

struct GrammarSpec {
  enum class Kind { kJsonSchema, kJsonObject, kRegex, kChoice, kToolCalls };
  Kind kind = Kind::kJsonObject;
  nlohmann::ordered_json schema;     // kJsonSchema
  std::string regex;                 // kRegex
  std::vector<std::string> choices;  // kChoice
  // kToolCalls (tool_call_grammar.h): the format, the functions that may be
  // called, and whether several calls may follow each other.
  std::string tool_format;
  std::vector<ToolFunction> functions;
  bool parallel_tool_calls = true;
};

class GrammarCache {
 public:
  // `tokenizer` must outlive the cache. The vocabulary is read from it on
  // the first Compile, so servers that never see a constraint pay nothing.
  explicit GrammarCache(const tokenizer::Tokenizer* tokenizer, size_t capacity = 64);

  // InvalidArgument naming what the constraint asks that duet cannot
  // enforce (a schema keyword, a regex construct).
  absl::StatusOr<std::shared_ptr<CompiledGrammar>> Compile(const GrammarSpec& spec);

 private:
  std::shared_ptr<const TokenVocabulary> Vocabulary() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const tokenizer::Tokenizer* const tokenizer_;
  const size_t capacity_;
  absl::Mutex mu_;
  std::shared_ptr<const TokenVocabulary> vocabulary_ ABSL_GUARDED_BY(mu_);
  // Most recently used first.
  std::list<std::pair<std::string, std::shared_ptr<CompiledGrammar>>> entries_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, decltype(entries_)::iterator> index_ ABSL_GUARDED_BY(mu_);
};

}  // namespace duet::grammar

#endif  // DUET_ROUTER_GRAMMAR_GRAMMAR_CACHE_H_
