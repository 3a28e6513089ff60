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


PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def test_a_publication_killed_after_the_software_made_the_invoice_is_published_once(
    job_app, live, dossier_with_rule
):
    from tests.test_publishing import click_publish, upstream_invoices

    browser, dossier_id, _, ids = dossier_with_rule
    url = f"/dossiers/{dossier_id}/documents/nouvelle/achat"
    form = {
        "party_id": ids["edf"],
        "number": "F-KILL",
        "issue_date": "2026-11-02",
        "amount_ht": "100,00",
        "amount_tva": "20,00",
        "amount_ttc": "120,00",
        "currency": "EUR",
    }
    created = browser.post_form(url, form, page=url, files={"pdf": ("facture.pdf", PDF, "application/pdf")})
    assert "ajoutée : Prêt" in html.unescape(created.text)
    document_id = int(created.text.split('id="document-')[1].split('"')[0])
    controls = f"{live.url}/sandbox/controls/api"
    # Every call to the software takes 1.5 s: the invoice is made, then its PDF is being sent when
    # the worker dies; the answer with the invoice's id never reaches Raccord.
    requests.post(f"{controls}/settings", json={"latency_ms": 1500}, timeout=10)
    row = f"/dossiers/{dossier_id}/documents/{document_id}/ligne?suivi=1"

    worker = WorkerProcess(job_app)
    try:
        click_publish(browser, dossier_id, document_id)
        _wait_for(lambda: len(upstream_invoices(live)) == 1, step=0.05)
        horses = _wait_for(worker.horses)
        for pid in horses:
            os.kill(pid, signal.SIGKILL)
        assert upstream_invoices(live)[0]["attachments"] == []  # killed half-way through

        def settled() -> str | None:
            text = html.unescape(browser.get(row, headers={"HX-Request": "true"}).text)
            return None if "En cours" in text else text

        shown = _wait_for(settled)
        assert "Échec" in shown and CRASHED_MESSAGE in shown

        # Publishing again completes, and the software still has one invoice, now with its PDF.
        requests.post(f"{controls}/settings", json={"latency_ms": 0}, timeout=10)
        click_publish(browser, dossier_id, document_id)

        def published() -> str | None:
            text = html.unescape(browser.get(row, headers={"HX-Request": "true"}).text)
            return text if "Publié" in text else None

        _wait_for(published)
    finally:
        requests.post(f"{controls}/settings", json={"latency_ms": 0}, timeout=10)
        worker.stop()
    invoices = upstream_invoices(live)
    assert len(invoices) == 1
    assert [a["filename"] for a in invoices[0]["attachments"]] == ["facture.pdf"]
    with job_app.app_context():
        from webapp.models import Document, DocumentStatus

        document = db.session.get(Document, document_id)
        assert document.status is DocumentStatus.PUBLISHED and document.upstream_id == str(invoices[0]["id"])
