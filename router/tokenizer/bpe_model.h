// The BPE model of a byte-level `tokenizer.json` ("model": {"type": "BPE"}):
// vocabulary, merges by rank, and the merge loop that turns one pre-token into
// ids, exactly as Hugging Face `tokenizers` does it.
//
// Works on raw bytes: the vocabulary's ByteLevel strings are converted to bytes
// at load time, so a pre-token is looked up without building its mapped text.
// Supported: merges as "a b" strings or ["a", "b"] pairs, `ignore_merges`
// (a pre-token that is itself in the vocabulary becomes that one id), empty or
// null `continuing_subword_prefix` / `end_of_word_suffix`. Rejected with a
// status: dropout, byte_fallback, non-empty prefix/suffix, merges whose parts
// or result are not in the vocabulary, an unk_token while some byte has no
// vocabulary entry.
//
// Thread-safety: immutable after FromJson except for the internal result
// cache, which is synchronized; concurrent const calls are safe.
#ifndef DUET_ROUTER_TOKENIZER_BPE_MODEL_H_
#define DUET_ROUTER_TOKENIZER_BPE_MODEL_H_

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"
#include "router/tokenizer/bpe_cache.h"
#include "router/tokenizer/string_map.h"

namespace duet::tokenizer {

class BpeModel {
 public:
  // `model` is the "model" object of tokenizer.json; `source` names the file
  // in error messages.
  static absl::StatusOr<std::unique_ptr<BpeModel>> FromJson(const nlohmann::json& model,
                                                            const std::string& source);

  // Appends the ids of one pre-token given as raw bytes. A byte whose
  // ByteLevel character is not in the vocabulary is dropped, as `tokenizers`
  // drops unknown characters when no unk_token is set.
  void Tokenize(std::string_view word, std::vector<int32_t>* ids) const;

  // Vocabulary lookups by the token's string as written in tokenizer.json.
  std::optional<int32_t> TokenToId(std::string_view token) const;
  // Empty optional for ids without a vocabulary entry.
  std::optional<std::string_view> IdToToken(int32_t id) const;
  // One past the largest vocabulary id.
  int32_t id_limit() const { return static_cast<int32_t>(id_to_token_.size()); }

 private:
  struct Merge {
    uint32_t rank;
    int32_t new_id;
  };

  BpeModel() = default;
  static uint64_t PairKey(int32_t left, int32_t right) {
    return static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32 | static_cast<uint32_t>(right);
  }
  void MergeWord(std::string_view word, std::vector<int32_t>* ids) const;

  bool ignore_merges_ = false;
  std::vector<std::string> id_to_token_;   // [id_limit]; "" where no entry
  std::vector<bool> id_has_token_;         // [id_limit]
  StringMap<int32_t> token_to_id_;
  // Raw bytes of every token made only of ByteLevel characters -> id.
  StringMap<int32_t> bytes_to_id_;
  std::array<int32_t, 256> byte_to_id_{};  // -1: the byte has no token
  absl::flat_hash_map<uint64_t, Merge> merges_;  // PairKey(left, right) -> merge
  mutable BpeCache cache_;
};

}  // namespace duet::tokenizer

#endif  // DUET_ROUTER_TOKENIZER_BPE_MODEL_H_
