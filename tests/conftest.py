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
