#include "router/chat_template/unicode_text.h"

#include <utf8proc.h>

#include <algorithm>

namespace duet::chat_template {
namespace {

// Length of the valid UTF-8 sequence starting at text[i], or 0 if invalid.
size_t Utf8SequenceLength(std::string_view text, size_t i, char32_t* code_point) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char lead = byte(i);
  size_t length;
  char32_t value;
  if (lead < 0x80) {
    *code_point = lead;
    return 1;
  } else if ((lead & 0xE0) == 0xC0) {
    length = 2;
    value = lead & 0x1F;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3;
    value = lead & 0x0F;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4;
    value = lead & 0x07;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    value = (value << 6) | (byte(i + k) & 0x3F);
  }
  static constexpr char32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
  if (value < kMinForLength[length] || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) {
    return 0;
  }
  *code_point = value;
  return length;
}

template <typename Fn>
void ForEachCodePoint(std::string_view text, Fn fn) {
  size_t i = 0;
  while (i < text.size()) {
    char32_t c;
    size_t length = Utf8SequenceLength(text, i, &c);
    if (length == 0) {
      c = 0xDC00 + static_cast<unsigned char>(text[i]);
      length = 1;
    }
    fn(i, length, c);
    i += length;
  }
}

template <typename Map>
std::string MapCodePoints(std::string_view text, Map map) {
  std::string out;
  out.reserve(text.size());
  size_t index = 0;
  ForEachCodePoint(text, [&](size_t offset, size_t length, char32_t c) {
    if (c >= 0xDC80 && c <= 0xDCFF && length == 1) {
      out.append(text.substr(offset, 1));
    } else {
      AppendUtf8(map(c, index), &out);
    }
    ++index;
  });
  return out;
}

char32_t ToUpper(char32_t c) { return static_cast<char32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(c))); }
char32_t ToLower(char32_t c) { return static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))); }

bool IsCased(char32_t c) { return ToUpper(c) != c || ToLower(c) != c || utf8proc_category(c) == UTF8PROC_CATEGORY_LT; }

}  // namespace

std::vector<size_t> CodePointOffsets(std::string_view text) {
  std::vector<size_t> offsets;
  offsets.reserve(text.size() + 1);
  ForEachCodePoint(text, [&](size_t offset, size_t, char32_t) { offsets.push_back(offset); });
  offsets.push_back(text.size());
  return offsets;
}

std::vector<char32_t> DecodeUtf8(std::string_view text) {
  std::vector<char32_t> out;
  out.reserve(text.size());
  ForEachCodePoint(text, [&](size_t, size_t, char32_t c) { out.push_back(c); });
  return out;
}

size_t CodePointCount(std::string_view text) {
  size_t count = 0;
  ForEachCodePoint(text, [&](size_t, size_t, char32_t) { ++count; });
  return count;
}

bool IsPyWhitespace(char32_t c) {
  switch (c) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D:
    case 0x1C: case 0x1D: case 0x1E: case 0x1F: case 0x20:
    case 0x85: case 0xA0: case 0x1680:
    case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

bool IsPyPrintable(char32_t c) {
  if (c == ' ') return true;
  if (c > 0x10FFFF) return false;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_ZS:
      return false;
    default:
      return true;
  }
}

std::string PyStrip(std::string_view text, const std::string* chars, StripSide side) {
  std::vector<char32_t> strip_set;
  if (chars != nullptr) strip_set = DecodeUtf8(*chars);
  const auto strips = [&](char32_t c) {
    if (chars == nullptr) return IsPyWhitespace(c);
    return std::find(strip_set.begin(), strip_set.end(), c) != strip_set.end();
  };
  std::vector<size_t> offsets;
  std::vector<char32_t> points;
  ForEachCodePoint(text, [&](size_t offset, size_t, char32_t c) {
    offsets.push_back(offset);
    points.push_back(c);
  });
  offsets.push_back(text.size());
  size_t begin = 0;
  size_t end = points.size();
  if (side != StripSide::kRight) {
    while (begin < end && strips(points[begin])) ++begin;
  }
  if (side != StripSide::kLeft) {
    while (end > begin && strips(points[end - 1])) --end;
  }
  return std::string(text.substr(offsets[begin], offsets[end] - offsets[begin]));
}

std::string PyUpper(std::string_view text) {
  return MapCodePoints(text, [](char32_t c, size_t) { return ToUpper(c); });
}

std::string PyLower(std::string_view text) {
  return MapCodePoints(text, [](char32_t c, size_t) { return ToLower(c); });
}

std::string PyCapitalize(std::string_view text) {
  return MapCodePoints(text, [](char32_t c, size_t index) { return index == 0 ? ToUpper(c) : ToLower(c); });
}

std::string PyTitle(std::string_view text) {
  bool previous_cased = false;
  return MapCodePoints(text, [&](char32_t c, size_t) {
    char32_t mapped = previous_cased ? ToLower(c) : ToUpper(c);
    previous_cased = IsCased(c);
    return mapped;
  });
}

}  // namespace duet::chat_template
