// The "normalizer" of tokenizer.json. Supported: none (null), NFC, or a
// Sequence whose members are all NFC. Others are rejected with
// UnimplementedError. NFC uses utf8proc (its Unicode version may trail the
// reference's for characters assigned very recently).
//
// Thread-safety: immutable; Normalize may be called concurrently.
#ifndef DUET_ROUTER_TOKENIZER_NORMALIZER_H_
#define DUET_ROUTER_TOKENIZER_NORMALIZER_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"

namespace duet::tokenizer {

class Normalizer {
 public:
  static absl::StatusOr<Normalizer> FromJson(const nlohmann::json& normalizer,
                                             const std::string& source);
  // The identity normalizer.
  Normalizer() = default;

  bool is_identity() const { return !nfc_; }

  // Normalizes valid UTF-8 `text` into `out` (replacing its contents).
  absl::Status Normalize(std::string_view text, std::string* out) const;

 private:
  bool nfc_ = false;
};

}  // namespace duet::tokenizer

#endif  // DUET_ROUTER_TOKENIZER_NORMALIZER_H_
