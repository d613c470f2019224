// The GPT-2 "ByteLevel" alphabet: every byte value is represented by one
// printable Unicode character so that BPE vocabularies can be stored as text.
// Printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for
// themselves; the other 68 bytes map, in increasing order, to U+0100..U+0143
// (so the space 0x20 is 'Ġ' U+0120).
//
// duet's BPE model works on raw bytes: vocabulary strings are converted to
// bytes once at load time with ByteLevelToBytes, so encoding never builds the
// mapped text. All functions are pure and thread-safe.
#ifndef DUET_ROUTER_TOKENIZER_BYTE_LEVEL_H_
#define DUET_ROUTER_TOKENIZER_BYTE_LEVEL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace duet::tokenizer {

// The character that stands for `byte`.
char32_t ByteToByteLevelChar(uint8_t byte);

// The byte a character stands for, or nullopt when `c` is not in the alphabet.
std::optional<uint8_t> ByteLevelCharToByte(char32_t c);

// Maps each byte of `bytes` to its character (UTF-8 encoded).
std::string BytesToByteLevel(std::string_view bytes);

// Inverse of BytesToByteLevel: nullopt when `text` is not valid UTF-8 or holds
// a character outside the alphabet.
std::optional<std::string> ByteLevelToBytes(std::string_view text);

// What the ByteLevel decoder turns one token string into: its bytes when every
// character is in the alphabet, otherwise the token's own UTF-8 text unchanged
// (this is how `tokenizers` decodes added tokens such as "<｜end▁of▁sentence｜>").
std::string ByteLevelDecodeToken(std::string_view token);

}  // namespace duet::tokenizer

#endif  // DUET_ROUTER_TOKENIZER_BYTE_LEVEL_H_
