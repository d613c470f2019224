"""`duet serve` next to llama.cpp's server on the same GGUF files, measured by `duet bench serve`.

For each model the script starts `duet serve` (one worker, --threads N), runs
every workload with `duet bench serve`, stops it, then does the same with
llama.cpp's server from llama-cpp-python[server] (n_threads N), never both at
once, and prints the two side by side with their ratios. Both servers read
the very same file, so model, precision and tokenizer are identical.

Models: the default model (SmolLM2-135M-Instruct Q4_1, from scripts/setup.sh)
and dummy-weight GGUFs of Qwen3-0.6B's and Llama-3.2-1B's published shapes,
every matrix Q4_K, with the real Qwen3 and Llama 3 tokenizers (from the
project's shared assets), written by this script with the gguf package.

Workloads (completions endpoint, greedy, --ignore-eos where the server
honours it; token counts are the servers' own usage):
  single   1 stream, 128 in / 128 out
  c4, c8   4 and 8 concurrent streams, 128 in / 128 out
  ttft1k   1 stream, a 1024-token prompt, 8 out (time to first token)
  prefix   4 streams, a 768-token prefix every prompt shares + 64 own tokens,
           32 out (an agent's stable system prompt)

  python3 -m venv /tmp/bench-ref && /tmp/bench-ref/bin/pip install -r tools/bench/requirements-llamacpp.txt
  /tmp/bench-ref/bin/python tools/bench/serve_vs_llamacpp.py --threads 2
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "bench"))
from gguf_vs_llamacpp import add_q4_k_decoder, default_model  # noqa: E402

# The published config.json shapes.
SHAPES = {
    "qwen3-0.6b": {"arch": "qwen3", "layers": 28, "hidden": 1024, "ff": 3072, "heads": 16, "kv_heads": 8,
                   "head_dim": 128, "vocab": 151936, "context": 40960, "rope_theta": 1e6, "eps": 1e-6,
                   "tokenizer": "qwen3", "pre": "qwen2", "bos": None, "eos": "<|endoftext|>"},
    "llama-3.2-1b": {"arch": "llama", "layers": 16, "hidden": 2048, "ff": 8192, "heads": 32, "kv_heads": 8,
                     "head_dim": 64, "vocab": 128256, "context": 131072, "rope_theta": 5e5, "eps": 1e-5,
                     "tokenizer": "llama3_1", "pre": "llama-bpe", "bos": "<|begin_of_text|>",
                     "eos": "<|end_of_text|>"},
}

WORKLOADS = {
    "single": ["--num-prompts=8", "--random-input-len=128", "--random-output-len=128", "--max-concurrency=1"],
    "c4": ["--num-prompts=16", "--random-input-len=128", "--random-output-len=128", "--max-concurrency=4"],
    "c8": ["--num-prompts=24", "--random-input-len=128", "--random-output-len=128", "--max-concurrency=8"],
    "ttft1k": ["--num-prompts=4", "--random-input-len=1024", "--random-output-len=8", "--max-concurrency=1"],
    "prefix": ["--num-prompts=16", "--random-prefix-len=768", "--random-input-len=64", "--random-output-len=32",
               "--max-concurrency=4"],
}


def assets_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("DUET_ASSETS", ROOT.parent / "shared" / "assets"))


def write_dummy_gguf(path: pathlib.Path, shape: dict) -> None:
    """Random Q4_K matrices at `shape`, fp32 norms, and the model's real
    byte-level BPE vocabulary (tokenizer.json's, padded to the config's size)."""
    import gguf
    tokenizer = json.loads((assets_dir() / "tokenizers" / shape["tokenizer"] / "tokenizer.json").read_text())
    tokens = [""] * shape["vocab"]
    types = [int(gguf.TokenType.UNUSED)] * shape["vocab"]
    for token, index in tokenizer["model"]["vocab"].items():
        tokens[index], types[index] = token, int(gguf.TokenType.NORMAL)
    ids = {}
    for added in tokenizer["added_tokens"]:
        tokens[added["id"]] = added["content"]
        types[added["id"]] = int(gguf.TokenType.CONTROL if added["special"] else gguf.TokenType.USER_DEFINED)
        ids[added["content"]] = added["id"]
    for i, token in enumerate(tokens):
        if not token:
            tokens[i] = f"[PAD{i}]"
    merges = [m if isinstance(m, str) else " ".join(m) for m in tokenizer["model"]["merges"]]

    rng = np.random.default_rng(1)
    writer = gguf.GGUFWriter(str(path), shape["arch"])
    writer.add_name(f"{path.stem}-dummy")
    writer.add_file_type(int(gguf.LlamaFileType.MOSTLY_Q4_K_M))
    writer.add_block_count(shape["layers"])
    writer.add_context_length(shape["context"])
    writer.add_embedding_length(shape["hidden"])
    writer.add_feed_forward_length(shape["ff"])
    writer.add_head_count(shape["heads"])
    writer.add_head_count_kv(shape["kv_heads"])
    writer.add_key_length(shape["head_dim"])
    writer.add_value_length(shape["head_dim"])
    writer.add_rope_freq_base(shape["rope_theta"])
    writer.add_layer_norm_rms_eps(shape["eps"])
    writer.add_vocab_size(shape["vocab"])
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(shape["pre"])
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    if shape["bos"]:
        writer.add_bos_token_id(ids[shape["bos"]])
        writer.add_add_bos_token(True)
    else:
        writer.add_add_bos_token(False)
    writer.add_eos_token_id(ids[shape["eos"]])

    add_q4_k_decoder(writer, shape, qk_norm=shape["arch"] == "qwen3", rng=rng)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, log: pathlib.Path, timeout: float = 600) -> None:
    import urllib.request
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the server did not come up:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_duet(args, model: pathlib.Path, port: int, log: pathlib.Path) -> subprocess.Popen:
    duet = args.build_dir / "tools/duet/duet"
    return subprocess.Popen(
        [str(duet), "serve", f"--model={model}", f"--port={port}", f"--grpc-port={free_port()}",
         "--served-model-name=bench", "--tensor-parallel-size=1", f"--threads={args.threads}",
         f"--max-model-len={args.context}", "--kv-cache-gib=1"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT)


def start_llamacpp(args, model: pathlib.Path, port: int, log: pathlib.Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "bench",
         "--host", "127.0.0.1", "--port", str(port), "--n_threads", str(args.threads),
         "--n_threads_batch", str(args.threads), "--n_ctx", str(args.context), "--n_batch", "512",
         "--n_gpu_layers", "0"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT)


def bench(args, url: str, model: pathlib.Path, workload: list[str]) -> dict:
    duet = args.build_dir / "tools/duet/duet"
    out = subprocess.run([str(duet), "bench", "serve", "--model=bench", f"--tokenizer={model}",
                          f"--base-url={url}", "--ignore-eos", "--json", "--seed=1", *workload],
                         capture_output=True, text=True, timeout=3600)
    if out.returncode != 0 and not out.stdout.strip().startswith("{"):
        raise RuntimeError(f"duet bench serve failed:\n{out.stderr}")
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default="default,qwen3-0.6b,llama-3.2-1b",
                        help="comma-separated: default, qwen3-0.6b, llama-3.2-1b, or GGUF paths")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--context", type=int, default=4096)
    parser.add_argument("--build-dir", type=pathlib.Path, default=ROOT / "build")
    parser.add_argument("--json", type=pathlib.Path, help="also write every report here")
    args = parser.parse_args(argv)

    work = args.build_dir / "bench"
    work.mkdir(parents=True, exist_ok=True)
    models = []
    for name in args.models.split(","):
        if name == "default":
            models.append(default_model())
        elif name in SHAPES:
            path = work / f"{name}-shape-q4_k.gguf"
            if not path.exists():
                print(f"writing {path}", file=sys.stderr, flush=True)
                write_dummy_gguf(path, SHAPES[name])
            models.append(path)
        else:
            models.append(pathlib.Path(name))

    results = []
    header = (f"{'model':<34} {'workload':<8} {'duet out tok/s':>14} {'llama.cpp':>10} {'ratio':>6}"
              f" {'duet TTFT p50 ms':>17} {'llama.cpp':>10} {'ratio':>6}")
    print(header, flush=True)
    for model in models:
        reports = {}
        for engine, start in (("duet", start_duet), ("llama.cpp", start_llamacpp)):
            port = free_port()
            log = work / f"{engine}-{model.stem}.log"
            process = start(args, model, port, log)
            try:
                wait_ready(f"http://127.0.0.1:{port}", process, log)
                for workload in args.workloads.split(","):
                    reports[(engine, workload)] = bench(args, f"http://127.0.0.1:{port}", model, WORKLOADS[workload])
            finally:
                stop(process)
        for workload in args.workloads.split(","):
            d, l = reports[("duet", workload)], reports[("llama.cpp", workload)]
            results.append({"model": model.name, "workload": workload, "threads": args.threads,
                            "duet": d, "llama.cpp": l})
            out_ratio = d["output_throughput"] / max(l["output_throughput"], 1e-9)
            ttft_ratio = d["ttft"]["median_ms"] / max(l["ttft"]["median_ms"], 1e-9)
            failed = "" if d["failed"] == l["failed"] == 0 else f"  (failed: duet {d['failed']}, llama.cpp {l['failed']})"
            print(f"{model.stem:<34} {workload:<8} {d['output_throughput']:>14.1f} {l['output_throughput']:>10.1f}"
                  f" {out_ratio:>6.2f} {d['ttft']['median_ms']:>17.1f} {l['ttft']['median_ms']:>10.1f}"
                  f" {ttft_ratio:>6.2f}{failed}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
