"""Redis stopped under a running app: pages render, job actions say in French that the service is
unavailable and change nothing, nothing made is lost, and queued jobs run once Redis is back."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from tests.conftest import LiveServer, make_app, plain_spaces, run_worker_burst, seed_sandbox_for, unescaped
from tests.factories import make_dossier, make_organisation, make_user
from tests.http_user import Browser, connected, toast_of
from tests.processes import Spawned
from webapp.extensions import db
from webapp.models import JobRun, JobStatus, ListKind, ListSync
from webapp.models.lists import SyncStatus
from webapp.services.jobs import UNAVAILABLE_MESSAGE


class PrivateRedis:
    """A redis-server of this test's own, appending to disk so a restart keeps what was queued."""

    def __init__(self, directory: Path):
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is needed to stop and restart a Redis of the test's own")
        self.binary, self.directory = binary, directory
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: Spawned | None = None

    def start(self) -> None:
        self.process = Spawned(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.2).ping()
                return
            except redis.exceptions.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=10)
            self.process = None


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def test_redis_stopped_then_back(database_url, private_redis):
    app = make_app(
        database_url,
        REDIS_URL=private_redis.url,
        RATELIMIT_STORAGE_URI=private_redis.url,  # as in production: the login limits live in Redis
        JOB_QUEUE=f"raccord-test-{uuid.uuid4().hex[:8]}",
    )
    live = LiveServer(app).start()
    try:
        with app.app_context():
            org = make_organisation("Cabinet Lefèvre")
            dossier_id = make_dossier(org, "Boulangerie Martin").id
            make_user(org, "claire@lefevre.test", "bon-mot-de-passe")
            org_id = org.id
        seed_sandbox_for(app, org_id)
        browser = Browser(live.url)
        browser.login("claire@lefevre.test", "bon-mot-de-passe")
        integration_id = connected(app, browser, dossier_id)
        integration_page = f"/dossiers/{dossier_id}/integrations/{integration_id}"

        def syncs() -> dict:
            with app.app_context():
                return {
                    s.kind: (s.status, s.last_error, s.last_loaded_at)
                    for s in db.session.scalars(
                        select(ListSync).where(ListSync.integration_id == integration_id)
                    )
                }

        # A job queued while Redis is up, not yet run when Redis stops.
        refresh = browser.post_form(
            f"{integration_page}/listes/suppliers/recharger", {}, page=integration_page, htmx=True
        )
        assert "a commencé" in toast_of(refresh)
        private_redis.stop()

        # Pages still render, with what was last loaded.
        for path in (
            "/dossiers",
            f"/dossiers/{dossier_id}",
            integration_page,
            f"/dossiers/{dossier_id}/listes/accounts",
        ):
            response = browser.get(path)
            assert response.status_code == 200, path
        assert "Fournisseurs" in unescaped(browser.get(integration_page).text)
        assert browser.get("/healthz").status_code == 503
        # Logging in still works: the login limits fall back to this process's memory.
        colleague = Browser(live.url)
        colleague.login("claire@lefevre.test", "bon-mot-de-passe")

        before = syncs()
        with app.app_context():
            runs_before = db.session.scalar(select(func.count()).select_from(JobRun))
        answer = browser.post_form(f"{integration_page}/actualiser", {}, page=integration_page, htmx=True)
        assert answer.status_code == 200
        assert toast_of(answer) == plain_spaces(str(UNAVAILABLE_MESSAGE))
        # Nothing changed: the lists keep their state, no load is left 'en cours' or 'en échec'.
        assert syncs() == before
        with app.app_context():
            new_runs = db.session.scalars(select(JobRun).order_by(JobRun.id).offset(runs_before)).all()
            assert all(
                run.status is JobStatus.FAILED
                and plain_spaces(run.message) == plain_spaces(str(UNAVAILABLE_MESSAGE))
                for run in new_runs
            )

        # Redis back: the job queued before the stop runs, and new actions work again.
        private_redis.start()
        run_worker_burst(app)
        with app.app_context():
            sync = db.session.scalar(
                select(ListSync).where(
                    ListSync.integration_id == integration_id, ListSync.kind == ListKind.SUPPLIERS
                )
            )
            assert sync.status is SyncStatus.SUCCEEDED
        again = browser.post_form(f"{integration_page}/actualiser", {}, page=integration_page, htmx=True)
        assert toast_of(again) == "Le chargement des listes a commencé."
        run_worker_burst(app)
        assert all(status is SyncStatus.SUCCEEDED for status, _, _ in syncs().values())
    finally:
        live.stop()
        private_redis.stop()
