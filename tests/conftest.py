"""Shared pytest setup for duet's Python tests (run by ctest)."""
import os
import pathlib
import signal
import socket
import subprocess
import time

import pytest

SKIPPED_EXIT_CODE = 77  # ctest's SKIP_RETURN_CODE for duet_pytest tests


def build_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("DUET_BUILD_DIR", "build"))


def assets_dir() -> pathlib.Path:
    source = pathlib.Path(os.environ.get("DUET_SOURCE_DIR", "."))
    return pathlib.Path(os.environ.get("DUET_ASSETS", source / ".." / "shared" / "assets"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DuetServe:
    """`duet serve ARGS...` on free ports, started and waited for until it
    prints "ready"; stop() sends SIGINT (as Ctrl-C) and waits."""

    def __init__(self, tmp: pathlib.Path, *args, start_timeout=120):
        self.port, self.grpc_port = free_port(), free_port()
        self.log_path = tmp / "serve.log"
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [str(build_dir() / "tools" / "duet" / "duet"), "serve", "--port", str(self.port),
             "--grpc-port", str(self.grpc_port), *[str(arg) for arg in args]],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + start_timeout
        while b"ready" not in self.log_path.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"duet serve did not start:\n{self.log_path.read_text()}")
            time.sleep(0.1)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def children(self):
        """{pid: argv} of this server's child processes."""
        found = {}
        for entry in pathlib.Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except (OSError, IndexError, ValueError):
                continue
            if parent == self.process.pid:
                found[int(entry.name)] = argv
        return found

    def pids_of(self, binary: str):
        """PIDs of the children running `binary` (duet-worker, duet-router)."""
        return [pid for pid, argv in self.children().items() if argv[0].endswith(binary.encode())]

    def worker_pid(self, rank: int) -> int:
        """The pid of this server's duet-worker of `rank` (the child given
        --port-file=.../worker<rank>.port)."""
        for pid, argv in self.children().items():
            if any(arg.endswith(f"worker{rank}.port".encode()) for arg in argv):
                return pid
        raise LookupError(f"duet serve has no duet-worker rank {rank}")

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def wait_until(predicate, timeout, what):
    """Polls `predicate` until it holds; fails the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"not {what} within {timeout} s")


def duet_v1_stubs(out_dir: pathlib.Path):
    """duet_pb2 and duet_pb2_grpc, generated into `out_dir` from proto/duet/v1/duet.proto."""
    import importlib.resources
    import sys

    from grpc_tools import protoc

    source = pathlib.Path(os.environ.get("DUET_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[1]))
    well_known = str(importlib.resources.files("grpc_tools") / "_proto")
    out_dir.mkdir(parents=True, exist_ok=True)
    code = protoc.main(["protoc", f"-I{source / 'proto'}", f"-I{well_known}", f"--python_out={out_dir}",
                        f"--grpc_python_out={out_dir}", str(source / "proto" / "duet" / "v1" / "duet.proto")])
    assert code == 0, "grpc_tools.protoc failed on duet.proto"
    sys.path.insert(0, str(out_dir))
    from duet.v1 import duet_pb2, duet_pb2_grpc
    return duet_pb2, duet_pb2_grpc


@pytest.fixture
def duet_build_dir() -> pathlib.Path:
    return build_dir()


def pytest_sessionfinish(session, exitstatus):
    # A run where every test skipped must read as skipped in ctest, not passed.
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or exitstatus != 0:
        return
    passed = len(reporter.stats.get("passed", []))
    skipped = len(reporter.stats.get("skipped", []))
    if passed == 0 and skipped > 0:
        session.exitstatus = SKIPPED_EXIT_CODE
