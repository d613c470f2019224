#include "router/tokenizer/bpe_model.h"

#include <algorithm>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "router/tokenizer/byte_level.h"

namespace duet::tokenizer {
namespace {

using nlohmann::json;

absl::Status FieldError(const std::string& source, const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": model.", field, ": ", what));
}

bool IsNullOrEmptyString(const json& model, const char* field) {
  if (!model.contains(field) || model[field].is_null()) return true;
  return model[field].is_string() && model[field].get_ref<const std::string&>().empty();
}

// One symbol of the word being merged: a token id and its neighbours in the
// doubly linked list of live symbols.
struct Symbol {
  int32_t id;
  int32_t prev;  // index of the previous live symbol, -1 at the start
  int32_t next;  // index of the next live symbol, -1 at the end
  bool merged_away;
};

// A candidate merge of the symbol at `pos` with its right neighbour.
struct Candidate {
  uint32_t rank;
  int32_t pos;
  int32_t new_id;
  // Lowest rank first, then leftmost: the order of `tokenizers`' queue.
  bool operator>(const Candidate& other) const {
    return rank != other.rank ? rank > other.rank : pos > other.pos;
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<BpeModel>> BpeModel::FromJson(const json& model,
                                                             const std::string& source) {
  if (!model.is_object()) return FieldError(source, "", "expected an object");
  if (!model.contains("type") || model["type"] != "BPE") {
    return absl::UnimplementedError(
        absl::StrCat(source, ": model.type: only \"BPE\" models are supported"));
  }
  if (model.contains("dropout") && !model["dropout"].is_null()) {
    return absl::UnimplementedError(absl::StrCat(source, ": model.dropout is not supported"));
  }
  if (model.value("byte_fallback", false)) {
    return absl::UnimplementedError(absl::StrCat(source, ": model.byte_fallback is not supported"));
  }
  if (!IsNullOrEmptyString(model, "continuing_subword_prefix") ||
      !IsNullOrEmptyString(model, "end_of_word_suffix")) {
    return absl::UnimplementedError(absl::StrCat(
        source, ": model.continuing_subword_prefix/end_of_word_suffix must be empty"));
  }
  if (!model.contains("vocab") || !model["vocab"].is_object()) {
    return FieldError(source, "vocab", "expected an object of token -> id");
  }
  if (!model.contains("merges") || !model["merges"].is_array()) {
    return FieldError(source, "merges", "expected an array");
  }

  auto bpe = std::unique_ptr<BpeModel>(new BpeModel());
  const json& ignore_merges = model.contains("ignore_merges") ? model["ignore_merges"] : json();
  if (!ignore_merges.is_null() && !ignore_merges.is_boolean()) {
    return FieldError(source, "ignore_merges", "expected a boolean");
  }
  bpe->ignore_merges_ = ignore_merges.is_boolean() && ignore_merges.get<bool>();

  const json& vocab = model["vocab"];
  bpe->token_to_id_.reserve(vocab.size());
  bpe->bytes_to_id_.reserve(vocab.size());
  for (const auto& [token, id_value] : vocab.items()) {
    if (!id_value.is_number_integer() || id_value.get<int64_t>() < 0 ||
        id_value.get<int64_t>() >= (int64_t{1} << 30)) {
      return FieldError(source, "vocab", absl::StrCat("bad id for token \"", token, "\""));
    }
    const auto id = static_cast<int32_t>(id_value.get<int64_t>());
    if (static_cast<size_t>(id) >= bpe->id_to_token_.size()) {
      bpe->id_to_token_.resize(id + 1);
      bpe->id_has_token_.resize(id + 1, false);
    }
    if (bpe->id_has_token_[id]) {
      return FieldError(source, "vocab", absl::StrCat("id ", id, " is used twice"));
    }
    bpe->id_to_token_[id] = token;
    bpe->id_has_token_[id] = true;
    bpe->token_to_id_.emplace(token, id);
    if (std::optional<std::string> bytes = ByteLevelToBytes(token); bytes.has_value()) {
      bpe->bytes_to_id_.emplace(*std::move(bytes), id);
    }
  }

  bool all_bytes_present = true;
  for (int byte = 0; byte < 256; ++byte) {
    const auto it = bpe->bytes_to_id_.find(std::string(1, static_cast<char>(byte)));
    bpe->byte_to_id_[byte] = it == bpe->bytes_to_id_.end() ? -1 : it->second;
    all_bytes_present = all_bytes_present && it != bpe->bytes_to_id_.end();
  }
  if (!all_bytes_present && model.contains("unk_token") && !model["unk_token"].is_null()) {
    return absl::UnimplementedError(absl::StrCat(
        source, ": model.unk_token is set but some bytes have no token; not supported"));
  }

  const json& merges = model["merges"];
  bpe->merges_.reserve(merges.size());
  std::string left;
  std::string right;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const json& merge = merges[rank];
    if (merge.is_string()) {
      const std::string& text = merge.get_ref<const std::string&>();
      const size_t space = text.find(' ');
      if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
        return FieldError(source, absl::StrCat("merges[", rank, "]"),
                          absl::StrCat("\"", text, "\" is not two tokens separated by a space"));
      }
      left = text.substr(0, space);
      right = text.substr(space + 1);
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {
      left = merge[0].get<std::string>();
      right = merge[1].get<std::string>();
    } else {
      return FieldError(source, absl::StrCat("merges[", rank, "]"),
                        "expected \"a b\" or [\"a\", \"b\"]");
    }
    const auto left_it = bpe->token_to_id_.find(left);
    const auto right_it = bpe->token_to_id_.find(right);
    const auto result_it = bpe->token_to_id_.find(absl::StrCat(left, right));
    if (left_it == bpe->token_to_id_.end() || right_it == bpe->token_to_id_.end() ||
        result_it == bpe->token_to_id_.end()) {
      return FieldError(source, absl::StrCat("merges[", rank, "]"),
                        absl::StrCat("\"", left, "\" + \"", right,
                                     "\": a part or the result is not in the vocabulary"));
    }
    // A repeated pair keeps its last rank, as a map built in order would.
    bpe->merges_[PairKey(left_it->second, right_it->second)] =
        Merge{static_cast<uint32_t>(rank), result_it->second};
  }
  return bpe;
}

std::optional<int32_t> BpeModel::TokenToId(std::string_view token) const {
  const auto it = token_to_id_.find(token);
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string_view> BpeModel::IdToToken(int32_t id) const {
  if (id < 0 || id >= id_limit() || !id_has_token_[id]) return std::nullopt;
  return id_to_token_[id];
}

void BpeModel::Tokenize(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    const auto it = bytes_to_id_.find(word);
    if (it != bytes_to_id_.end()) {
      ids->push_back(it->second);
      return;
    }
  }
  if (word.size() == 1) {
    const int32_t id = byte_to_id_[static_cast<uint8_t>(word[0])];
    if (id >= 0) ids->push_back(id);
    return;
  }
  if (cache_.Lookup(word, ids)) return;
  const size_t first_new = ids->size();
  MergeWord(word, ids);
  cache_.Insert(word, ids->data() + first_new, ids->size() - first_new);
}

// The merge loop of `tokenizers` (Word::merge_all): a queue of candidate
// merges ordered by (rank, position); a popped candidate is stale when its
// symbol was merged away or the pair at its position no longer produces the
// same id. The staleness test compares ids, not ranks, exactly as the
// reference does, which matters when two pairs merge into the same token.
void BpeModel::MergeWord(std::string_view word, std::vector<int32_t>* ids) const {
  absl::InlinedVector<Symbol, 32> symbols;
  for (const char byte : word) {
    const int32_t id = byte_to_id_[static_cast<uint8_t>(byte)];
    if (id < 0) continue;
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back(Symbol{id, index - 1, index + 1, false});
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  absl::InlinedVector<Candidate, 32> queue;
  const auto find_merge = [this](int32_t left, int32_t right) -> const Merge* {
    const auto it = merges_.find(PairKey(left, right));
    return it == merges_.end() ? nullptr : &it->second;
  };
  const auto push = [&queue](const Candidate& candidate) {
    queue.push_back(candidate);
    std::push_heap(queue.begin(), queue.end(), std::greater<>());
  };
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const Merge* merge = find_merge(symbols[i].id, symbols[i + 1].id)) {
      queue.push_back(Candidate{merge->rank, static_cast<int32_t>(i), merge->new_id});
    }
  }
  std::make_heap(queue.begin(), queue.end(), std::greater<>());

  while (!queue.empty()) {
    std::pop_heap(queue.begin(), queue.end(), std::greater<>());
    const Candidate top = queue.back();
    queue.pop_back();
    Symbol& current = symbols[top.pos];
    if (current.merged_away || current.next < 0) continue;
    Symbol& right = symbols[current.next];
    const Merge* still = find_merge(current.id, right.id);
    if (still == nullptr || still->new_id != top.new_id) continue;

    current.id = top.new_id;
    right.merged_away = true;
    current.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;

    if (current.prev >= 0) {
      if (const Merge* merge = find_merge(symbols[current.prev].id, current.id)) {
        push(Candidate{merge->rank, current.prev, merge->new_id});
      }
    }
    if (current.next >= 0) {
      if (const Merge* merge = find_merge(current.id, symbols[current.next].id)) {
        push(Candidate{merge->rank, top.pos, merge->new_id});
      }
    }
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) ids->push_back(symbols[i].id);
}

}  // namespace duet::tokenizer
