#include "router/tokenizer/byte_level.h"

#include <array>

#include "common/utf8.h"

namespace duet::tokenizer {
namespace {

constexpr bool StandsForItself(uint32_t byte) {
  return (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) ||
         (byte >= 0xAE && byte <= 0xFF);
}

constexpr std::array<char32_t, 256> MakeByteToChar() {
  std::array<char32_t, 256> table{};
  char32_t next_extra = 0x100;
  for (uint32_t byte = 0; byte < 256; ++byte) {
    table[byte] = StandsForItself(byte) ? static_cast<char32_t>(byte) : next_extra++;
  }
  return table;
}

constexpr std::array<char32_t, 256> kByteToChar = MakeByteToChar();

// Characters of the alphabet are all below U+0144; -1 marks "not in alphabet".
constexpr std::array<int16_t, 0x144> MakeCharToByte() {
  std::array<int16_t, 0x144> table{};
  for (auto& entry : table) entry = -1;
  for (uint32_t byte = 0; byte < 256; ++byte) {
    table[kByteToChar[byte]] = static_cast<int16_t>(byte);
  }
  return table;
}

constexpr std::array<int16_t, 0x144> kCharToByte = MakeCharToByte();

}  // namespace

char32_t ByteToByteLevelChar(uint8_t byte) { return kByteToChar[byte]; }

std::optional<uint8_t> ByteLevelCharToByte(char32_t c) {
  if (c >= kCharToByte.size() || kCharToByte[c] < 0) return std::nullopt;
  return static_cast<uint8_t>(kCharToByte[c]);
}

std::string BytesToByteLevel(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char byte : bytes) AppendUtf8(kByteToChar[static_cast<uint8_t>(byte)], &out);
  return out;
}

std::optional<std::string> ByteLevelToBytes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t length = ValidSequenceLength(text, pos);
    if (length == 0) return std::nullopt;
    const std::optional<uint8_t> byte =
        ByteLevelCharToByte(DecodeValidSequence(text, pos, length));
    if (!byte.has_value()) return std::nullopt;
    out.push_back(static_cast<char>(*byte));
    pos += length;
  }
  return out;
}

std::string ByteLevelDecodeToken(std::string_view token) {
  std::optional<std::string> bytes = ByteLevelToBytes(token);
  if (bytes.has_value()) return *std::move(bytes);
  return std::string(token);
}

}  // namespace duet::tokenizer
