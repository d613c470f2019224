#include "common/utf8.h"

namespace duet {
namespace {

// Outcome of examining the sequence that starts at one position.
struct SequenceCheck {
  size_t valid_length;    // > 0: a complete valid sequence of this many bytes
  size_t invalid_length;  // > 0: a maximal invalid subpart of this many bytes
  // Both 0: the bytes to the end are a valid but incomplete prefix.
};

// Allowed range of the second byte for each lead byte; later bytes are always
// 0x80-0xBF. This is the table of well-formed sequences in Unicode §3.9.
SequenceCheck CheckSequence(std::string_view text, size_t pos) {
  const auto byte_at = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  const uint8_t lead = byte_at(pos);
  if (lead < 0x80) return {1, 0};
  size_t length = 0;
  uint8_t second_min = 0x80;
  uint8_t second_max = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) second_min = 0xA0;
    if (lead == 0xED) second_max = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) second_min = 0x90;
    if (lead == 0xF4) second_max = 0x8F;
  } else {
    return {0, 1};
  }
  for (size_t i = 1; i < length; ++i) {
    if (pos + i >= text.size()) return {0, 0};
    const uint8_t next = byte_at(pos + i);
    const uint8_t min = i == 1 ? second_min : 0x80;
    const uint8_t max = i == 1 ? second_max : 0xBF;
    if (next < min || next > max) return {0, i};
  }
  return {length, 0};
}

}  // namespace

size_t ValidSequenceLength(std::string_view text, size_t pos) {
  return CheckSequence(text, pos).valid_length;
}

size_t FindInvalidUtf8(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    // ASCII runs dominate real text; skip them eight bytes at a time.
    while (pos + 8 <= text.size()) {
      uint64_t word = 0;
      for (size_t i = 0; i < 8; ++i) {
        word |= static_cast<uint64_t>(static_cast<uint8_t>(text[pos + i])) << (8 * i);
      }
      if ((word & 0x8080808080808080ull) != 0) break;
      pos += 8;
    }
    if (pos >= text.size()) break;
    const size_t length = ValidSequenceLength(text, pos);
    if (length == 0) return pos;
    pos += length;
  }
  return text.size();
}

char32_t DecodeValidSequence(std::string_view text, size_t pos, size_t length) {
  const auto byte_at = [&](size_t i) { return static_cast<uint8_t>(text[pos + i]); };
  switch (length) {
    case 1:
      return byte_at(0);
    case 2:
      return (char32_t{byte_at(0)} & 0x1F) << 6 | (byte_at(1) & 0x3F);
    case 3:
      return (char32_t{byte_at(0)} & 0x0F) << 12 | (char32_t{byte_at(1)} & 0x3F) << 6 |
             (byte_at(2) & 0x3F);
    default:
      return (char32_t{byte_at(0)} & 0x07) << 18 | (char32_t{byte_at(1)} & 0x3F) << 12 |
             (char32_t{byte_at(2)} & 0x3F) << 6 | (byte_at(3) & 0x3F);
  }
}

void AppendUtf8(char32_t code_point, std::string* out) {
  if (code_point < 0x80) {
    out->push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else if (code_point < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (code_point >> 12)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (code_point >> 18)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
}

size_t AppendUtf8LossyPrefix(std::string_view bytes, bool is_final, std::string* out) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    const SequenceCheck check = CheckSequence(bytes, pos);
    if (check.valid_length > 0) {
      out->append(bytes.substr(pos, check.valid_length));
      pos += check.valid_length;
    } else if (check.invalid_length > 0) {
      out->append(kReplacementCharacter);
      pos += check.invalid_length;
    } else {
      // An incomplete tail: more bytes may still complete it.
      if (!is_final) return pos;
      out->append(kReplacementCharacter);
      return bytes.size();
    }
  }
  return pos;
}

std::string Utf8Lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  AppendUtf8LossyPrefix(bytes, /*is_final=*/true, &out);
  return out;
}

}  // namespace duet
