"""scripts/soak.py in miniature: 10 s of capacity and 20 s of soak traffic
against `duet serve` with duet-tiny-qwen3, cancellations and disconnects
included. The script's own checks (no request lost, KV blocks and file
descriptors back, RSS bounded after every KV block was written once) must
pass, and its report must show that the traffic it claims was sent. Then the
fault run: two workers, each SIGKILLed or SIGSTOPped once under load, with
--restart-workers: every fault is followed by 503 and by serving again."""
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
         "--model", str(MODEL_DIR), "--duet", str(DUET), "--serve-arg=--kv-cache-gib=0.02",
         "--serve-arg=--threads=1", "--json", str(report_path)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(report_path.read_text())
    outcomes = report["outcomes"]
    assert outcomes["lost"] == 0
    assert outcomes["completed"] > 0 and outcomes["cancelled"] > 0 and outcomes["disconnected"] > 0, outcomes
    assert sum(outcomes.values()) == report["started"]
    names = {check["name"] for check in report["checks"]}
    assert {"duet-router RSS within", "duet-worker rank 0 RSS within"} <= {n.rsplit(" ", 2)[0] for n in names}, names
    assert report["kv_pool"] and "no KV warm-up request lost" in names
    assert all(check["ok"] for check in report["checks"])
    assert "PASS  no request lost" in result.stdout


def test_worker_faults_under_load_are_survived_with_restart_workers(tmp_path):
    if not (MODEL_DIR / "config.json").exists() or not DUET.exists():
        pytest.skip("duet and duet-tiny-qwen3 are not built")
    report_path = tmp_path / "soak.json"
    result = subprocess.run(
        [sys.executable, str(SOURCE_DIR / "scripts" / "soak.py"), "--duration", "40", "--capacity-seconds", "5",
         "--capacity-concurrency", "4", "--faults", "2", "--no-kv-warmup", "--recovery-bound", "60",
         "--model", str(MODEL_DIR), "--duet", str(DUET), "--serve-arg=--kv-cache-gib=0.05",
         "--serve-arg=--tensor-parallel-size=2", "--serve-arg=--threads=1", "--serve-arg=--restart-workers",
         "--serve-arg=--worker-health-timeout=3", "--json", str(report_path)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(report_path.read_text())
    assert len(report["faults"]) == 2, report["faults"]
    assert report["outcomes"]["lost"] == 0
    assert report["outcomes"]["explicit_error"] > 0, "the faults ended some requests with an error"
    assert "PASS  the router was never restarted" in result.stdout
