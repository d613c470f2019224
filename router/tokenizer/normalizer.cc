#include "router/tokenizer/normalizer.h"

#include <utf8proc.h>

#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace duet::tokenizer {
namespace {

// Code points below U+0300 are NFC-stable, and no character that can combine
// with what precedes it is encoded with a lead byte below 0xCC.
bool RunMayChange(std::string_view run) {
  for (const char c : run) {
    if (static_cast<uint8_t>(c) >= 0xCC) return true;
  }
  return false;
}

absl::Status AppendNfc(std::string_view text, std::string* out) {
  utf8proc_uint8_t* normalized = nullptr;
  const utf8proc_ssize_t length =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                   static_cast<utf8proc_ssize_t>(text.size()), &normalized,
                   static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (length < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("NFC normalization failed: ", utf8proc_errmsg(length)));
  }
  out->append(reinterpret_cast<const char*>(normalized), static_cast<size_t>(length));
  std::free(normalized);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Normalizer> Normalizer::FromJson(const nlohmann::json& normalizer,
                                                const std::string& source) {
  Normalizer result;
  if (normalizer.is_null()) return result;
  const auto is_nfc = [](const nlohmann::json& n) {
    return n.is_object() && n.value("type", "") == "NFC";
  };
  if (is_nfc(normalizer)) {
    result.nfc_ = true;
    return result;
  }
  if (normalizer.is_object() && normalizer.value("type", "") == "Sequence" &&
      normalizer.contains("normalizers") && normalizer["normalizers"].is_array()) {
    for (const nlohmann::json& member : normalizer["normalizers"]) {
      if (!is_nfc(member)) {
        return absl::UnimplementedError(absl::StrCat(
            source, ": normalizer: only NFC is supported, got ", member.dump()));
      }
      result.nfc_ = true;
    }
    return result;
  }
  return absl::UnimplementedError(
      absl::StrCat(source, ": normalizer: only null or NFC is supported, got ", normalizer.dump()));
}

// NFC works run by run: an ASCII character is a starter that never composes
// with what precedes it, so NFC(x + y) == NFC(x) + NFC(y) whenever y starts
// with ASCII. Each run of non-ASCII bytes is normalized together with the one
// character before it (which may compose with a following mark); runs that
// cannot change are copied. This keeps NFC off the common path.
absl::Status Normalizer::Normalize(std::string_view text, std::string* out) const {
  out->clear();
  if (!nfc_ || !RunMayChange(text)) {
    out->assign(text);
    return absl::OkStatus();
  }
  out->reserve(text.size());
  size_t copied = 0;  // text[0, copied) is in `out`
  size_t pos = 0;
  while (pos < text.size()) {
    if (static_cast<uint8_t>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const size_t run_start = pos > 0 ? pos - 1 : 0;  // with the ASCII char before it
    while (pos < text.size() && static_cast<uint8_t>(text[pos]) >= 0x80) ++pos;
    const std::string_view run = text.substr(run_start, pos - run_start);
    if (!RunMayChange(run)) continue;
    out->append(text.substr(copied, run_start - copied));
    if (absl::Status status = AppendNfc(run, out); !status.ok()) return status;
    copied = pos;
  }
  out->append(text.substr(copied));
  return absl::OkStatus();
}

}  // namespace duet::tokenizer
