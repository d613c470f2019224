#include "router/grammar/compiled_grammar.h"

#include <algorithm>

#include "glog/logging.h"

namespace duet::grammar {
namespace {

// A partial UTF-8 character: bit 31 set, the sequence length (2..4) in bits
// 26..28, continuation bytes still to come (1..3) in bits 24..25, and the
// code point bits read so far in bits 0..20.
uint32_t PackPartial(uint32_t length, uint32_t remaining, uint32_t bits) {
  return 0x80000000u | (length << 26) | (remaining << 24) | bits;
}
uint32_t PartialLength(uint32_t partial) { return (partial >> 26) & 7; }
uint32_t PartialRemaining(uint32_t partial) { return (partial >> 24) & 3; }
uint32_t PartialBits(uint32_t partial) { return partial & 0x1FFFFF; }

// Code points a sequence of `length` bytes may encode (no overlongs).
uint32_t MinCodepoint(uint32_t length) { return length == 2 ? 0x80 : length == 3 ? 0x800 : 0x10000; }
uint32_t MaxCodepoint(uint32_t length) { return length == 2 ? 0x7FF : length == 3 ? 0xFFFF : kMaxCodepoint; }

// Positions of the per-position cache: position and partial character.
uint64_t PositionKey(int32_t position, uint32_t partial) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(position)) << 32) | partial;
}

constexpr size_t kMaxStateMasks = 4096;

}  // namespace

CompiledGrammar::CompiledGrammar(const Grammar& grammar, std::shared_ptr<const TokenVocabulary> vocabulary)
    : vocabulary_(std::move(vocabulary)),
      mask_words_((vocabulary_->size() + 63) / 64),
      classes_(grammar.classes()) {
  rule_starts_.resize(grammar.num_rules());
  for (int32_t rule = 0; rule < grammar.num_rules(); ++rule) {
    for (const Sequence& alternative : grammar.alternatives(rule)) {
      rule_starts_[rule].push_back(static_cast<int32_t>(elements_.size()));
      elements_.insert(elements_.end(), alternative.begin(), alternative.end());
      elements_.push_back({ElementKind::kEnd, 0});
    }
  }
  absl::MutexLock lock(&mu_);
  nodes_.push_back({});  // kBottom
  nodes_.push_back({});  // kSentinel
  sets_.push_back({});   // set 0: empty
  set_ids_[{}] = 0;
}

int32_t CompiledGrammar::InternNode(int32_t position, uint32_t partial, int32_t parent) {
  auto [it, inserted] = node_ids_.try_emplace({position, partial, parent}, static_cast<int32_t>(nodes_.size()));
  if (inserted) nodes_.push_back({position, partial, parent});
  return it->second;
}

int32_t CompiledGrammar::InternSet(std::vector<int32_t> nodes) {
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  auto it = set_ids_.find(nodes);
  if (it != set_ids_.end()) return it->second;
  const int32_t id = static_cast<int32_t>(sets_.size());
  sets_.push_back(nodes);
  set_ids_.emplace(std::move(nodes), id);
  return id;
}

// Expands `node` until every stack top waits on a character: rule references
// push their alternatives (a reference in last place reuses the caller's
// return frame), ends pop, and a class star both waits and moves on.
void CompiledGrammar::Close(int32_t start, Expansion* out, std::vector<int32_t>* visited) {
  std::vector<int32_t> pending = {start};
  while (!pending.empty()) {
    const int32_t id = pending.back();
    pending.pop_back();
    if (id == kBottom) {
      out->completed = true;
      continue;
    }
    if (id == kSentinel) {
      out->escaped = true;
      continue;
    }
    if (std::find(visited->begin(), visited->end(), id) != visited->end()) continue;
    visited->push_back(id);
    const Node node = nodes_[id];
    if (node.partial != 0) {
      out->nodes.push_back(id);
      continue;
    }
    const Element element = elements_[node.position];
    switch (element.kind) {
      case ElementKind::kClass:
        out->nodes.push_back(id);
        break;
      case ElementKind::kClassStar:
        out->nodes.push_back(id);
        pending.push_back(InternNode(node.position + 1, 0, node.parent));
        break;
      case ElementKind::kRule: {
        const bool last = elements_[node.position + 1].kind == ElementKind::kEnd;
        const int32_t parent = last ? node.parent : InternNode(node.position + 1, 0, node.parent);
        for (int32_t first : rule_starts_[element.index]) pending.push_back(InternNode(first, 0, parent));
        break;
      }
      case ElementKind::kEnd:
        pending.push_back(node.parent);
        break;
    }
  }
}

