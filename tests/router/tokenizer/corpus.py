"""The tokenizer test corpus, shared by make_expected.py and the live test.

Deterministic: kept strings covering every category the tokenizer must get
right, plus generated text from a seeded generator. big_text() builds the
~1 MiB input from the corpus with an LCG that tokenizer_fixture_test.cc
reimplements, so the 1 MiB text itself is never committed.
"""
import random

# Strings kept verbatim, by category.
KEPT = {
    "prose": [
        "The quick brown fox jumps over the lazy dog.",
        "Hello world! It's a lovely day, isn't it? I'm sure we'll manage; they'd agree.",
        "DON'T SHOUT. You'RE fine. We'VE got this. She'LL see. I'D know. It'S ok.",
        "Mr. O'Neil's dog—a terrier—barked \"loudly\" at 3:15 p.m. (not 4).",
        "  leading spaces and trailing spaces   ",
        "Ünïcödé lätïn wörds: café, naïve, façade, jalapeño, smörgåsbord.",
        "it'ſ a long s; Kelvin K; ﬁ ligature; ß; İstanbul; ǅ titlecase",
    ],
    "code": [
        "def f(x):\n    if x > 0:\n        return x * 2\n    return -x\n",
        "int main() {\n\tfor (int i = 0; i < 10; ++i) {\n\t\tif (i % 2) {\n\t\t\tprintf(\"%d\\n\", i);\n\t\t}\n\t}\n}\n",
        "\t\t\t\t\t\t\t\tdeeply_indented = {'a': [1, 2, {'b': (3, 4)}]}\n",
        "                                        x = 1  # forty spaces\n",
        "<div class=\"a\">\n  <span>&nbsp;&lt;tag&gt;</span>\n</div>\r\n",
        "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;\n",
        "fn main() -> Result<(), Box<dyn Error>> { println!(\"{:?}\", v); Ok(()) }",
        "x=1;y=2;;;z=x+y//comment\n\n\n#include <vector>\n",
    ],
    "whitespace": [
        " ", "  ", "\t", "\n", "\r\n", "\n\n\n", " \n ", "a  b", "a   b", "a \t b",
        "a\n\n  b", "a" + " " * 100 + "b", "\n" * 40, " " * 257, "\t \t \t", "end with space ",
        "word\u00a0nbsp", "ideographic\u3000space", "nel\u0085line", "mongolian\u180evowel",
        "line\u2028sep\u2029para", "zero\u200bwidth", "\ufeffbom", "a\u000bvt\u000cff",
    ],
    "numbers": [
        "1", "12", "123", "1234", "12345", "123456789", "3.14159265358979",
        "1,234,567.89", "-42", "+1e-10", "0x1F 0b1010 0o17", "2024-06-01T12:34:56Z",
        "٠١٢٣٤٥٦٧٨٩", "१२३४५", "①②③ Ⅻ ½ ²³", "phone: 555-0100, zip 02139",
    ],
    "cjk": [
        "你好，世界！今天天气很好。", "日本語のテキストとカタカナ、ひらがな。",
        "한국어 텍스트입니다. 안녕하세요!", "中文English混合text测试123",
        "龘靐齉爩 𠀀𠀁𪚥 (rare and extension-B characters)",
    ],
    "rtl_indic": [
        "مرحبا بالعالم! هذا نص عربي.", "السَّلَامُ عَلَيْكُمْ", "नमस्ते दुनिया! यह हिंदी पाठ है।",
        "עברית: שלום עולם", "ภาษาไทย สวัสดีครับ", "Ελληνικά: Γειά σου Κόσμε", "Русский текст, ёлки!",
    ],
    "emoji": [
        "👍", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🤷🏽‍♀️ shrug", "🇺🇸🇯🇵 flags",
        "emoji in text 😀😃😄 and more🎉!", "❤️‍🔥 ✨ ☕ ⌚", "👩🏿‍💻👨🏻‍🚀🧑🏾‍🤝‍🧑🏼",
    ],
    "combining": [
        "e\u0301", "cafe\u0301", "A\u030a", "n\u0303o", "\u1100\u1161\u11a8",
        "a\u0300\u0301\u0302\u0303\u0304", "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f",
        "\u0915\u094d\u0937", "o\u0308\u0304", "\u212b\u2126",
    ],
    "special_tokens": [
        "<|begin_of_text|>Hello", "Hi<|eot_id|>", "a <|start_header_id|>user<|end_header_id|>\n\nb",
        "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n", "x<|endoftext|>y",
        "<think>\nreasoning\n</think>\n\nanswer", "<tool_call>{\"a\":1}</tool_call>",
        "<|eot_id", "<|im_end", "<|im_end|><|im_end|>", " <|eot_id|> ", "<<|eot_id|>>",
        "<|reserved_special_token_5|>", "<|fim_prefix|>def<|fim_suffix|>ret<|fim_middle|>",
        "e<|im_end|>\u0301",
    ],
    "misc": [
        "", "a", "'", "''s", "'s'S", "http://example.com/path?q=1&r=2#frag", "user@example.com",
        "$$$ %%% ^^^ *** ((( ))) ___", "...", "—–-", "\u0000nul\u0001ctl", "\U0010ffff\uffff\ue000",
    ],
}


