// The grammar state of one sequence: which tokens it may sample next, and
// the token it did sample.
//
// Stop tokens (the model's EOS ids and the request's stop ids) are allowed
// exactly when the grammar may end; once one is accepted the matcher is
// terminated. When the grammar is complete and nothing may follow, the mask
// holds only the stop tokens.
//
// Thread-compatible: one sequence, one thread (the engine's step thread).
#ifndef DUET_ROUTER_GRAMMAR_GRAMMAR_MATCHER_H_
#define DUET_ROUTER_GRAMMAR_GRAMMAR_MATCHER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "router/grammar/compiled_grammar.h"

namespace duet::grammar {

class GrammarMatcher {
 public:
  GrammarMatcher(std::shared_ptr<CompiledGrammar> grammar, std::vector<int32_t> stop_token_ids);

  // Whether `token_id` may come next; if so the state moves past it.
  bool AcceptToken(int32_t token_id);
  // The allowed next tokens as a little-endian bitmask (bit i of byte i / 8)
  // of ceil(num_tokens / 8) bytes, the form the worker contract carries; ids
  // from the vocabulary's size up to num_tokens are never allowed.
  std::string NextTokenBitmask(int32_t num_tokens);
  // Allowed ids, ascending (for tests and tools).
  std::vector<int32_t> AllowedTokenIds();

  bool can_end() const { return state_.can_end; }
  bool terminated() const { return terminated_; }
  // Nothing but a stop token can come next.
  bool completed() const { return state_.set_id == 0; }

 private:
  bool IsStopToken(int32_t token_id) const;

  std::shared_ptr<CompiledGrammar> grammar_;
  std::vector<int32_t> stop_token_ids_;
  MatchState state_;
  bool terminated_ = false;
};

}  // namespace duet::grammar

#endif  // DUET_ROUTER_GRAMMAR_GRAMMAR_MATCHER_H_
