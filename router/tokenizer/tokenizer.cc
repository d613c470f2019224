#include "router/tokenizer/tokenizer.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "router/tokenizer/byte_level.h"
#include "common/utf8.h"

namespace duet::tokenizer {
namespace {

using nlohmann::json;

enum IdKind : uint8_t { kNoToken = 0, kModelToken = 1, kAddedToken = 2, kSpecialToken = 3 };

absl::Status CheckDecoder(const json& root, const std::string& source) {
  const json& decoder = root.contains("decoder") ? root["decoder"] : json();
  if (!decoder.is_object() || decoder.value("type", "") != "ByteLevel") {
    // ByteLevel's add_prefix_space / trim_offsets only affect offsets.
    return absl::UnimplementedError(absl::StrCat(
        source, ": decoder: only ByteLevel is supported, got ", decoder.dump()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat("cannot open tokenizer file ", path));
  std::ostringstream contents;
  contents << file.rdbuf();
  if (!file.good() && !file.eof()) {
    return absl::DataLossError(absl::StrCat("cannot read tokenizer file ", path));
  }
  return FromJson(contents.str(), path);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(std::string_view json_text,
                                                               const std::string& source) {
  json root = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not a JSON object"));
  }
  for (const char* field : {"truncation", "padding"}) {
    if (root.contains(field) && !root[field].is_null()) {
      return absl::UnimplementedError(absl::StrCat(source, ": ", field, " must be null"));
    }
  }
  if (absl::Status status = CheckDecoder(root, source); !status.ok()) return status;
  if (!root.contains("model")) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": no model"));
  }

  auto tokenizer = std::unique_ptr<Tokenizer>(new Tokenizer());
  absl::StatusOr<std::unique_ptr<BpeModel>> model = BpeModel::FromJson(root["model"], source);
  if (!model.ok()) return model.status();
  tokenizer->model_ = *std::move(model);

  absl::StatusOr<std::unique_ptr<SplitPreTokenizer>> pre_tokenizer =
      SplitPreTokenizer::FromJson(root.contains("pre_tokenizer") ? root["pre_tokenizer"] : json(),
                                  source);
  if (!pre_tokenizer.ok()) return pre_tokenizer.status();
  tokenizer->pre_tokenizer_ = *std::move(pre_tokenizer);

  absl::StatusOr<Normalizer> normalizer =
      Normalizer::FromJson(root.contains("normalizer") ? root["normalizer"] : json(), source);
  if (!normalizer.ok()) return normalizer.status();
  tokenizer->normalizer_ = *normalizer;

  absl::StatusOr<AddedVocabulary> added = AddedVocabulary::FromJson(
      root.contains("added_tokens") ? root["added_tokens"] : json(), tokenizer->normalizer_,
      *tokenizer->model_, source);
  if (!added.ok()) return added.status();
  tokenizer->added_vocabulary_ = *std::move(added);

  absl::StatusOr<PostProcessor> post_processor = PostProcessor::FromJson(
      root.contains("post_processor") ? root["post_processor"] : json(), source);
  if (!post_processor.ok()) return post_processor.status();
  tokenizer->post_processor_ = *std::move(post_processor);

  // The decode table: model tokens, then added tokens (which take precedence
  // for their ids, as in the reference's id -> token lookup).
  int32_t id_limit = tokenizer->model_->id_limit();
  for (const AddedToken& token : tokenizer->added_vocabulary_.tokens()) {
    id_limit = std::max(id_limit, token.id + 1);
  }
  tokenizer->decode_bytes_.resize(id_limit);
  tokenizer->id_kind_.assign(id_limit, kNoToken);
  for (int32_t id = 0; id < tokenizer->model_->id_limit(); ++id) {
    if (std::optional<std::string_view> token = tokenizer->model_->IdToToken(id)) {
      tokenizer->decode_bytes_[id] = ByteLevelDecodeToken(*token);
      tokenizer->id_kind_[id] = kModelToken;
    }
  }
  std::string normalized_content;
  for (const AddedToken& token : tokenizer->added_vocabulary_.tokens()) {
    // The reference decodes a normalized added token by its normalized form.
    normalized_content = token.content;
    if (token.normalized) {
      if (absl::Status status = tokenizer->normalizer_.Normalize(token.content, &normalized_content);
          !status.ok()) {
        return status;
      }
    }
    tokenizer->decode_bytes_[token.id] = ByteLevelDecodeToken(normalized_content);
    tokenizer->id_kind_[token.id] = token.special ? kSpecialToken : kAddedToken;
    tokenizer->added_token_to_id_[token.content] = token.id;
    tokenizer->added_id_to_token_[token.id] = token.content;
  }
  for (const int32_t id : tokenizer->post_processor_.prefix_ids()) {
    if (id >= id_limit || tokenizer->id_kind_[id] == kNoToken) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": post_processor: id ", id, " has no token"));
    }
  }
  for (const int32_t id : tokenizer->post_processor_.suffix_ids()) {
    if (id >= id_limit || tokenizer->id_kind_[id] == kNoToken) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": post_processor: id ", id, " has no token"));
    }
  }
  return tokenizer;
}