def generated(seed: int = 1234) -> list[str]:
    """Generated text: indentation, whitespace runs, numbers and mixed scripts."""
    rng = random.Random(seed)
    words = ["the", "model", "token", "GPU", "Ärger", "naïve", "数据", "模型", "тест", "ΑΒΓ", "दुनिया",
             "مرحبا", "🙂", "👍🏾", "x1", "_id", "I'm", "we'll", "'tis", "don't"]
    out = []
    for i in range(60):
        lines = []
        for _ in range(rng.randint(1, 6)):
            indent = rng.choice(["", "  ", "    ", "\t", "\t\t", " " * rng.randint(1, 24), "\t" * rng.randint(1, 8)])
            parts = []
            for _ in range(rng.randint(1, 10)):
                kind = rng.random()
                if kind < 0.55:
                    parts.append(rng.choice(words))
                elif kind < 0.75:
                    parts.append(str(rng.randint(0, 10 ** rng.randint(1, 12))))
                elif kind < 0.9:
                    parts.append(rng.choice(["(", ")", "{", "}", "=", "==", "->", ";", ",", ".", "!?", "\"", "''"]))
                else:
                    parts.append(rng.choice([" " * rng.randint(2, 9), "\t" * rng.randint(1, 4)]))
            lines.append(indent + rng.choice([" ", "", "  "]).join(parts) + rng.choice(["", " ", "  "]))
        out.append(rng.choice(["\n", "\r\n", "\n\n"]).join(lines))
    return out


def corpus() -> list[str]:
    texts = [text for category in KEPT.values() for text in category]
    return texts + generated()


def english_corpus() -> list[str]:
    """The prose, code, whitespace and number strings: text like most prompts."""
    return [text for category in ("prose", "code", "whitespace", "numbers") for text in KEPT[category]]


_LCG_MULTIPLIER = 6364136223846793005
_LCG_INCREMENT = 1442695040888963407
_SEPARATORS = ["", " ", "\n", "\n\n", "\t", "  "]


def big_text(texts: list[str], min_bytes: int = 1 << 20) -> str:
    """~1 MiB of text: corpus entries in LCG order joined by LCG-chosen separators."""
    state = 42
    pieces = []
    size = 0
    while size < min_bytes:
        state = (state * _LCG_MULTIPLIER + _LCG_INCREMENT) % (1 << 64)
        text = texts[(state >> 33) % len(texts)]
        state = (state * _LCG_MULTIPLIER + _LCG_INCREMENT) % (1 << 64)
        separator = _SEPARATORS[(state >> 33) % len(_SEPARATORS)]
        pieces.append(text + separator)
        size += len((text + separator).encode("utf-8"))
    return "".join(pieces)


def ids_hash(ids: list[int]) -> int:
    """FNV-1a 64 over the ids as little-endian int32 (C++ twin in the fixture test)."""
    h = 0xCBF29CE484222325
    for token_id in ids:
        for byte in int(token_id).to_bytes(4, "little", signed=True):
            h ^= byte
            h = (h * 0x100000001B3) % (1 << 64)
    return h
