#include "router/tokenizer/incremental_detokenizer.h"

#include "absl/status/status.h"
#include "common/utf8.h"

namespace duet::tokenizer {

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer* tokenizer,
                                               bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

absl::StatusOr<std::string> IncrementalDetokenizer::Add(int32_t id) {
  absl::StatusOr<std::string_view> bytes = tokenizer_->TokenBytes(id);
  if (!bytes.ok()) return absl::InvalidArgumentError(bytes.status().message());
  std::string released;
  if (skip_special_tokens_ && tokenizer_->IsSpecialToken(id)) return released;
  pending_bytes_.append(*bytes);
  const size_t consumed = AppendUtf8LossyPrefix(pending_bytes_, /*is_final=*/false, &released);
  pending_bytes_.erase(0, consumed);
  return released;
}

std::string IncrementalDetokenizer::Flush() {
  std::string released;
  AppendUtf8LossyPrefix(pending_bytes_, /*is_final=*/true, &released);
  pending_bytes_.clear();
  return released;
}

}  // namespace duet::tokenizer
