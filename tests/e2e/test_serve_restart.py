"""Worker faults under load, through `duet serve`: a worker killed (SIGKILL)
or stopped (SIGSTOP) while a stream runs. The stream ends with an explicit
error, /health answers 503, and with --restart-workers the worker is started
again on its port, the router (never restarted) re-forms the group and
serves the same greedy answer as before; without it, `duet serve` exits 1.
"""
import http.client
import json
import os
import signal
import threading

import pytest

from conftest import DuetServe, build_dir, wait_until

MODEL_DIR = build_dir() / "models" / "duet-tiny-qwen3"
PROMPT = "red green blue"


def requires_tiny():
    if not (MODEL_DIR / "config.json").exists() or not (build_dir() / "tools" / "duet" / "duet").exists():
        pytest.skip("duet and duet-tiny-qwen3 are not built")


def serve(tmp, *args):
    requires_tiny()
    return DuetServe(tmp, "--model", MODEL_DIR, "--served-model-name", "tiny", "--tensor-parallel-size", "2",
                     "--kv-cache-gib", "0.25", "--threads", "1", *args)


def complete(port, max_tokens=6):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", "/v1/completions",
                           json.dumps({"model": "tiny", "prompt": PROMPT, "max_tokens": max_tokens,
                                       "temperature": 0}),
                           {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def health(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/health")
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


class Stream:
    """A long streamed completion in a thread: `started` once the first
    event came; `events` the decoded data lines (an error is one of them)."""

    def __init__(self, port):
        self.port = port
        self.started = threading.Event()
        self.events = []
        self.status = None
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            connection.request("POST", "/v1/completions",
                               json.dumps({"model": "tiny", "prompt": PROMPT, "max_tokens": 4000,
                                           "ignore_eos": True, "stream": True}),
                               {"Content-Type": "application/json"})
            response = connection.getresponse()
            self.status = response.status
            for line in response:
                line = line.strip()
                if not line.startswith(b"data: "):
                    continue
                if line == b"data: [DONE]":
                    break
                self.events.append(json.loads(line[len(b"data: "):]))
                self.started.set()
        finally:
            self.started.set()
            connection.close()

    def join(self, timeout):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the stream did not end within {timeout} s"

    def ended_with_an_error(self):
        return self.status == 200 and bool(self.events) and "error" in self.events[-1]


class HealthWatch:
    """Polls /health every 20 ms until stopped; keeps the statuses seen."""

    def __init__(self, port):
        self.seen = set()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, args=(port,), daemon=True)
        self.thread.start()

    def run(self, port):
        while not self.stopped.wait(0.02):
            self.seen.add(health(port))

    def stop(self):
        self.stopped.set()
        self.thread.join()
        return self.seen


def router_pid(server):
    [pid] = server.pids_of("duet-router")
    return pid


@pytest.fixture
def restarting(tmp_path):
    server = serve(tmp_path, "--restart-workers", "--worker-health-timeout", "3", "--worker-step-timeout", "20")
    yield server
    server.stop()
    print(server.log_path.read_text()[-6000:])  # shown when the test failed


@pytest.mark.parametrize("fault,rank", [(signal.SIGKILL, 1), (signal.SIGSTOP, 0)], ids=["sigkill", "sigstop"])
def test_a_failed_worker_is_restarted_and_serving_resumes(restarting, fault, rank):
    server = restarting
    status, before = complete(server.port)
    assert status == 200, before
    router = router_pid(server)
    victim = server.worker_pid(rank)

    stream = Stream(server.port)
    assert stream.started.wait(60) and stream.events, "the stream did not start"
    watch = HealthWatch(server.port)
    os.kill(victim, fault)
    # SIGSTOP: the health check fails for 3 s, then the worker is killed.
    stream.join(60)
    assert stream.ended_with_an_error(), (stream.status, stream.events[-1:])
    assert not any(choice.get("finish_reason") for event in stream.events[:-1] for choice in event["choices"]), \
        "the stream ended with an error, not a finish_reason"
    wait_until(lambda: health(server.port) == 200, 60, "healthy again")
    seen = watch.stop()
    assert 503 in seen, f"/health never answered 503 (saw {seen})"

    status, after = complete(server.port)
    assert status == 200, after
    assert after["choices"][0]["text"] == before["choices"][0]["text"], "the same greedy answer"
    assert router_pid(server) == router, "the router was not restarted"
    assert server.worker_pid(rank) != victim
    log = server.log_path.read_text()
    assert f"duet-worker rank {rank}" in log and "restarting it on port" in log, log
    assert server.process.poll() is None


def test_a_worker_in_a_crash_loop_stops_serve(tmp_path):
    # Five failures in a row, each within a minute of the worker's start.
    server = serve(tmp_path, "--restart-workers")
    try:
        for _ in range(5):
            victim = server.worker_pid(1)
            os.kill(victim, signal.SIGKILL)
            wait_until(lambda: server.process.poll() is not None or _restarted(server, victim), 30,
                       "restarted or stopped")
        server.process.wait(timeout=60)
        assert server.process.returncode == 1
        log = server.log_path.read_text()
        assert "restarting it on port" in log and "(restart 4)" in log and "(restart 5)" not in log, log
        assert "the 5th time in a row within 1m of its start; stopping the others" in log, log
    finally:
        server.stop()


def _restarted(server, old_pid):
    try:
        return server.worker_pid(1) != old_pid
    except LookupError:
        return False


def test_without_restart_workers_a_dead_worker_stops_serve(tmp_path):
    server = serve(tmp_path)
    try:
        os.kill(server.worker_pid(1), signal.SIGKILL)
        server.process.wait(timeout=60)
        assert server.process.returncode == 1
        assert "duet-worker rank 1 was killed by signal 9; stopping the others" in server.log_path.read_text()
    finally:
        server.stop()