void CompiledGrammar::Step(int32_t id, uint8_t byte, Expansion* out, std::vector<int32_t>* visited) {
  const Node node = nodes_[id];
  const Element element = elements_[node.position];
  const CharClass& char_class = classes_[element.index];
  uint32_t length = 0;
  uint32_t remaining = 0;
  uint32_t bits = 0;
  if (node.partial == 0) {
    if (byte < 0x80) {
      length = 1;
      bits = byte;
    } else if (byte >= 0xC2 && byte <= 0xDF) {
      length = 2, remaining = 1, bits = byte & 0x1F;
    } else if (byte >= 0xE0 && byte <= 0xEF) {
      length = 3, remaining = 2, bits = byte & 0x0F;
    } else if (byte >= 0xF0 && byte <= 0xF4) {
      length = 4, remaining = 3, bits = byte & 0x07;
    } else {
      return;
    }
  } else {
    if ((byte & 0xC0) != 0x80) return;
    length = PartialLength(node.partial);
    remaining = PartialRemaining(node.partial) - 1;
    bits = (PartialBits(node.partial) << 6) | (byte & 0x3F);
  }
  if (remaining == 0) {
    if (!char_class.Contains(bits)) return;
    const int32_t position = element.kind == ElementKind::kClass ? node.position + 1 : node.position;
    Close(InternNode(position, 0, node.parent), out, visited);
    return;
  }
  // Only a prefix some member of the class can complete is accepted, so a
  // token never leads into a dead end in the middle of a character.
  const uint32_t shift = 6 * remaining;
  const uint32_t first = std::max(bits << shift, MinCodepoint(length));
  const uint32_t last = std::min((bits << shift) | ((1u << shift) - 1), MaxCodepoint(length));
  if (!char_class.Intersects(first, last)) return;
  out->nodes.push_back(InternNode(node.position, PackPartial(length, remaining, bits), node.parent));
}

CompiledGrammar::Transition CompiledGrammar::Next(int32_t set_id, uint8_t byte) {
  const uint64_t key = (static_cast<uint64_t>(set_id) << 8) | byte;
  auto it = transitions_.find(key);
  if (it != transitions_.end()) return it->second;
  Expansion expansion;
  std::vector<int32_t> visited;
  const std::vector<int32_t> tops = sets_[set_id];  // InternNode may grow sets_' neighbours
  for (int32_t node : tops) Step(node, byte, &expansion, &visited);
  Transition transition;
  transition.set_id = InternSet(std::move(expansion.nodes));
  transition.completed = expansion.completed;
  transition.escaped = expansion.escaped;
  transitions_.emplace(key, transition);
  return transition;
}

MatchState CompiledGrammar::InitialState() {
  absl::MutexLock lock(&mu_);
  if (!initial_) {
    Expansion expansion;
    std::vector<int32_t> visited;
    for (int32_t first : rule_starts_[0]) Close(InternNode(first, 0, kBottom), &expansion, &visited);
    initial_ = MatchState{InternSet(std::move(expansion.nodes)), expansion.completed};
  }
  return *initial_;
}

std::optional<MatchState> CompiledGrammar::AdvanceLocked(const MatchState& state, std::string_view bytes) {
  MatchState current = state;
  for (char c : bytes) {
    if (current.set_id == 0) return std::nullopt;
    const Transition transition = Next(current.set_id, static_cast<uint8_t>(c));
    current = {transition.set_id, transition.completed};
    if (current.set_id == 0 && !current.can_end) return std::nullopt;
  }
  return current;
}

std::optional<MatchState> CompiledGrammar::Advance(const MatchState& state, std::string_view bytes) {
  absl::MutexLock lock(&mu_);
  return AdvanceLocked(state, bytes);
}

bool CompiledGrammar::NodeAccepts(int32_t node, std::string_view bytes) {
  return AdvanceLocked({InternSet({node}), false}, bytes).has_value();
}