absl::Status Tokenizer::EncodeSegment(std::string_view text, std::string* normalized,
                                      std::vector<TextSegment>* pieces,
                                      std::vector<int32_t>* ids) const {
  std::string_view normalized_text = text;
  if (!normalizer_.is_identity()) {
    if (absl::Status status = normalizer_.Normalize(text, normalized); !status.ok()) {
      return status;
    }
    normalized_text = *normalized;
  }
  pieces->clear();
  if (added_vocabulary_.has_normalized_tokens()) {
    added_vocabulary_.Split(normalized_text, /*normalized_tokens=*/true, pieces);
  } else {
    pieces->push_back(TextSegment{normalized_text, -1});
  }
  for (const TextSegment& piece : *pieces) {
    if (piece.added_token_id >= 0) {
      ids->push_back(piece.added_token_id);
      continue;
    }
    if (absl::Status status = pre_tokenizer_->Split(
            piece.text, [&](std::string_view word) { model_->Tokenize(word, ids); });
        !status.ok()) {
      return status;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::Encode(std::string_view text,
                                                       bool add_special_tokens) const {
  if (const size_t invalid_at = FindInvalidUtf8(text); invalid_at != text.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("text to encode is not valid UTF-8 (byte offset ", invalid_at, ")"));
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 8);
  if (add_special_tokens) {
    ids.insert(ids.end(), post_processor_.prefix_ids().begin(), post_processor_.prefix_ids().end());
  }
  std::vector<TextSegment> segments;
  added_vocabulary_.Split(text, /*normalized_tokens=*/false, &segments);
  std::string normalized;
  std::vector<TextSegment> pieces;
  for (const TextSegment& segment : segments) {
    if (segment.added_token_id >= 0) {
      ids.push_back(segment.added_token_id);
      continue;
    }
    if (absl::Status status = EncodeSegment(segment.text, &normalized, &pieces, &ids);
        !status.ok()) {
      return status;
    }
  }
  if (add_special_tokens) {
    ids.insert(ids.end(), post_processor_.suffix_ids().begin(), post_processor_.suffix_ids().end());
  }
  return ids;
}

absl::StatusOr<std::string_view> Tokenizer::TokenBytes(int32_t id) const {
  if (id < 0 || id >= vocab_size() || id_kind_[id] == kNoToken) {
    return absl::NotFoundError(absl::StrCat("token id ", id, " is not in the vocabulary (size ",
                                            vocab_size(), ")"));
  }
  return decode_bytes_[id];
}

absl::StatusOr<std::string> Tokenizer::Decode(absl::Span<const int32_t> ids,
                                              bool skip_special_tokens) const {
  std::string bytes;
  for (const int32_t id : ids) {
    if (id < 0 || id >= vocab_size() || id_kind_[id] == kNoToken) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot decode token id ", id, ": not in the vocabulary (size ", vocab_size(), ")"));
    }
    if (skip_special_tokens && id_kind_[id] == kSpecialToken) continue;
    bytes.append(decode_bytes_[id]);
  }
  return Utf8Lossy(bytes);
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  if (const auto it = added_token_to_id_.find(token); it != added_token_to_id_.end()) {
    return it->second;
  }
  return model_->TokenToId(token);
}

std::optional<std::string_view> Tokenizer::IdToToken(int32_t id) const {
  if (const auto it = added_id_to_token_.find(id); it != added_id_to_token_.end()) {
    return std::string_view(it->second);
  }
  return model_->IdToToken(id);
}

bool Tokenizer::IsSpecialToken(int32_t id) const {
  return id >= 0 && id < vocab_size() && id_kind_[id] == kSpecialToken;
}

std::vector<int32_t> Tokenizer::SpecialTokenIds() const {
  std::vector<int32_t> ids;
  for (int32_t id = 0; id < vocab_size(); ++id) {
    if (id_kind_[id] == kSpecialToken) ids.push_back(id);
  }
  return ids;
}

}  // namespace duet::tokenizer
