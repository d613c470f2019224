// UTF-8 helpers: validation, code-point iteration and the
// lossy conversion that Hugging Face `tokenizers` applies to decoded bytes.
//
// The lossy rules are Rust's `String::from_utf8_lossy` (Unicode "substitution
// of maximal subparts"): each maximal prefix of a would-be-valid sequence that
// cannot be completed becomes one U+FFFD; bytes that can never start a
// sequence (0x80-0xC1, 0xF5-0xFF) become one U+FFFD each.
//
// All functions are pure and thread-safe.
#ifndef DUET_COMMON_UTF8_H_
#define DUET_COMMON_UTF8_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace duet {

inline constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";

// Returns the byte offset of the first invalid sequence in `text`, or
// text.size() when all of it is valid UTF-8 (no surrogates, no overlongs,
// nothing above U+10FFFF).
size_t FindInvalidUtf8(std::string_view text);

// Length in bytes of the valid UTF-8 sequence starting at text[pos], or 0 when
// the bytes there do not form a complete valid sequence.
size_t ValidSequenceLength(std::string_view text, size_t pos);

// Decodes the code point of a valid sequence of `length` bytes at text[pos].
// Precondition: ValidSequenceLength(text, pos) == length.
char32_t DecodeValidSequence(std::string_view text, size_t pos, size_t length);

// Appends the UTF-8 encoding of `code_point` (must be a Unicode scalar value).
void AppendUtf8(char32_t code_point, std::string* out);

// Converts `bytes` to valid UTF-8 exactly as `String::from_utf8_lossy` does.
std::string Utf8Lossy(std::string_view bytes);

// Streaming form of Utf8Lossy. Converts the longest prefix of `bytes` whose
// conversion cannot change when more bytes are appended, appends it to `out`,
// and returns how many bytes were consumed. Unconsumed bytes (at most 3) are
// an incomplete but so far valid sequence. With `is_final` everything is
// consumed. Concatenating the outputs of successive calls (each fed the
// unconsumed rest plus new bytes) equals Utf8Lossy of all bytes.
size_t AppendUtf8LossyPrefix(std::string_view bytes, bool is_final, std::string* out);

}  // namespace duet

#endif  // DUET_COMMON_UTF8_H_