// Walks the vocabulary in byte order from the position with an unknown
// parent. depth_sets[d] is the set after the first d bytes of the current
// token; tokens sharing a prefix reuse it.
const CompiledGrammar::PositionMask& CompiledGrammar::MaskOfPosition(int32_t position, uint32_t partial) {
  const uint64_t key = PositionKey(position, partial);
  auto found = position_masks_.find(key);
  if (found != position_masks_.end()) return *found->second;
  auto mask = std::make_unique<PositionMask>();
  mask->accepted.assign(mask_words_, 0);
  const std::vector<int32_t>& ids = vocabulary_->sorted_ids();
  const std::vector<int32_t>& common = vocabulary_->common_prefix();
  std::vector<int32_t> depth_sets = {InternSet({InternNode(position, partial, kSentinel)})};
  std::vector<uint8_t> escaped_at = {0};     // a stack left the rule after d bytes
  std::vector<uint8_t> escaped_by = {0};     // ... after at most d bytes
  int32_t valid = 0;                         // depth_sets[0..valid] describe the current prefix
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string_view bytes = vocabulary_->bytes(ids[i]);
    const int32_t length = static_cast<int32_t>(bytes.size());
    int32_t depth = std::min(common[i], valid);
    while (depth < length && depth_sets[depth] != 0) {
      const Transition transition = Next(depth_sets[depth], static_cast<uint8_t>(bytes[depth]));
      ++depth;
      if (static_cast<int32_t>(depth_sets.size()) <= depth) {
        depth_sets.resize(depth + 1);
        escaped_at.resize(depth + 1);
        escaped_by.resize(depth + 1);
      }
      depth_sets[depth] = transition.set_id;
      escaped_at[depth] = transition.escaped;
      escaped_by[depth] = escaped_by[depth - 1] || transition.escaped;
    }
    valid = depth;
    if (depth == length && (depth_sets[depth] != 0 || escaped_at[depth])) {
      MaskSet(&mask->accepted, ids[i]);
    } else if (escaped_by[depth == length ? depth - 1 : depth]) {
      mask->uncertain.push_back(ids[i]);
    }
  }
  return *position_masks_.emplace(key, std::move(mask)).first->second;
}

std::shared_ptr<const TokenBitmask> CompiledGrammar::NextTokenMask(const MatchState& state) {
  absl::MutexLock lock(&mu_);
  auto found = state_masks_.find(state.set_id);
  if (found != state_masks_.end()) return found->second;
  auto mask = std::make_shared<TokenBitmask>(mask_words_, 0);
  const std::vector<int32_t> tops = sets_[state.set_id];
  std::vector<const PositionMask*> positions;
  for (int32_t top : tops) {
    const Node node = nodes_[top];
    const PositionMask& position = MaskOfPosition(node.position, node.partial);
    for (int32_t w = 0; w < mask_words_; ++w) (*mask)[w] |= position.accepted[w];
    positions.push_back(&position);
  }
  for (size_t t = 0; t < tops.size(); ++t) {
    for (int32_t id : positions[t]->uncertain) {
      if (!MaskHas(*mask, id) && NodeAccepts(tops[t], vocabulary_->bytes(id))) MaskSet(mask.get(), id);
    }
  }
  if (state_masks_.size() >= kMaxStateMasks) state_masks_.clear();
  state_masks_.emplace(state.set_id, mask);
  return mask;
}

TokenBitmask CompiledGrammar::NextTokenMaskByScan(const MatchState& state) {
  TokenBitmask mask(mask_words_, 0);
  for (int32_t id = 0; id < vocabulary_->size(); ++id) {
    const std::string_view bytes = vocabulary_->bytes(id);
    if (bytes.empty()) continue;
    absl::MutexLock lock(&mu_);
    if (AdvanceLocked(state, bytes).has_value()) MaskSet(&mask, id);
  }
  return mask;
}

CompiledGrammar::Stats CompiledGrammar::stats() {
  absl::MutexLock lock(&mu_);
  Stats stats;
  stats.num_nodes = static_cast<int64_t>(nodes_.size());
  stats.num_sets = static_cast<int64_t>(sets_.size());
  stats.num_position_masks = static_cast<int64_t>(position_masks_.size());
  stats.num_state_masks = static_cast<int64_t>(state_masks_.size());
  return stats;
}

}  // namespace duet::grammar
