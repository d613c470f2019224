#!/usr/bin/env python3
"""Single-thread encode throughput of Hugging Face `tokenizers` (MiB/s), on the
same texts as duet_tokenizer_bench (see tools/bench/tokenizer_bench.cc).

    .venv/bin/python tools/bench/tokenizer_hf_bench.py [--assets DIR] [--repeats N]

Each text is encoded once to warm the reference's cache, then timed in process
CPU time (as Google Benchmark reports duet's; the machine may be shared); the
best of --repeats runs is reported.
"""
import os

os.environ["TOKENIZERS_PARALLELISM"] = "false"  # before importing tokenizers
os.environ["RAYON_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "router" / "tokenizer"))
import corpus  # noqa: E402
import tokenizers  # noqa: E402

TEXT_BYTES = 4 << 20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", default=os.environ.get("DUET_ASSETS", str(ROOT / ".." / "shared" / "assets")))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    texts = {"english": corpus.big_text(corpus.english_corpus(), TEXT_BYTES),
             "mixed": corpus.big_text(corpus.corpus(), TEXT_BYTES)}
    print(f"tokenizers {tokenizers.__version__}, single thread")
    for vocabulary in ("llama3", "qwen3"):
        tokenizer = tokenizers.Tokenizer.from_file(
            str(pathlib.Path(args.assets) / "tokenizers" / vocabulary / "tokenizer.json"))
        for kind, text in texts.items():
            mib = len(text.encode("utf-8")) / (1 << 20)
            lines = text.splitlines(keepends=True)
            for mode in ("whole", "lines"):
                def run():
                    if mode == "whole":
                        return len(tokenizer.encode(text, add_special_tokens=False).ids)
                    return sum(len(tokenizer.encode(line, add_special_tokens=False).ids) for line in lines)
                num_ids = run()  # warm-up
                best = float("inf")
                for _ in range(args.repeats):
                    start = time.process_time()
                    run()
                    best = min(best, time.process_time() - start)
                print(f"Encode/{vocabulary}/{kind}/{mode}: {mib / best:8.2f} MiB/s  ({num_ids} ids)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
