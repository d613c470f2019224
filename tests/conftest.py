"""Shared pytest setup for duet's Python tests (run by ctest)."""
import os
import pathlib
import socket

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
