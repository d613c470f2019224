// duet's tokenizer: byte-level BPE loaded from a Hugging Face `tokenizer.json`
// (Llama 3 / 3.1, Qwen2 / Qwen3 vocabularies), producing the same ids and text
// as the `tokenizers` library.
//
// Encode: added tokens are cut out of the raw text first (see
// added_vocabulary.h); each remaining segment is normalized (NFC where
// declared), split by the pre-tokenizer regex (split_pre_tokenizer.h) and each
// piece is run through BPE (bpe_model.h). With add_special_tokens the
// post-processor's ids (Llama 3.1's BOS) are added. Special-token strings in
// the input always become their ids, with or without add_special_tokens, as in
// `tokenizers`.
//
// Invalid UTF-8 input: Encode returns InvalidArgumentError naming the byte
// offset. (The reference takes only valid strings, so there is nothing to
// mirror; silently replacing bytes would send the model something the user did
// not write.)
//
// Added tokens whose content is also in the model vocabulary keep the model's
// id, and tokens flagged `normalized` decode as their normalized text, both as
// in `tokenizers`. A regex that exhausts its 64 MiB JIT stack on pathological
// input makes Encode return ResourceExhaustedError.
//
// Decode: each id's ByteLevel bytes are concatenated (tokens with characters
// outside the ByteLevel alphabet contribute their own UTF-8 text), then
// converted with the U+FFFD replacement rules of `tokenizers`
// (Rust's String::from_utf8_lossy). With skip_special_tokens, added tokens
// flagged "special" are left out. An id with no token is an InvalidArgument
// error (the reference silently drops it; a router should not).
//
// Thread-safety: a Tokenizer is immutable after loading apart from an internal
// synchronized cache; all const methods may be called concurrently.
#ifndef DUET_ROUTER_TOKENIZER_TOKENIZER_H_
#define DUET_ROUTER_TOKENIZER_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "router/tokenizer/added_vocabulary.h"
#include "router/tokenizer/bpe_model.h"
#include "router/tokenizer/normalizer.h"
#include "router/tokenizer/post_processor.h"
#include "router/tokenizer/split_pre_tokenizer.h"
#include "router/tokenizer/string_map.h"

namespace duet::tokenizer {

class Tokenizer {
 public:
  // Loads a tokenizer.json file. Errors name the file and the field; parts
  // the file declares that duet does not implement are UnimplementedError.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromFile(const std::string& path);
  // `source` names the text in error messages.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJson(
      std::string_view json_text, const std::string& source = "tokenizer.json");

  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text,
                                              bool add_special_tokens) const;
  // `ids`: [num_tokens].
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids,
                                     bool skip_special_tokens) const;

  // The bytes Decode contributes for one id, before the UTF-8 repair
  // (may be a partial UTF-8 sequence). NotFound for ids with no token.
  absl::StatusOr<std::string_view> TokenBytes(int32_t id) const;

  // Token string as written in tokenizer.json (added tokens first).
  std::optional<int32_t> TokenToId(std::string_view token) const;
  std::optional<std::string_view> IdToToken(int32_t id) const;

  // True for added tokens flagged "special" (what skip_special_tokens drops).
  bool IsSpecialToken(int32_t id) const;
  // Ids of all special added tokens, ascending.
  std::vector<int32_t> SpecialTokenIds() const;
  // One past the largest id of the model or the added tokens.
  int32_t vocab_size() const { return static_cast<int32_t>(decode_bytes_.size()); }
  const std::vector<AddedToken>& added_tokens() const { return added_vocabulary_.tokens(); }

 private:
  Tokenizer() = default;
  absl::Status EncodeSegment(std::string_view text, std::string* normalized,
                             std::vector<TextSegment>* pieces,
                             std::vector<int32_t>* ids) const;

  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<SplitPreTokenizer> pre_tokenizer_;
  Normalizer normalizer_;
  AddedVocabulary added_vocabulary_;
  PostProcessor post_processor_;

  // Indexed by id: [vocab_size].
  std::vector<std::string> decode_bytes_;
  std::vector<uint8_t> id_kind_;  // none / model / added / special, see tokenizer.cc
  StringMap<int32_t> added_token_to_id_;
  absl::flat_hash_map<int32_t, std::string> added_id_to_token_;
};

}  // namespace duet::tokenizer

#endif  // DUET_ROUTER_TOKENIZER_TOKENIZER_H_
