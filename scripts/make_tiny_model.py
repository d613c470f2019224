#!/usr/bin/env python3
"""Makes duet-tiny-qwen3: a small random-weight Qwen3 model in the Hugging Face
layout, so duet can serve something on a machine with nothing downloaded.

The directory holds config.json, generation_config.json, model.safetensors
(random float32 weights), tokenizer.json (a byte-level BPE trained here on
models/tiny_corpus.txt, a frozen snapshot of the project's own documentation
and source comments, so the model does not change as the code does),
tokenizer_config.json
(a ChatML chat template) and a README.md. duet and transformers load it alike.

Run: .venv/bin/python scripts/make_tiny_model.py --out DIR [--seed N] [--depfile FILE]

The same seed and corpus give byte-identical files; running it
again over an existing directory rewrites the same files. --depfile writes the
corpus file, in the Makefile syntax build tools read, so the build remakes
the model when it changes.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib

import numpy as np
import safetensors.numpy
import tokenizers
from tokenizers import decoders, models, pre_tokenizers, processors, trainers

SOURCE_DIR = pathlib.Path(__file__).resolve().parents[1]
MODEL_NAME = "duet-tiny-qwen3"

# The tokenizer: BPE tokens, then the special and added tokens after them,
# the order Qwen's vocabularies use.
VOCAB_SIZE = 4096
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
ADDED_TOKENS = ["<think>", "</think>"]  # ordinary text that is never split
BPE_VOCAB_SIZE = VOCAB_SIZE - len(SPECIAL_TOKENS) - len(ADDED_TOKENS)
# The Qwen2 / Qwen3 pre-tokenizer split: contractions, letter runs with one
# leading non-letter, single digits, punctuation runs, newlines, spaces.
SPLIT_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# The model: Qwen3's layout at a size the CPU runs at once.
CONFIG_SHAPE = dict(
    hidden_size=128,
    intermediate_size=384,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=32,
    max_position_embeddings=4096,
    rms_norm_eps=1e-6,
    rope_theta=1000000.0,
)
WEIGHT_STD = 0.02

# Where the tokenizer's training text comes from, relative to the source tree.
CORPUS = "models/tiny_corpus.txt"

# ChatML. Earlier assistant turns drop their reasoning (the text up to
# </think>); the last is kept whole. With enable_thinking=false the
# generation prompt opens the answer with an empty thought, as Qwen3's does.
CHAT_TEMPLATE = """\
{%- for message in messages %}
    {%- if message.role not in ['system', 'user', 'assistant'] %}
        {{- raise_exception('duet-tiny-qwen3 knows the roles system, user and assistant, not ' + message.role) }}
    {%- endif %}
    {%- if message.role == 'system' and not loop.first %}
        {{- raise_exception('a system message may only come first') }}
    {%- endif %}
    {%- set text = message.content if message.content is string else '' %}
    {%- if message.role == 'assistant' and not loop.last and '</think>' in text %}
        {%- set text = text.split('</think>')[-1].lstrip('\\n') %}
    {%- endif %}
    {{- '<|im_start|>' + message.role + '\\n' + text + '<|im_end|>\\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
    {%- if enable_thinking is defined and not enable_thinking %}
        {{- '<think>\\n\\n</think>\\n\\n' }}
    {%- endif %}
{%- endif %}
"""

README = """\
# duet-tiny-qwen3

A random-weight model: it produces random text. It exists so that duet can
load and serve a model on a machine with nothing downloaded, and so that
tests have a whole Hugging Face model directory to work on.

- Architecture: Qwen3ForCausalLM, {layers} layers, hidden size {hidden},
  {heads} attention heads / {kv_heads} KV heads of {head_dim}, tied embeddings,
  float32 weights drawn from N(0, {std}) (norms are ones), seed {seed}.
- Tokenizer: a byte-level BPE of {vocab} tokens in the Qwen2/Qwen3 style,
  trained on a snapshot of duet's documentation and comments; special tokens
  `<|endoftext|>`, `<|im_start|>`, `<|im_end|>`, added tokens `<think>`,
  `</think>`.
- Chat template: ChatML; `enable_thinking=false` starts the answer with an
  empty `<think>` block.

Made by `scripts/make_tiny_model.py --seed {seed}` in the duet source tree;
run it again rather than editing these files.
"""


def corpus_files(source_dir: pathlib.Path) -> list[pathlib.Path]:
    """The files the tokenizer is trained on."""
    path = source_dir / CORPUS
    return [path] if path.is_file() else []


def corpus_text(path: pathlib.Path) -> str:
    return path.read_text(encoding="utf-8")


def train_tokenizer(documents: list[str]) -> tokenizers.Tokenizer:
    tokenizer = tokenizers.Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tokenizer.normalizer = None
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(tokenizers.Regex(SPLIT_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False,
                                           use_regex=False)
    tokenizer.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False,
                                                    use_regex=False)
    # Ties between equally frequent pairs are broken by token id, so the
    # merges depend only on the text.
    trainer = trainers.BpeTrainer(vocab_size=BPE_VOCAB_SIZE, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=[])
    tokenizer.train_from_iterator(documents, trainer=trainer, length=len(documents))
    tokenizer.add_special_tokens([tokenizers.AddedToken(t, special=True, normalized=False)
                                  for t in SPECIAL_TOKENS])
    tokenizer.add_tokens([tokenizers.AddedToken(t, special=False, normalized=False)
                          for t in ADDED_TOKENS])
    return tokenizer


def tokenizer_config(tokenizer: tokenizers.Tokenizer) -> dict:
    added = {}
    for token in SPECIAL_TOKENS + ADDED_TOKENS:
        added[str(tokenizer.token_to_id(token))] = {
            "content": token, "lstrip": False, "normalized": False, "rstrip": False,
            "single_word": False, "special": token in SPECIAL_TOKENS}
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": None,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": CONFIG_SHAPE["max_position_embeddings"],
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


def model_config(vocab_size: int, eos_id: int, pad_id: int) -> dict:
    return {
        "architectures": ["Qwen3ForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "eos_token_id": eos_id,
        "head_dim": CONFIG_SHAPE["head_dim"],
        "hidden_act": "silu",
        "hidden_size": CONFIG_SHAPE["hidden_size"],
        "initializer_range": WEIGHT_STD,
        "intermediate_size": CONFIG_SHAPE["intermediate_size"],
        "max_position_embeddings": CONFIG_SHAPE["max_position_embeddings"],
        "max_window_layers": CONFIG_SHAPE["num_hidden_layers"],
        "model_type": "qwen3",
        "num_attention_heads": CONFIG_SHAPE["num_attention_heads"],
        "num_hidden_layers": CONFIG_SHAPE["num_hidden_layers"],
        "num_key_value_heads": CONFIG_SHAPE["num_key_value_heads"],
        "pad_token_id": pad_id,
        "rms_norm_eps": CONFIG_SHAPE["rms_norm_eps"],
        "rope_scaling": None,
        "rope_theta": CONFIG_SHAPE["rope_theta"],
        "sliding_window": None,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": vocab_size,
    }


def generation_config(eos_ids: list[int], pad_id: int) -> dict:
    return {"do_sample": True, "eos_token_id": eos_ids, "pad_token_id": pad_id,
            "temperature": 0.6, "top_k": 20, "top_p": 0.95}


def random_weights(config: dict, seed: int) -> dict[str, np.ndarray]:
    """Qwen3's tensors by name, in a fixed order; lm_head is tied to the embeddings."""
    rng = np.random.default_rng(seed)
    hidden = config["hidden_size"]
    head_dim = config["head_dim"]
    q_size = config["num_attention_heads"] * head_dim
    kv_size = config["num_key_value_heads"] * head_dim
    intermediate = config["intermediate_size"]

    def normal(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape, dtype=np.float32) * np.float32(WEIGHT_STD))

    def ones(size: int) -> np.ndarray:
        return np.ones(size, dtype=np.float32)

    weights = {"model.embed_tokens.weight": normal(config["vocab_size"], hidden)}
    for layer in range(config["num_hidden_layers"]):
        prefix = f"model.layers.{layer}"
        weights.update({
            f"{prefix}.input_layernorm.weight": ones(hidden),
            f"{prefix}.self_attn.q_proj.weight": normal(q_size, hidden),
            f"{prefix}.self_attn.k_proj.weight": normal(kv_size, hidden),
            f"{prefix}.self_attn.v_proj.weight": normal(kv_size, hidden),
            f"{prefix}.self_attn.o_proj.weight": normal(hidden, q_size),
            f"{prefix}.self_attn.q_norm.weight": ones(head_dim),
            f"{prefix}.self_attn.k_norm.weight": ones(head_dim),
            f"{prefix}.post_attention_layernorm.weight": ones(hidden),
            f"{prefix}.mlp.gate_proj.weight": normal(intermediate, hidden),
            f"{prefix}.mlp.up_proj.weight": normal(intermediate, hidden),
            f"{prefix}.mlp.down_proj.weight": normal(hidden, intermediate),
        })
    weights["model.norm.weight"] = ones(hidden)
    return weights


def write_atomically(path: pathlib.Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_bytes(data)
    os.replace(temp, path)


def json_bytes(value: dict) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write_depfile(depfile: pathlib.Path, target: pathlib.Path, inputs: list[pathlib.Path]) -> None:
    def escape(path: pathlib.Path) -> str:
        return str(path).replace("\\", "\\\\").replace(" ", "\\ ").replace("#", "\\#").replace("$", "$$")
    lines = [f"{escape(target)}: \\"] + [f"  {escape(p)} \\" for p in inputs]
    depfile.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(depfile, ("\n".join(lines).rstrip(" \\") + "\n").encode("utf-8"))


def make_model(out: pathlib.Path, seed: int, source_dir: pathlib.Path) -> list[pathlib.Path]:
    """Writes the model directory; returns the corpus files it read."""
    files = corpus_files(source_dir)
    if not files:
        raise SystemExit(f"make_tiny_model: no corpus files under {source_dir}")
    tokenizer = train_tokenizer([corpus_text(p) for p in files])
    eos_id = tokenizer.token_to_id("<|im_end|>")
    pad_id = tokenizer.token_to_id("<|endoftext|>")
    # One embedding row per token and no more: a sampled id always has text.
    vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
    config = model_config(vocab_size, eos_id, pad_id)

    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / "tokenizer.json", tokenizer.to_str(pretty=True).encode("utf-8"))
    write_atomically(out / "tokenizer_config.json", json_bytes(tokenizer_config(tokenizer)))
    write_atomically(out / "config.json", json_bytes(config))
    write_atomically(out / "generation_config.json", json_bytes(generation_config([eos_id, pad_id], pad_id)))
    write_atomically(out / "model.safetensors",
                     safetensors.numpy.save(random_weights(config, seed), metadata={"format": "pt"}))
    write_atomically(out / "README.md", README.format(
        layers=config["num_hidden_layers"], hidden=config["hidden_size"],
        heads=config["num_attention_heads"], kv_heads=config["num_key_value_heads"],
        head_dim=config["head_dim"], std=WEIGHT_STD, seed=seed,
        vocab=tokenizer.get_vocab_size(with_added_tokens=True)).encode("utf-8"))
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=pathlib.Path, help="model directory to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    parser.add_argument("--source-dir", type=pathlib.Path, default=SOURCE_DIR,
                        help="duet source tree whose text trains the tokenizer")
    parser.add_argument("--depfile", type=pathlib.Path,
                        help="write the corpus files as the dependencies of OUT/model.safetensors")
    args = parser.parse_args()
    if args.seed < 0:
        parser.error("--seed must be >= 0")
    out = args.out.resolve()
    files = make_model(out, args.seed, args.source_dir.resolve())
    if args.depfile is not None:
        write_depfile(args.depfile, out / "model.safetensors", files + [pathlib.Path(__file__).resolve()])


if __name__ == "__main__":
    main()
