"""`duet bench serve` end to end against `duet serve` with duet-tiny-qwen3:
completions and chat, fixed concurrency and a request rate, the counts taken
from the server's usage (checked against what was asked with ignore_eos and
against the openai client's own count), prefix-cache hits with a shared
prefix, and failed requests counted and named rather than dropped."""
import json
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0]))
from conftest import DuetServe, build_dir  # noqa: E402

openai = pytest.importorskip("openai")

MODEL_DIR = build_dir() / "models" / "duet-tiny-qwen3"
DUET = build_dir() / "tools" / "duet" / "duet"
NAME = "duet-tiny"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not (MODEL_DIR / "config.json").exists() or not DUET.exists():
        pytest.skip("duet and duet-tiny-qwen3 are not built")
    tmp = tmp_path_factory.mktemp("bench")
    server = DuetServe(tmp, "--model", MODEL_DIR, "--served-model-name", NAME, "--kv-cache-gib", "0.25",
                       "--threads", "1")
    yield server.base_url
    server.stop()


def bench(base_url, *args, model=NAME):
    result = subprocess.run(
        [str(DUET), "bench", "serve", f"--model={model}", f"--tokenizer={MODEL_DIR}", f"--base-url={base_url}",
         "--json", *args],
        capture_output=True, text=True, timeout=300)
    report = json.loads(result.stdout) if result.stdout.strip().startswith("{") else None
    return result, report


def test_completions_at_fixed_concurrency(server):
    result, report = bench(server, "--num-prompts=12", "--random-input-len=48", "--random-output-len=6",
                           "--max-concurrency=3", "--ignore-eos")
    assert result.returncode == 0, result.stderr
    assert report["completed"] == 12 and report["failed"] == 0, report
    # With ignore_eos the server generates exactly what was asked; the count is its own usage.
    assert report["total_output_tokens"] == 12 * 6
    assert report["total_input_tokens"] >= 12 * 40
    assert 0 < report["ttft"]["median_ms"] <= report["e2el"]["median_ms"]
    assert report["tpot"]["mean_ms"] > 0 and report["itl"]["p99_ms"] >= report["itl"]["median_ms"]
    assert report["request_throughput"] == pytest.approx(12 / report["duration_s"], rel=1e-6)
    assert report["output_throughput"] == pytest.approx(72 / report["duration_s"], rel=1e-6)


def test_chat_at_a_request_rate_with_goodput(server):
    result, report = bench(server, "--endpoint=/v1/chat/completions", "--num-prompts=8", "--random-input-len=24",
                           "--random-output-len=4", "--request-rate=40", "--burstiness=0.5", "--ignore-eos",
                           "--goodput=e2el:60000")
    assert result.returncode == 0, result.stderr
    assert report["completed"] == 8 and report["failed"] == 0, report
    assert report["total_output_tokens"] == 8 * 4
    assert report["request_goodput"] == pytest.approx(report["request_throughput"])


def test_shared_prefix_hits_the_prefix_cache(server):
    result, report = bench(server, "--num-prompts=6", "--random-input-len=16", "--random-prefix-len=64",
                           "--random-output-len=2", "--max-concurrency=1", "--seed=11")
    assert result.returncode == 0, result.stderr
    assert report["completed"] == 6
    # The warm-up request filled the cache with the 64-token prefix's full blocks.
    assert report["total_cached_tokens"] >= 6 * 48, report


def test_usage_counts_agree_with_the_openai_client(server, tmp_path):
    prompt = "The quick brown fox jumps over the lazy dog, again and again"
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="unused")
    stream = client.completions.create(model=NAME, prompt=prompt, max_tokens=5, stream=True,
                                       stream_options={"include_usage": True}, extra_body={"ignore_eos": True})
    usage = [chunk.usage for chunk in stream if chunk.usage is not None][-1]
    dataset = tmp_path / "sharegpt.json"
    dataset.write_text(json.dumps([{"conversations": [{"from": "human", "value": prompt},
                                                      {"from": "gpt", "value": "x " * 20}]}]))
    result, report = bench(server, "--dataset-name=sharegpt", f"--dataset-path={dataset}",
                           "--sharegpt-output-len=5", "--ignore-eos", "--num-prompts=1", "--num-warmups=0")
    assert result.returncode == 0, result.stderr
    assert report["total_input_tokens"] == usage.prompt_tokens
    assert report["total_output_tokens"] == usage.completion_tokens == 5


def test_failed_requests_are_counted_and_named(server):
    result, report = bench(server, "--num-prompts=4", "--random-input-len=8", "--random-output-len=2",
                           "--num-warmups=0", model="no-such-model")
    assert result.returncode == 1
    assert report["completed"] == 0 and report["failed"] == 4
    [(message, count)] = report["errors"].items()
    assert count == 4 and message.startswith("HTTP 404"), message


def test_a_failed_warm_up_stops_the_run(server):
    result, report = bench(server, "--num-prompts=2", "--random-input-len=8", model="no-such-model")
    assert result.returncode == 1 and report is None
    assert "warm-up request failed" in result.stderr and "404" in result.stderr


def test_bad_flags_are_errors(server):
    for flag in ["--endpoint=/v1/embeddings", "--request-rate=0", "--metric-percentiles=100",
                 "--goodput=latency:5", "--dataset-name=sonnet", "--random-range-ratio=1"]:
        result, _ = bench(server, "--num-prompts=1", flag)
        assert result.returncode == 1 and "error:" in result.stderr, (flag, result.stderr)
    result, _ = bench("http://127.0.0.1:1", "--num-prompts=1")
    assert result.returncode == 1 and "cannot connect" in result.stderr
