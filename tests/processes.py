"""The processes the tests start (RQ workers, the scheduler, `serve-local`, a Redis), and their end.

Every process is started in a process group of its own and recorded; whatever happens to the test
(an assertion, a timeout, a crash of the fixture), the teardown in conftest stops what is still
running, work horses included. RQ workers are forked from a process that has imported Raccord
once (tests/worker_zygote.py): the same command, started in milliseconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ZYGOTE_ENABLED = os.environ.get("RACCORD_TEST_ZYGOTE", "1") != "0"


class Started:
    """What every started process offers the tests: pid, poll, wait, terminate, kill, its output."""

    pid: int
    name: str

    def poll(self) -> int | None:
        raise NotImplementedError

    def wait(self, timeout: float | None = None) -> int:
        raise NotImplementedError

    def terminate(self) -> None:
        """SIGTERM to the process itself: a worker then ends its current job (warm shutdown)."""
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL to the whole group: the process and whatever it forked (work horses)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def stop(self, grace: float = 15) -> None:
        """SIGTERM, then SIGKILL to the group if it has not ended within `grace` seconds."""
        if self.poll() is None:
            self.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.wait(timeout=grace)
        self.kill()  # what is left of the group (a work horse whose worker has already gone)
        if self.poll() is None:
            self.wait(timeout=10)


class Spawned(Started):
    """A real subprocess (for commands whose start is what the test is about)."""

    def __init__(self, args: list[str], **popen_kwargs):
        self.name = " ".join(args[-3:])
        self.popen = subprocess.Popen(args, start_new_session=True, **popen_kwargs)
        self.pid = self.popen.pid
        _started.append(self)

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def poll(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self.popen.wait(timeout=timeout)

    def communicate(self, timeout: float | None = None):
        return self.popen.communicate(timeout=timeout)

    def stop(self, grace: float = 15) -> None:
        super().stop(grace)
        # Its pipes are closed here, not by the garbage collector during a later test (where the
        # ResourceWarning would fail that test instead).
        for pipe in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if pipe is not None:
                pipe.close()


class Forked(Started):
    """A `flask` command forked by the zygote; its output goes to files read when it ends."""

    def __init__(self, zygote: Zygote, pid: int, name: str, stdout: Path, stderr: Path):
        self.zygote, self.pid, self.name = zygote, pid, name
        self.stdout_path, self.stderr_path = stdout, stderr
        self.returncode: int | None = None
        _started.append(self)

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.zygote.returncode_of(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        code = self.zygote.wait_for(self.pid, timeout, self.name)
        self.returncode = code
        return code

    def output(self) -> tuple[str, str]:
        read = lambda path: path.read_text(errors="replace") if path.exists() else ""  # noqa: E731
        return read(self.stdout_path), read(self.stderr_path)


class Zygote:
    """The process that forks the tests' workers; one per test process, started on first use."""

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="raccord-workers-"))
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "worker_zygote.py"), str(os.getpid())],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self.lock = threading.Condition()
        self.pids: dict[int, int] = {}
        self.exits: dict[int, int] = {}
        self.next_id = 0
        self.reader = threading.Thread(target=self._read, name="zygote-reader", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            message = json.loads(line)
            with self.lock:
                if "returncode" in message:
                    self.exits[message["pid"]] = message["returncode"]
                else:
                    self.pids[message["id"]] = message["pid"]
                self.lock.notify_all()
        with self.lock:
            self.lock.notify_all()

    def alive(self) -> bool:
        return self.process.poll() is None

    def fork(self, argv: list[str], env: dict[str, str]) -> Forked:
        with self.lock:
            self.next_id += 1
            request_id = self.next_id
        stdout, stderr = (self.folder / f"{request_id}.out", self.folder / f"{request_id}.err")
        request = {"id": request_id, "argv": argv, "env": env, "stdout": str(stdout), "stderr": str(stderr)}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        deadline = time.monotonic() + 30
        with self.lock:
            while request_id not in self.pids:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self.alive():
                    raise RuntimeError(f"the worker zygote did not fork `flask {' '.join(argv)}`")
                self.lock.wait(remaining)
            pid = self.pids.pop(request_id)
        return Forked(self, pid, "flask " + " ".join(argv), stdout, stderr)

    def returncode_of(self, pid: int) -> int | None:
        with self.lock:
            return self.exits.get(pid)

    def wait_for(self, pid: int, timeout: float | None, name: str) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            while pid not in self.exits:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise subprocess.TimeoutExpired(name, timeout)
                if not self.alive():
                    raise RuntimeError(f"the worker zygote ended while `{name}` was running")
                self.lock.wait(remaining if remaining is not None else 1)
            return self.exits[pid]

    def close(self) -> None:
        try:
            self.process.stdin.close()
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait(timeout=5)
        self.reader.join(timeout=5)
        self.process.stdout.close()
        shutil.rmtree(self.folder, ignore_errors=True)


_zygote: Zygote | None = None
_started: list[Started] = []


def flask_command(argv: list[str], env: dict[str, str], *, capture: bool = True) -> Started:
    """`python -m flask <argv>` with `env`: forked by the zygote, or spawned when it is turned off."""
    global _zygote
    if ZYGOTE_ENABLED:
        if _zygote is None or not _zygote.alive():
            _zygote = Zygote()
        return _zygote.fork(argv, env)
    output = subprocess.PIPE if capture else subprocess.DEVNULL
    return Spawned(
        [sys.executable, "-m", "flask", *argv], cwd=ROOT, env=env, stdout=output, stderr=output, text=True
    )


def run_flask_command(argv: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """Run a command to its end, like subprocess.run(check=True); stopped, whatever happens, on timeout."""
    process = flask_command(argv, env)
    try:
        if isinstance(process, Forked):
            code = process.wait(timeout=timeout)
            stdout, stderr = process.output()
        else:
            stdout, stderr = process.communicate(timeout=timeout)
            code = process.returncode
    finally:
        process.stop(grace=5)
    if code != 0:
        raise subprocess.CalledProcessError(code, ["flask", *argv], stdout, stderr)
    return subprocess.CompletedProcess(["flask", *argv], code, stdout, stderr)


def stop_leftovers() -> list[str]:
    """Stop every process started since the last call that still runs; their names."""
    left = []
    while _started:
        process = _started.pop()
        if process.poll() is None:
            left.append(process.name)
        process.stop(grace=5)
    return left


def close_zygote() -> None:
    global _zygote
    if _zygote is not None:
        _zygote.close()
        _zygote = None
