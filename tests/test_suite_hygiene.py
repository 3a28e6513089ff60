"""The suite's own promises: a test that hangs fails on its timeout and leaves nothing running."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.conftest import ROOT

HANGING_TEST = """
import sys
import time
from pathlib import Path

from tests.conftest import WorkerProcess
from tests.processes import Spawned


def test_that_hangs(job_app):
    worker = WorkerProcess(job_app)
    sleeper = Spawned([sys.executable, "-c", "import time; time.sleep(600)"])
    Path("{pids}").write_text(f"{{worker.process.pid}} {{sleeper.pid}}")
    time.sleep(600)  # never stopped by the test itself
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for good, only not yet reaped by its parent.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_a_test_that_times_out_leaves_no_process_running(tmp_path, redis_url):
    pids = tmp_path / "pids"
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.conftest"]\n')
    (tmp_path / "test_hangs.py").write_text(textwrap.dedent(HANGING_TEST.format(pids=pids)))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "--timeout=8",
            "-o",
            "timeout_func_only=true",  # the clock starts with the test itself, not its fixtures
            "-k",
            "sqlite",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TEST_REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Timeout (>8.0s) from pytest-timeout" in result.stdout
    assert "processes still running when the test ended, now stopped" in result.stdout
    worker_pid, sleeper_pid = (int(pid) for pid in pids.read_text().split())
    assert not _alive(worker_pid) and not _alive(sleeper_pid)
