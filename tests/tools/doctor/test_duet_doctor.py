"""`duet doctor` end to end: the real binary on this machine. Without a GPU it
says so, the CPU checks pass and it exits 0; --json parses with the keys
scripts rely on; --model adds the fit; bad flags exit 2."""
import json
import os
import pathlib
import subprocess

import pytest

BUILD_DIR = pathlib.Path(os.environ.get("DUET_BUILD_DIR", "build"))
TINY_MODEL = BUILD_DIR / "models" / "duet-tiny-qwen3"


def duet_binary() -> pathlib.Path:
    path = BUILD_DIR / "tools" / "duet" / "duet"
    if not path.exists():
        pytest.fail(f"duet binary not built at {path}")
    return path


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(duet_binary()), "doctor", *args], capture_output=True, text=True,
                          timeout=180)


def has_gpu(report: dict) -> bool:
    return len(report["gpus"]) > 0


@pytest.fixture(scope="module")
def report() -> dict:
    result = run("--json")
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_json_shape(report):
    for key in ("gpus", "cuda", "cpu", "checks", "summary"):
        assert key in report, key
    assert "fit" not in report
    for check in report["checks"]:
        assert set(check) == {"id", "status", "title", "detail", "fix"}
        assert check["status"] in ("ok", "warn", "fail", "info", "skipped")
        if check["status"] != "ok":
            assert check["fix"], check
    ids = [check["id"] for check in report["checks"]]
    for cpu_check in ("cpu_isa", "ram", "shm", "cpu_matmul", "gloo"):
        assert cpu_check in ids
    assert report["cpu"]["logical_cores"] > 0


def test_cpu_path_works(report):
    checks = {check["id"]: check for check in report["checks"]}
    assert checks["cpu_matmul"]["status"] == "ok", checks["cpu_matmul"]
    assert checks["gloo"]["status"] == "ok", checks["gloo"]
    assert report["cpu"]["matmul"]["ok"] and report["cpu"]["gloo"]["ok"]


def test_without_gpu_says_so_and_exits_0(report):
    if has_gpu(report):
        pytest.skip("this machine has a GPU")
    gpus = report["checks"][0]
    assert gpus["id"] == "gpus"
    assert gpus["status"] == "info"
    assert "no NVIDIA GPU found: duet will run on the CPU" in gpus["detail"]
    assert report["summary"]["fail"] == 0

    table = run()
    assert table.returncode == 0, table.stdout + table.stderr
    assert "no NVIDIA GPU found: duet will run on the CPU" in table.stdout
    assert "✓ CPU kernels" in table.stdout
    assert "✓ Gloo all-reduce" in table.stdout
    assert "0 failed" in table.stdout


def test_exit_status_follows_failures(report):
    result = run("--skip-bandwidth")
    failed = "✗" in result.stdout
    assert result.returncode == (1 if failed else 0), result.stdout


def test_model_adds_the_fit():
    if not (TINY_MODEL / "config.json").exists():
        pytest.fail(f"{TINY_MODEL} is not built (target duet-tiny-qwen3)")
    result = run("--json", f"--model={TINY_MODEL}", "--max-model-len=512")
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    fit = report["fit"]
    assert fit["model"] == str(TINY_MODEL)
    assert fit["max_model_len"] == 512
    assert [layout["layout"] for layout in fit["layouts"]] == ["tp", "ep", "replicas"]
    checks = {check["id"]: check for check in report["checks"]}
    assert checks["fit"]["status"] == "ok", checks["fit"]
    if not has_gpu(report):
        assert fit["gpus"]["count"] == 2
        assert fit["gpus"]["memory_bytes"] == 24 * 2**30
        assert "default workstation" in fit["gpus_source"]

    table = run(f"--model={TINY_MODEL}", "--skip-bandwidth")
    assert "Fit (" in table.stdout
    assert "replicas" in table.stdout


def test_unreadable_model_is_a_failed_check(tmp_path):
    result = run("--json", f"--model={tmp_path / 'missing'}", "--skip-bandwidth")
    assert result.returncode == 1
    checks = {check["id"]: check for check in json.loads(result.stdout)["checks"]}
    assert checks["fit"]["status"] == "fail"
    missing = str(tmp_path / "missing")
    assert checks["fit"]["detail"] == f"{missing}: no such file or directory (a model is a GGUF file or a Hugging Face model directory)"


@pytest.mark.parametrize("flags", [["--nccl-timeout=0"], ["--gpu-memory-utilization=1.5"],
                                   ["--max-model-len=100"], ["--quantization=int3"]])
def test_bad_flags_exit_2(flags):
    result = run(*flags)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "error:" in result.stderr
