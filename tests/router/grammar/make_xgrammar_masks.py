"""Writes testdata/xgrammar_masks.json: xgrammar's allowed-token sets at each
step along valid and invalid texts, for several JSON Schemas and the real
Qwen3 and Llama 3 tokenizers. grammar_xgrammar_test.cc checks duet's masks
against them.

xgrammar (and the torch and transformers it pulls in) is needed only to
regenerate the file, never to run the tests:

    python3 -m venv /tmp/xg && /tmp/xg/bin/pip install xgrammar==0.2.9
    /tmp/xg/bin/python tests/router/grammar/make_xgrammar_masks.py \
        --assets ../shared/assets --out tests/router/grammar/testdata/xgrammar_masks.json

xgrammar runs with any_whitespace=False (separators ", " and ": ", duet's
layout) and strict_mode=True (no properties beyond the listed ones). Sets are
compared on the tokens duet may allow: special tokens are left out of both.

Known difference, so not in these schemas: in a string with minLength or
maxLength, xgrammar 0.2.9 allows raw control characters (which JSON forbids)
and no escapes; duet allows escapes (each one character) and no raw control
characters, as in strings without bounds (grammar_test.cc checks duet's).
Each set is stored as its size and a 64-bit FNV-1a hash of its ids (as
little-endian int32s, ascending), plus the ids themselves when the set or its
complement is small, so a failing step can be read.
"""
import argparse
import importlib.metadata
import json
import pathlib
import struct

import xgrammar
from transformers import AutoTokenizer

SCHEMAS = {
    "trip": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer", "minimum": 1, "maximum": 14},
            "unit": {"enum": ["celsius", "fahrenheit"]},
            "budget": {"type": ["number", "null"]},
            "stops": {"type": "array", "maxItems": 3, "items": {
                "type": "object", "properties": {"name": {"type": "string"},
                                                 "open": {"type": "boolean"}}, "required": ["name"]}},
        },
        "required": ["city", "days"],
    },
    "order": {
        "$defs": {"Color": {"enum": ["red", "green"], "type": "string"}},
        "type": "object",
        "properties": {"color": {"$ref": "#/$defs/Color"},
                       "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                       "code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2}$"},
                       "count": {"type": "integer", "minimum": -20, "maximum": 300}},
        "required": ["color", "code"],
        "additionalProperties": False,
    },
    "any_object": {"type": "object", "additionalProperties": True},
}

TEXTS = {
    "trip": [
        '{"city": "Zürich \\"old town\\"", "days": 12, "unit": "celsius", "budget": -1.5e3, '
        '"stops": [{"name": "Café 😀", "open": true}, {"name": "x"}]}',
        '{"city": "Oslo", "days": 15}',                 # 15 is out of range
        '{"city": "Oslo", "unit": "celsius"}',          # days is required
    ],
    "order": [
        '{"color": "green", "note": null, "code": "ABC-42", "count": 299}',
        '{"color": "red", "note": "tab\\there", "code": "XYZ-07", "count": -20}',
        '{"color": "blue"}',
        '{"color": "red", "code": "AB-42"}',
    ],
    "any_object": [
        '{"a": [1, 2.5, {"b": null}], "c": "d", "e": {"f": [true, false]}}',
        '{"a": 1,}',
    ],
}

TOKENIZERS = ["qwen3", "llama3"]


def fnv1a(ids):
    value = 0xCBF29CE484222325
    for byte in b"".join(struct.pack("<i", i) for i in ids):
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{value:016x}"


def describe(allowed, universe):
    allowed = sorted(allowed)
    entry = {"count": len(allowed), "fnv1a": fnv1a(allowed)}
    if len(allowed) <= 2000:
        entry["ids"] = allowed
    else:
        missing = sorted(set(universe) - set(allowed))
        if len(missing) <= 2000:
            entry["missing"] = missing
    return entry


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    cases = []
    for name in TOKENIZERS:
        directory = pathlib.Path(args.assets) / "tokenizers" / name
        hf = AutoTokenizer.from_pretrained(str(directory))
        special = set(hf.all_special_ids) | {int(i) for i, t in hf.added_tokens_decoder.items() if t.special}
        vocab_size = len(hf)
        info = xgrammar.TokenizerInfo.from_huggingface(hf, vocab_size=vocab_size)
        compiler = xgrammar.GrammarCompiler(info)
        universe = [i for i in range(vocab_size) if i not in special]
        for schema_name, schema in SCHEMAS.items():
            compiled = compiler.compile_json_schema(json.dumps(schema), any_whitespace=False, strict_mode=True)
            for text in TEXTS[schema_name]:
                ids = hf.encode(text, add_special_tokens=False)
                matcher = xgrammar.GrammarMatcher(compiled)
                bitmask = xgrammar.allocate_token_bitmask(1, vocab_size)
                steps = []
                accepted = 0
                for token in ids + [None]:
                    matcher.fill_next_token_bitmask(bitmask)
                    words = bitmask[0].tolist()
                    allowed = [i for i in universe if (words[i // 32] >> (i % 32)) & 1]
                    step = describe(allowed, universe)
                    step["can_end"] = matcher.is_terminated() or bool(
                        [i for i in info.stop_token_ids if (words[i // 32] >> (i % 32)) & 1])
                    steps.append(step)
                    if token is None or not matcher.accept_token(token):
                        break
                    accepted += 1
                cases.append({"tokenizer": name, "schema": schema_name, "text": text, "token_ids": ids,
                              "num_accepted": accepted, "steps": steps})
                print(f"{name} {schema_name}: {accepted}/{len(ids)} tokens accepted, {len(steps)} masks")
    out = {"xgrammar_version": importlib.metadata.version("xgrammar"), "schemas": SCHEMAS, "cases": cases}
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
