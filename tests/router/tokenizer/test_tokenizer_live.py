"""duet's tokenizer against Hugging Face `tokenizers`, live.

Runs the corpus (corpus.py), seeded random strings, random id sequences and
the ~1 MiB big_text through duet-tokenize (DUET_BUILD_DIR) and through
`tokenizers`, for Llama 3, Llama 3.1, Qwen3 and Qwen3 with flagged added
tokens. Skipped when `tokenizers`, the assets or the binary are absent.
"""
import json
import os
import pathlib
import random
import subprocess
import sys
import unicodedata

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))
import corpus  # noqa: E402
from conftest import assets_dir, build_dir  # noqa: E402

tokenizers = pytest.importorskip("tokenizers")

VOCABULARIES = ["llama3", "llama3_1", "qwen3", "qwen3_flags"]
SPECIAL_STRINGS = ["<|begin_of_text|>", "<|eot_id|>", "<|im_start|>", "<|im_end|>", "<think>",
                   "</think>", "<tool_call>", "<|endoftext|>", "<|reserved_special_token_3|>"]
# Characters from the scripts and classes the tokenizer must handle.
ALPHABETS = [
    (0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x5FF),
    (0x600, 0x6FF), (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x2000, 0x206F),
    (0x3000, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0x1F300, 0x1F6FF), (0x1F900, 0x1F9FF),
    (0x1F3FB, 0x1F3FF), (0x20000, 0x2A6DF),
]
WHITESPACE = [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2028", "\u0085", "\u180e", "\u200d", " " * 17]


def binary() -> pathlib.Path:
    return build_dir() / "tools" / "tokenize" / "duet-tokenize"


def tokenizer_json(name: str, tmp_path: pathlib.Path) -> pathlib.Path:
    base = "qwen3" if name == "qwen3_flags" else name
    path = assets_dir() / "tokenizers" / base / "tokenizer.json"
    if not path.exists():
        pytest.skip(f"asset {path} absent")
    if name != "qwen3_flags":
        return path
    from make_expected import flags_added_tokens
    spec = json.loads(path.read_text(encoding="utf-8"))
    spec["added_tokens"] = flags_added_tokens(spec["added_tokens"])
    variant = tmp_path / "qwen3_flags.json"
    variant.write_text(json.dumps(spec), encoding="utf-8")
    return variant


def assigned(code_point: int) -> bool:
    # Only characters this Python's Unicode database knows: newer ones may be
    # classified differently by PCRE2, utf8proc and the reference.
    return unicodedata.category(chr(code_point)) not in ("Cn", "Cs")


def random_strings(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 30)):
            kind = rng.random()
            if kind < 0.55:
                low, high = rng.choice(ALPHABETS)
                chars = [chr(c) for c in (rng.randint(low, high) for _ in range(rng.randint(1, 8)))
                         if assigned(c)]
                parts.append("".join(chars))
            elif kind < 0.8:
                parts.append(rng.choice(WHITESPACE))
            elif kind < 0.9:
                parts.append(str(rng.randint(0, 10 ** 15)))
            elif kind < 0.95:
                parts.append(rng.choice(SPECIAL_STRINGS))
            else:
                parts.append(rng.choice(["'s", "'LL", "'ve", "'ſ", "e\u0301", "\u1100\u1161"]))
        out.append("".join(parts))
    return out


def run_duet(path: pathlib.Path, requests: list[dict]) -> list[dict]:
    exe = binary()
    if not exe.exists():
        pytest.skip(f"{exe} not built")
    stdin = "".join(json.dumps(request) + "\n" for request in requests)
    done = subprocess.run([str(exe), str(path), "--jsonl"], input=stdin.encode("utf-8"),
                          stdout=subprocess.PIPE, check=True, timeout=600)
    lines = done.stdout.decode("utf-8").split("\n")
    assert lines[-1] == ""
    replies = [json.loads(line) for line in lines[:-1]]
    assert len(replies) == len(requests)
    return replies


@pytest.mark.parametrize("name", VOCABULARIES)
def test_encode_and_decode_match_tokenizers(name, tmp_path):
    path = tokenizer_json(name, tmp_path)
    reference = tokenizers.Tokenizer.from_file(str(path))
    texts = corpus.corpus() + random_strings(seed=VOCABULARIES.index(name) + 1, count=400)
    texts.append(corpus.big_text(corpus.corpus()))
    requests = []
    for text in texts:
        requests.append({"encode": text, "add_special_tokens": False})
        requests.append({"encode": text, "add_special_tokens": True})
    replies = run_duet(path, requests)
    mismatches = []
    decode_requests = []
    expected_decodes = []
    for i, text in enumerate(texts):
        for add_special, reply in ((False, replies[2 * i]), (True, replies[2 * i + 1])):
            expected = reference.encode(text, add_special_tokens=add_special).ids
            if reply.get("ids") != expected:
                mismatches.append((text[:200], add_special, reply, expected[:50]))
            for skip in (False, True):
                decode_requests.append({"decode": expected, "skip_special_tokens": skip})
                expected_decodes.append(reference.decode(expected, skip_special_tokens=skip))
    assert not mismatches, f"{len(mismatches)} encode mismatches, first: {mismatches[0]}"
    decoded = run_duet(path, decode_requests)
    bad = [(r, e) for r, e in zip(decoded, expected_decodes) if r.get("text") != e]
    assert not bad, f"{len(bad)} decode mismatches, first: {bad[0]}"


@pytest.mark.parametrize("name", VOCABULARIES)
def test_decode_of_random_ids_matches_tokenizers(name, tmp_path):
    path = tokenizer_json(name, tmp_path)
    reference = tokenizers.Tokenizer.from_file(str(path))
    rng = random.Random(99)
    vocab_size = reference.get_vocab_size(with_added_tokens=True)
    sequences = []
    while len(sequences) < 500:
        ids = [rng.randrange(vocab_size) for _ in range(rng.randint(1, 20))]
        if all(reference.id_to_token(i) is not None for i in ids):
            sequences.append(ids)
    requests = [{"decode": ids, "skip_special_tokens": skip} for ids in sequences for skip in (False, True)]
    replies = run_duet(path, requests)
    for request, reply in zip(requests, replies):
        expected = reference.decode(request["decode"], skip_special_tokens=request["skip_special_tokens"])
        assert reply.get("text") == expected, request


def test_invalid_utf8_is_rejected(tmp_path):
    path = tokenizer_json("qwen3", tmp_path)
    replies = run_duet(path, [{"encode_bytes_hex": "6f6bc328"}, {"encode_bytes_hex": "eda080"},
                              {"encode_bytes_hex": "c3a9"}])
    assert "not valid UTF-8" in replies[0]["error"] and "byte offset 2" in replies[0]["error"]
    assert "not valid UTF-8" in replies[1]["error"]
    assert replies[2]["ids"] == tokenizers.Tokenizer.from_file(str(path)).encode("é").ids
