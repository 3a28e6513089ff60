"""A work horse killed (SIGKILL) in the middle of a list refresh: the list stays whole, the job says so."""

from __future__ import annotations

import html
import os
import signal
import time

import requests
from sqlalchemy import func, select

from tests.conftest import WorkerProcess
from tests.http_user import COMPANY
from webapp.extensions import db
from webapp.models import ListItem, ListItemStaging, ListKind, ListSync
from webapp.models.lists import SyncStatus
from webapp.services.jobs import CRASHED_MESSAGE


def _wait_for(predicate, timeout: float = 60.0, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not reached in time")


def test_a_refresh_killed_mid_way_leaves_the_list_whole_and_can_be_retried(job_app, live, connected_dossier):
    browser, dossier_id, integration_id = connected_dossier

    def suppliers() -> dict[str, str]:
        with job_app.app_context():
            rows = db.session.execute(
                select(ListItem.external_id, ListItem.name).where(
                    ListItem.integration_id == integration_id, ListItem.kind == ListKind.SUPPLIERS
                )
            ).all()
            return dict(rows)

    before = suppliers()
    controls = f"{live.url}/sandbox/controls/api"
    requests.post(
        f"{controls}/companies/{COMPANY}/items/sup-000001", json={"name": "EDF (renommé)"}, timeout=10
    )
    requests.post(f"{controls}/settings", json={"latency_ms": 700}, timeout=10)

    worker = WorkerProcess(job_app, LIST_PAGE_SIZE="10")
    try:
        page = f"/dossiers/{dossier_id}/listes/suppliers"
        browser.post_form(f"{page}/recharger", {}, page=page, htmx=True)

        def staged() -> int:
            with job_app.app_context():
                return db.session.scalar(select(func.count()).select_from(ListItemStaging)) or 0

        _wait_for(lambda: staged() >= 10)
        horses = _wait_for(worker.horses)
        for pid in horses:
            os.kill(pid, signal.SIGKILL)

        status_url = f"{page}/etat?suivi=1"

        def settled() -> str | None:
            text = html.unescape(browser.get(status_url, headers={"HX-Request": "true"}).text)
            return None if "Chargement en cours" in text else text

        shown = _wait_for(settled)
        assert "Échec du dernier chargement" in shown and CRASHED_MESSAGE in shown
        assert suppliers() == before  # nothing half-written

        requests.post(f"{controls}/settings", json={"latency_ms": 0}, timeout=10)
        browser.post_form(f"{page}/recharger", {}, page=page, htmx=True)

        def loaded() -> bool:
            with job_app.app_context():
                db.session.expire_all()
                sync = db.session.scalar(
                    select(ListSync).where(
                        ListSync.integration_id == integration_id, ListSync.kind == ListKind.SUPPLIERS
                    )
                )
                return sync.status is SyncStatus.SUCCEEDED

        _wait_for(loaded)
        after = suppliers()
        assert after["sup-000001"] == "EDF (renommé)"
        assert set(after) == set(before)
        assert staged() == 0  # the dead run's pages were cleared
    finally:
        worker.stop()
