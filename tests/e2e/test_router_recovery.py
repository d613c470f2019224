"""The router and its workers run as separate processes, as docker-compose
runs them: when a worker dies the router stays up, reports itself unhealthy,
answers 503, and forms the group again once a worker is back on the same
address (compose's `restart: on-failure`); `duet healthcheck` follows along.
"""
import json
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import build_dir, wait_until

MODEL_DIR = build_dir() / "models" / "duet-tiny-qwen3"
DUET = build_dir() / "tools" / "duet" / "duet"
ROUTER = build_dir() / "router" / "duet-router"
WORKER = build_dir() / "worker" / "duet-worker"


def wait_for_file(path, process, log, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        if process.poll() is not None:
            raise RuntimeError(f"exited {process.returncode}:\n{log.read_text()}")
        time.sleep(0.05)
    raise RuntimeError(f"no {path.name} within {timeout} s:\n{log.read_text()}")


class Process:
    def __init__(self, tmp, name, argv, port_file):
        self.log = tmp / f"{name}.log"
        port_file.unlink(missing_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self.port = wait_for_file(port_file, self.process, self.log)

    def stop(self, sig=signal.SIGTERM):
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_worker(tmp, rank, port=0):
    return Process(tmp, f"worker{rank}",
                   [str(WORKER), f"--port={port}", f"--port-file={tmp}/worker{rank}.port",
                    "--threads=1", "--cpu-kv-cache-gib=0.25"],
                   tmp / f"worker{rank}.port")


def post_completion(port):
    body = json.dumps({"model": "tiny", "prompt": "red green", "max_tokens": 4,
                       "temperature": 0}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def healthcheck(*args):
    return subprocess.run([str(DUET), "healthcheck", "--timeout=2", *args],
                          capture_output=True, text=True, timeout=30)


@pytest.fixture
def stack(tmp_path):
    if not all(p.exists() for p in (DUET, ROUTER, WORKER)) or not (MODEL_DIR / "config.json").exists():
        pytest.skip("duet binaries and duet-tiny-qwen3 are not built")
    workers = [start_worker(tmp_path, 0), start_worker(tmp_path, 1)]
    router = Process(tmp_path, "router",
                     [str(ROUTER), f"--model={MODEL_DIR}", "--served-model-name=tiny",
                      f"--workers=127.0.0.1:{workers[0].port},127.0.0.1:{workers[1].port}",
                      "--port=0", f"--http-port-file={tmp_path}/router.http",
                      "--grpc-port=0", f"--port-file={tmp_path}/router.grpc"],
                     tmp_path / "router.http")
    yield tmp_path, workers, router
    router.stop()
    for worker in workers:
        worker.stop()


def test_the_router_serves_again_when_a_dead_worker_comes_back(stack):
    tmp, workers, router = stack
    health_url = f"--url=http://127.0.0.1:{router.port}/health"
    assert healthcheck(health_url).returncode == 0
    for worker in workers:
        assert healthcheck(f"--grpc-address=127.0.0.1:{worker.port}").returncode == 0
    status, before = post_completion(router.port)
    assert status == 200, before

    dead_port = workers[1].port
    workers[1].stop(signal.SIGKILL)
    assert healthcheck(f"--grpc-address=127.0.0.1:{dead_port}").returncode == 1
    # The next step finds the group broken; from then on the router answers
    # 503 and its health check fails, but the process stays up.
    status, error = post_completion(router.port)
    assert status == 503, error
    assert error["error"]["type"]
    wait_until(lambda: healthcheck(health_url).returncode == 1, 10, "router unhealthy")
    assert router.process.poll() is None

    workers[1] = start_worker(tmp, 1, port=dead_port)
    wait_until(lambda: healthcheck(health_url).returncode == 0, 30, "router healthy again")
    status, after = post_completion(router.port)
    assert status == 200, after
    assert after["choices"][0]["text"] == before["choices"][0]["text"], "same greedy output"
    assert workers[0].process.poll() is None, "the surviving worker was re-used"


def test_the_router_waits_for_workers_that_start_after_it(tmp_path):
    if not all(p.exists() for p in (ROUTER, WORKER)) or not (MODEL_DIR / "config.json").exists():
        pytest.skip("duet binaries and duet-tiny-qwen3 are not built")
    # Free ports for workers that are not running yet.
    probe = [start_worker(tmp_path, rank) for rank in (0, 1)]
    ports = [w.port for w in probe]
    for w in probe:
        w.stop()
    log = tmp_path / "router.log"
    with open(log, "wb") as out:
        router = subprocess.Popen(
            [str(ROUTER), f"--model={MODEL_DIR}", "--served-model-name=tiny",
             f"--workers=127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}",
             "--workers-wait=60", "--port=0", f"--http-port-file={tmp_path}/router.http", "--grpc-port=0"],
            stdout=out, stderr=subprocess.STDOUT)
    workers = []
    try:
        time.sleep(1.5)
        assert router.poll() is None, log.read_text()
        workers = [start_worker(tmp_path, rank, port) for rank, port in enumerate(ports)]
        port = wait_for_file(tmp_path / "router.http", router, log)
        status, body = post_completion(port)
        assert status == 200, body
    finally:
        router.send_signal(signal.SIGTERM)
        assert router.wait(timeout=30) == 0
        for worker in workers:
            worker.stop()


def test_a_router_without_its_workers_exits_non_zero(tmp_path):
    if not ROUTER.exists() or not (MODEL_DIR / "config.json").exists():
        pytest.skip("duet-router and duet-tiny-qwen3 are not built")
    result = subprocess.run([str(ROUTER), f"--model={MODEL_DIR}", "--workers=127.0.0.1:9",
                             "--workers-wait=1", "--port=0", "--grpc-port=0"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "127.0.0.1:9" in result.stderr
