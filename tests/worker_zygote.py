"""Forks real `flask` commands (RQ workers above all) from a process that has imported Raccord once.

A test's worker is the production command, `flask --app wsgi worker [--burst]`, with the test's own
environment; only the second and a half of imports that every new Python process pays is paid once
per test session instead of once per worker. The app itself is created in each child, from that
child's environment, exactly as the command does.

Protocol, one JSON object per line. On stdin: {"id": n, "argv": [...], "env": {...}, "stdout": path,
"stderr": path}. On stdout: {"id": n, "pid": pid} when the child is forked, then {"pid": pid,
"returncode": code} when it ends (a negative code is the signal that ended it). When stdin closes
(the tests ended, or their process died), every child still running is killed, with its work horses.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pkgutil
import selectors
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PR_SET_PDEATHSIG = 1


def die_with_parent(expected_parent: int) -> None:
    """Ask the kernel to end this process when its parent ends, then close the race with a look."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != expected_parent:
        os._exit(1)


def preload() -> None:
    """Import what a worker imports, without creating an app (that reads the child's environment)."""
    sys.path.insert(0, str(ROOT))
    import flask.cli  # noqa: F401

    import jobs
    import sandbox
    import webapp

    # The sandbox too: every app a worker creates mounts it (webapp.sandbox_host).
    for package in (webapp, jobs, sandbox):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            __import__(module.name)
    import psycopg  # noqa: F401
    import rq.worker  # noqa: F401


def run_child(request: dict, parent: int) -> None:
    """In the forked child: become the command, as if started by `python -m flask ...`."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()  # its own process group: the tests stop the worker and its work horses together
    die_with_parent(parent)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    os.closerange(3, 256)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(ROOT)
    sys.argv = ["flask", *request["argv"]]
    code = 0
    try:
        from flask.cli import main

        main()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def main() -> None:
    parent = int(sys.argv[1])
    die_with_parent(parent)
    preload()
    children: set[int] = set()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(sys.stdin, selectors.EVENT_READ, "request")
    selector.register(wake_read, selectors.EVENT_READ, "child")
    out = sys.stdout

    def say(message: dict) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    def reap() -> None:
        for pid in list(children):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                children.discard(pid)
                say({"pid": pid, "returncode": os.waitstatus_to_exitcode(status)})

    try:
        while True:
            for key, _ in selector.select():
                if key.data == "child":
                    os.read(wake_read, 4096)
                    reap()
                    continue
                line = sys.stdin.readline()
                if not line:
                    return
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    run_child(request, parent=os.getppid())
                children.add(pid)
                say({"id": request["id"], "pid": pid})
                reap()
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
