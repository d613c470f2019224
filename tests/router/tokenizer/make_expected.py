#!/usr/bin/env python3
"""Writes the tokenizer fixtures in testdata/ with Hugging Face `tokenizers`.

    .venv/bin/python tests/router/tokenizer/make_expected.py [--assets DIR]

testdata/corpus.json           the corpus texts (corpus.py); english_texts is the
                               subset the benchmark also uses
testdata/expected_<name>.json  for each vocabulary: per text the ids with and
                               without special tokens and the decodes with and
                               without skip_special_tokens; decode-only cases
                               (random ids, split UTF-8, special tokens); the
                               length and FNV-1a hash of the ids of the ~1 MiB
                               big_text.
The "qwen3_flags" vocabulary is qwen3 with its added_tokens replaced by the
list stored in its fixture: tokens with lstrip/rstrip/single_word/normalized
set and one outside the ByteLevel alphabet, which the real files lack.
"""
import argparse
import copy
import json
import os
import pathlib
import random
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import corpus  # noqa: E402

VOCABULARIES = ["llama3", "llama3_1", "qwen3"]

FLAG_TEXTS = [
    "x <think> y", "x<think>y", "a</think>   \n b", "a \u3000</think>\u3000b", "<tool_call>x",
    "a<tool_call>", "a <tool_call> b", "_<tool_call>_", "é<tool_call>", "Ångström", "A\u030angstro\u0308m",
    "the word is wordy words word_ x_word word.", "<｜end▁of▁sentence｜>", "a  </tool_call>  b",
    "\u3000<think>\u3000", "  <think>  </think>  ", "word<think>word",
]


def flags_added_tokens(base_added: list) -> list:
    tokens = copy.deepcopy(base_added)
    by_content = {token["content"]: token for token in tokens}
    by_content["<think>"]["lstrip"] = True
    by_content["</think>"]["rstrip"] = True
    by_content["<tool_call>"]["single_word"] = True
    by_content["</tool_call>"]["lstrip"] = True
    by_content["</tool_call>"]["rstrip"] = True
    next_id = max(token["id"] for token in tokens) + 1
    for content, flags in [
        ("A\u030angstro\u0308m", {"normalized": True}),
        ("<｜end▁of▁sentence｜>", {"special": True}),
        ("word", {"single_word": True}),
    ]:
        token = {"id": next_id, "content": content, "single_word": False, "lstrip": False,
                 "rstrip": False, "normalized": False, "special": False}
        token.update(flags)
        tokens.append(token)
        next_id += 1
    return tokens


def decode_cases(tokenizer, rng: random.Random, count: int) -> list:
    vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
    added = sorted(tokenizer.get_added_tokens_decoder().keys())
    byte_ids = [tokenizer.token_to_id(chr(c)) for c in range(0x100, 0x144)] + \
        [tokenizer.token_to_id(chr(c)) for c in range(0xA1, 0x100) if c != 0xAD]
    byte_ids = [i for i in byte_ids if i is not None]
    cases = []
    for _ in range(count):
        ids = []
        for _ in range(rng.randint(1, 16)):
            kind = rng.random()
            if kind < 0.6:
                ids.append(rng.randrange(min(vocab_size, added[0] if added else vocab_size)))
            elif kind < 0.85:
                ids.append(rng.choice(byte_ids))
            else:
                ids.append(rng.choice(added))
        cases.append({"ids": ids, "text": tokenizer.decode(ids, skip_special_tokens=False),
                      "text_skip": tokenizer.decode(ids, skip_special_tokens=True)})
    return cases


def expected_for(tokenizer, texts: list[str], rng: random.Random) -> dict:
    cases = []
    for text in texts:
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        ids_special = tokenizer.encode(text, add_special_tokens=True).ids
        case = {"ids": ids}
        if ids_special != ids:
            case["ids_special"] = ids_special
        case["decoded"] = tokenizer.decode(ids_special, skip_special_tokens=False)
        case["decoded_skip"] = tokenizer.decode(ids_special, skip_special_tokens=True)
        cases.append(case)
    big = corpus.big_text(texts)
    big_ids = tokenizer.encode(big, add_special_tokens=False).ids
    return {
        "cases": cases,
        "decode_cases": decode_cases(tokenizer, rng, 150),
        "big_text": {"num_bytes": len(big.encode("utf-8")), "num_ids": len(big_ids),
                     "ids_fnv1a64": str(corpus.ids_hash(big_ids))},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_assets = os.environ.get("DUET_ASSETS", str(HERE.parents[2] / ".." / "shared" / "assets"))
    parser.add_argument("--assets", default=default_assets)
    parser.add_argument("--out", default=str(HERE / "testdata"))
    args = parser.parse_args()

    from tokenizers import Tokenizer
    import tokenizers

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    texts = corpus.corpus()
    dump = lambda value, path: path.write_text(
        json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    dump({"tokenizers_version": tokenizers.__version__, "texts": texts,
          "english_texts": corpus.english_corpus()}, out / "corpus.json")

    for name in VOCABULARIES + ["qwen3_flags"]:
        base = "qwen3" if name == "qwen3_flags" else name
        path = pathlib.Path(args.assets) / "tokenizers" / base / "tokenizer.json"
        rng = random.Random(f"decode-{name}")
        if name == "qwen3_flags":
            spec = json.loads(path.read_text(encoding="utf-8"))
            spec["added_tokens"] = flags_added_tokens(spec["added_tokens"])
            tokenizer = Tokenizer.from_str(json.dumps(spec))
            expected = expected_for(tokenizer, texts + FLAG_TEXTS, rng)
            expected["added_tokens"] = spec["added_tokens"]
            expected["texts"] = FLAG_TEXTS  # appended to corpus.json's texts
        else:
            tokenizer = Tokenizer.from_file(str(path))
            expected = expected_for(tokenizer, texts, rng)
        expected["vocabulary"] = base
        dump(expected, out / f"expected_{name}.json")
        print(f"{name}: {len(expected['cases'])} texts, big_text {expected['big_text']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
