"""The OAuth callback's code and state never reach an access log: Werkzeug's (`make run`) nor
gunicorn's (production, with the repository's gunicorn.conf.py), whatever the other lines keep."""

from __future__ import annotations

import logging
import socket
import sys
import time

import requests

from tests.conftest import ROOT, LiveServer, worker_env
from tests.processes import Spawned

CODE, STATE = "code-secret-4f1c9a", "state-secret-77b2e0"


def test_werkzeug_logs_the_callback_without_its_query(app, caplog):
    caplog.set_level(logging.INFO, logger="werkzeug")
    server = LiveServer(app).start()
    try:
        requests.get(
            f"{server.url}/oauth/callback?code={CODE}&state={STATE}", timeout=10, allow_redirects=False
        )
        requests.get(f"{server.url}/login?next=/dossiers", timeout=10)
        # The same state is in the address of the software's authorisation page: masked there too.
        requests.get(f"{server.url}/sandbox/oauth/authorize?response_type=code&state={STATE}", timeout=10)
    finally:
        server.stop()
    logged = caplog.text
    assert "GET /oauth/callback HTTP/1.1" in logged
    assert "GET /login?next=/dossiers HTTP/1.1" in logged  # other queries are kept
    assert "GET /sandbox/oauth/authorize?response_type=code&state=… HTTP/1.1" in logged
    assert CODE not in logged and STATE not in logged


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_gunicorn_logs_the_callback_without_its_query(job_app, tmp_path):
    port, log = _free_port(), tmp_path / "access.log"
    server = Spawned(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--access-logfile",
            str(log),
            "wsgi:app",
        ],
        cwd=ROOT,  # where gunicorn.conf.py is, as `make serve`, the image and compose.yaml start it
        env={**worker_env(job_app), "SANDBOX_ENABLED": "false"},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{base}/robots.txt", timeout=10)
                break
            except requests.RequestException:  # not listening yet, or too busy to answer yet
                assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.1)
        callback = f"{base}/oauth/callback?code={CODE}&state={STATE}"
        requests.get(callback, timeout=10, allow_redirects=False)
        requests.get(f"{base}/login?next=/dossiers", headers={"Referer": callback}, timeout=10)
        deadline = time.monotonic() + 10
        while log.read_text().count("\n") < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.stop(grace=10)
    logged = log.read_text()
    assert '"GET /oauth/callback HTTP/1.1"' in logged
    assert '"GET /login?next=/dossiers HTTP/1.1"' in logged
    assert CODE not in logged and STATE not in logged
