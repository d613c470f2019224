// A grammar (grammar.h) turned into a pushdown automaton over UTF-8 bytes,
// with the caches that make a token mask cost microseconds:
//
//  - A matcher state is a set of stacks. Stack frames are interned nodes
//    (a grammar position, a partial UTF-8 character, the parent node), and
//    sets of top nodes are interned too, so a state is one integer and the
//    transition on a byte is one hash lookup once it has been seen.
//  - For each grammar position (with its partial character) the vocabulary
//    is split once, walking the tokens in byte order as a trie, into tokens
//    accepted whatever the stack below holds, tokens rejected whatever it
//    holds, and the few that leave the position's rule before their last
//    byte; only those are checked against the real stack.
//  - The mask of a whole state is kept once computed.
//
// A CompiledGrammar is shared by every request with the same constraint.
// Thread-safety: every method may be called from any thread; an internal
// mutex serialises them (the engine's step thread is the one caller in
// practice).
#ifndef DUET_ROUTER_GRAMMAR_COMPILED_GRAMMAR_H_
#define DUET_ROUTER_GRAMMAR_COMPILED_GRAMMAR_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "router/grammar/grammar.h"
#include "router/grammar/token_vocabulary.h"

namespace duet::grammar {

// A bitmask over token ids: bit (id % 64) of word id / 64.
using TokenBitmask = std::vector<uint64_t>;

inline bool MaskHas(const TokenBitmask& mask, int32_t id) { return (mask[id >> 6] >> (id & 63)) & 1; }
inline void MaskSet(TokenBitmask* mask, int32_t id) { (*mask)[id >> 6] |= uint64_t{1} << (id & 63); }

// What a matcher state is: an interned set of stack tops, and whether the
// root rule may end here.
struct MatchState {
  int32_t set_id = 0;  // 0: no stack left (nothing more can be matched)
  bool can_end = false;
};

class CompiledGrammar {
 public:
  // `grammar` must have passed Finalize.
  CompiledGrammar(const Grammar& grammar, std::shared_ptr<const TokenVocabulary> vocabulary);

  CompiledGrammar(const CompiledGrammar&) = delete;
  CompiledGrammar& operator=(const CompiledGrammar&) = delete;

  const TokenVocabulary& vocabulary() const { return *vocabulary_; }

  MatchState InitialState();
  // The state after `bytes`, or nullopt when no stack accepts them.
  std::optional<MatchState> Advance(const MatchState& state, std::string_view bytes);
  // Tokens of the vocabulary whose bytes `state` accepts (stop tokens are
  // the matcher's business). Words: ceil(vocabulary size / 64).
  std::shared_ptr<const TokenBitmask> NextTokenMask(const MatchState& state);

  // The same mask computed the plain way, token by token from the state with
  // none of the caches: the reference NextTokenMask is tested against.
  TokenBitmask NextTokenMaskByScan(const MatchState& state);

  struct Stats {
    int64_t num_nodes = 0;
    int64_t num_sets = 0;
    int64_t num_position_masks = 0;
    int64_t num_state_masks = 0;
  };
  Stats stats();

 private:
  static constexpr int32_t kBottom = 0;    // below the root: popping here ends the match
  static constexpr int32_t kSentinel = 1;  // an unknown parent, for per-position masks

  struct Node {
    int32_t position = -1;  // into elements_
    uint32_t partial = 0;   // a partial UTF-8 character (0: none)
    int32_t parent = kBottom;
  };
  struct Expansion {
    std::vector<int32_t> nodes;  // stack tops waiting for a byte
    bool completed = false;      // a stack popped below the root
    bool escaped = false;        // a stack popped into kSentinel
  };
  struct Transition {
    int32_t set_id = 0;
    bool completed = false;
    bool escaped = false;
  };
  struct PositionMask {
    TokenBitmask accepted;           // whatever the stack below
    std::vector<int32_t> uncertain;  // decided by the stack below
  };

  int32_t InternNode(int32_t position, uint32_t partial, int32_t parent) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int32_t InternSet(std::vector<int32_t> nodes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Close(int32_t node, Expansion* out, std::vector<int32_t>* visited) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Step(int32_t node, uint8_t byte, Expansion* out, std::vector<int32_t>* visited)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Transition Next(int32_t set_id, uint8_t byte) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the stack topped by `node` accepts all of `bytes`.
  bool NodeAccepts(int32_t node, std::string_view bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const PositionMask& MaskOfPosition(int32_t position, uint32_t partial) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::optional<MatchState> AdvanceLocked(const MatchState& state, std::string_view bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<const TokenVocabulary> vocabulary_;
  const int32_t mask_words_;
  std::vector<Element> elements_;                 // every alternative, each closed by kEnd
  std::vector<std::vector<int32_t>> rule_starts_;  // [rule] -> first position of each alternative
  std::vector<CharClass> classes_;

  absl::Mutex mu_;
  std::vector<Node> nodes_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::tuple<int32_t, uint32_t, int32_t>, int32_t> node_ids_ ABSL_GUARDED_BY(mu_);
  std::vector<std::vector<int32_t>> sets_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::vector<int32_t>, int32_t> set_ids_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, Transition> transitions_ ABSL_GUARDED_BY(mu_);  // set << 8 | byte
  absl::flat_hash_map<uint64_t, std::unique_ptr<PositionMask>> position_masks_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int32_t, std::shared_ptr<const TokenBitmask>> state_masks_ ABSL_GUARDED_BY(mu_);
  std::optional<MatchState> initial_ ABSL_GUARDED_BY(mu_);
};

}  // namespace duet::grammar

#endif  // DUET_ROUTER_GRAMMAR_COMPILED_GRAMMAR_H_
