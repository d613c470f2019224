// UTF-8 helpers with Python str semantics: templates index, slice, strip and
// case-map strings by code point. Invalid UTF-8 bytes count as one code point
// each and are kept as they are, so no input is rejected or altered.
#ifndef DUET_ROUTER_CHAT_TEMPLATE_UNICODE_TEXT_H_
#define DUET_ROUTER_CHAT_TEMPLATE_UNICODE_TEXT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/utf8.h"  // AppendUtf8

namespace duet::chat_template {

// Byte offsets where each code point starts, plus text.size() at the end:
// code point i is text[offsets[i], offsets[i+1]).
std::vector<size_t> CodePointOffsets(std::string_view text);
// Decodes to code points (an invalid byte b decodes to 0xDC00 + b, Python's
// surrogateescape, so it never equals a real character).
std::vector<char32_t> DecodeUtf8(std::string_view text);
size_t CodePointCount(std::string_view text);

// Python str.isspace() for one code point.
bool IsPyWhitespace(char32_t c);
// Python str.isprintable() for one code point (repr escapes the others).
bool IsPyPrintable(char32_t c);

// Python str.strip/lstrip/rstrip: `chars` null strips whitespace.
enum class StripSide { kBoth, kLeft, kRight };
std::string PyStrip(std::string_view text, const std::string* chars, StripSide side);

std::string PyUpper(std::string_view text);
std::string PyLower(std::string_view text);
// str.capitalize(): first character upper, rest lower.
std::string PyCapitalize(std::string_view text);
// str.title(): words start upper, rest lower.
std::string PyTitle(std::string_view text);

}  // namespace duet::chat_template

#endif  // DUET_ROUTER_CHAT_TEMPLATE_UNICODE_TEXT_H_
