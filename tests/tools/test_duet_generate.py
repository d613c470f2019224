"""`duet generate` end to end: the real binary on the golden fixtures gives
the greedy tokens transformers gave, and bad input gets a clear error."""
import json
import os
import pathlib
import subprocess

import pytest
import safetensors.numpy

SOURCE_DIR = pathlib.Path(os.environ.get("DUET_SOURCE_DIR", pathlib.Path(__file__).parents[2]))
FIXTURES = SOURCE_DIR / "tests" / "golden" / "fixtures"


def duet_binary() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("DUET_BUILD_DIR", "build")) / "tools" / "duet" / "duet"
    if not path.exists():
        pytest.fail(f"duet binary not built at {path}")
    return path


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(duet_binary()), *args], capture_output=True, text=True, timeout=120)


def generated_tokens(stdout: str) -> list[int]:
    for line in stdout.splitlines():
        if line.startswith("tokens:"):
            return [int(t) for t in line.split(":", 1)[1].split()]
    raise AssertionError(f"no tokens line in output:\n{stdout}")


@pytest.mark.parametrize("fixture", ["llama", "qwen2", "qwen3", "qwen3_moe_topk_norm"])
@pytest.mark.parametrize("chunk", ["0", "7"])
@pytest.mark.parametrize("kv_cache_dtype", ["auto", "bf16"])
def test_greedy_tokens_match_transformers(fixture, chunk, kv_cache_dtype):
    ref = safetensors.numpy.load_file(str(FIXTURES / fixture / "reference.safetensors"))
    prompt = ",".join(str(int(t)) for t in ref["prompt_ids"])
    expected = [int(t) for t in ref["greedy_ids"]]
    result = run("generate", f"--model={FIXTURES / fixture}", f"--prompt-ids={prompt}",
                 f"--max-tokens={len(expected)}", "--ignore-eos", f"--prefill-chunk={chunk}",
                 f"--kv-cache-dtype={kv_cache_dtype}")
    assert result.returncode == 0, result.stderr
    assert generated_tokens(result.stdout) == expected
    assert "prefill:" in result.stdout and "tokens/s" in result.stdout


def test_seeded_sampling_is_reproducible():
    args = ["generate", f"--model={FIXTURES / 'qwen3'}", "--prompt-ids=1,2,3,4", "--max-tokens=12",
            "--temperature=1.0", "--top-p=0.9", "--ignore-eos"]
    first = generated_tokens(run(*args, "--seed=5").stdout)
    assert first == generated_tokens(run(*args, "--seed=5").stdout)
    assert len(first) == 12


def test_dummy_weights_need_no_weight_files(tmp_path):
    (tmp_path / "config.json").write_text((FIXTURES / "qwen3_moe_no_norm" / "config.json").read_text())
    result = run("generate", f"--model={tmp_path}", "--load-format=dummy", "--prompt-ids=5,6,7",
                 "--max-tokens=4", "--ignore-eos")
    assert result.returncode == 0, result.stderr
    assert len(generated_tokens(result.stdout)) == 4


@pytest.mark.parametrize("args, message", [
    (["--model=/nonexistent/model", "--prompt-ids=1"], "/nonexistent/model: no such file or directory"),
    (["--prompt-ids=1"], "--model is required"),
    (["--model={llama}"], "exactly one of --prompt and --prompt-ids"),
    (["--model={llama}", "--prompt=hi"], "tokenizer.json"),
    (["--model={llama}", "--prompt-ids=1,x"], "--prompt-ids"),
    (["--model={llama}", "--prompt-ids=99999"], "outside the vocabulary"),
    (["--model={llama}", "--prompt-ids=1", "--max-tokens=100000"], "context length"),
    (["--model={llama}", "--prompt-ids=1", "--backend=tpu"], "unknown backend"),
    (["--model={llama}", "--prompt-ids=1", "--quant-matmul=int4"], "--quant-matmul must be int8 or fp32"),
    (["--model={llama}", "--prompt-ids=1", "--kv-cache-dtype=fp8"], "--kv-cache-dtype must be auto, fp32 or bf16"),
])
def test_bad_input_is_a_clear_error(args, message):
    args = [a.format(llama=FIXTURES / "llama") for a in args]
    result = run("generate", *args)
    assert result.returncode != 0
    assert message in result.stderr


def test_text_prompt_uses_the_models_tokenizer(tmp_path):
    assets = pathlib.Path(os.environ.get("DUET_ASSETS", SOURCE_DIR / ".." / "shared" / "assets"))
    tokenizer_json = assets / "tokenizers" / "qwen3" / "tokenizer.json"
    if not tokenizer_json.exists():
        pytest.skip("tokenizer assets absent")
    tokenizers = pytest.importorskip("tokenizers")
    config = json.loads((FIXTURES / "qwen3" / "config.json").read_text())
    config["vocab_size"] = 151936  # Qwen3's embedding rows
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "tokenizer.json").write_text(tokenizer_json.read_text(encoding="utf-8"), encoding="utf-8")
    prompt = "Hello, wörld! 你好 🙂"
    result = run("generate", f"--model={tmp_path}", "--load-format=dummy", f"--prompt={prompt}",
                 "--max-tokens=3", "--ignore-eos")
    assert result.returncode == 0, result.stderr
    expected = tokenizers.Tokenizer.from_file(str(tokenizer_json)).encode(prompt).ids
    prompt_line = next(l for l in result.stdout.splitlines() if l.startswith("prompt:"))
    assert [int(t) for t in prompt_line.split(":", 1)[1].split()] == expected
    assert any(l.startswith("text:") for l in result.stdout.splitlines())


def test_unknown_command():
    result = run("frobnicate")
    assert result.returncode == 2
    assert "unknown command" in result.stderr
