"""scripts/soak.py in miniature: 10 s of capacity and 20 s of soak traffic
against `duet serve` with duet-tiny-qwen3, cancellations and disconnects
included. The script's own checks (no request lost, KV blocks and file
descriptors back, RSS bounded) must pass, and its report must show that the
traffic it claims was sent."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

SOURCE_DIR = pathlib.Path(os.environ.get("DUET_SOURCE_DIR", pathlib.Path(__file__).parents[2]))
BUILD_DIR = pathlib.Path(os.environ.get("DUET_BUILD_DIR", "build"))
MODEL_DIR = BUILD_DIR / "models" / "duet-tiny-qwen3"
DUET = BUILD_DIR / "tools" / "duet" / "duet"


def test_a_short_soak_passes_its_checks(tmp_path):
    if not (MODEL_DIR / "config.json").exists() or not DUET.exists():
        pytest.skip("duet and duet-tiny-qwen3 are not built")
    report_path = tmp_path / "soak.json"
    result = subprocess.run(
        [sys.executable, str(SOURCE_DIR / "scripts" / "soak.py"), "--duration", "20", "--capacity-seconds", "10",
         "--capacity-concurrency", "4", "--cancel-fraction", "0.2", "--disconnect-fraction", "0.1",
         "--model", str(MODEL_DIR), "--duet", str(DUET), "--serve-arg=--kv-cache-gib=0.25",
         "--serve-arg=--threads=1", "--json", str(report_path)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(report_path.read_text())
    outcomes = report["outcomes"]
    assert outcomes["lost"] == 0
    assert outcomes["completed"] > 0 and outcomes["cancelled"] > 0 and outcomes["disconnected"] > 0, outcomes
    assert sum(outcomes.values()) == report["started"]
    assert {check["name"].split()[0] for check in report["checks"]} >= {"duet-router", "duet-worker#0"}
    assert all(check["ok"] for check in report["checks"])
    assert "PASS  no request lost" in result.stdout
