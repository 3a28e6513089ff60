"""A work horse killed (SIGKILL) in the middle of a list refresh: the list stays whole, the job says so."""

from __future__ import annotations

import os
import signal
import time

import pytest
from sqlalchemy import func, select, text

from tests.conftest import WorkerProcess, unescaped
from tests.http_user import COMPANY, controls_api
from webapp.extensions import db
from webapp.models import ListItem, ListItemStaging, ListKind, ListSync, Rule, RuleTransfer
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
    controls_api.post(
        f"{controls}/companies/{COMPANY}/items/sup-000001", json={"name": "EDF (renommé)"}, timeout=10
    )
    controls_api.post(f"{controls}/settings", json={"latency_ms": 700}, timeout=10)

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
            text = unescaped(browser.get(status_url, headers={"HX-Request": "true"}).text)
            return None if "Chargement en cours" in text else text

        shown = _wait_for(settled)
        assert "Échec du dernier chargement" in shown and str(CRASHED_MESSAGE) in shown
        assert suppliers() == before  # nothing half-written

        controls_api.post(f"{controls}/settings", json={"latency_ms": 0}, timeout=10)
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
    assert "ajoutée : Prêt" in unescaped(created.text)
    document_id = int(created.text.split('id="document-')[1].split('"')[0])
    controls = f"{live.url}/sandbox/controls/api"
    # Every call to the software takes 1.5 s: the invoice is made, then its PDF is being sent when
    # the worker dies; the answer with the invoice's id never reaches Raccord.
    controls_api.post(f"{controls}/settings", json={"latency_ms": 1500}, timeout=10)
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
            text = unescaped(browser.get(row, headers={"HX-Request": "true"}).text)
            return None if "En cours" in text else text

        shown = _wait_for(settled)
        assert "Échec" in shown and str(CRASHED_MESSAGE) in shown

        # Publishing again completes, and the software still has one invoice, now with its PDF.
        controls_api.post(f"{controls}/settings", json={"latency_ms": 0}, timeout=10)
        click_publish(browser, dossier_id, document_id)

        def published() -> str | None:
            text = unescaped(browser.get(row, headers={"HX-Request": "true"}).text)
            return text if "Publié" in text else None

        _wait_for(published)
    finally:
        controls_api.post(f"{controls}/settings", json={"latency_ms": 0}, timeout=10)
        worker.stop()
    invoices = upstream_invoices(live)
    assert len(invoices) == 1
    assert [a["filename"] for a in invoices[0]["attachments"]] == ["facture.pdf"]
    with job_app.app_context():
        from webapp.models import Document, DocumentStatus

        document = db.session.get(Document, document_id)
        assert document.status is DocumentStatus.PUBLISHED and document.upstream_id == str(invoices[0]["id"])


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_transfer_killed_before_it_commits_writes_no_rule_and_is_started_again(
    job_app, live, dossier_with_rule
):
    """The worker dies after the new rules were inserted and the waiting document moved, and before the
    transaction commits (the test holds the transfer's row, so the job waits there; PostgreSQL shows
    it waiting)."""
    from tests.conftest import run_worker_burst
    from tests.test_transfer import to_xero
    from tests.test_transfer_documents import add_document
    from webapp.models import Document, DocumentStatus

    browser, dossier_id, integration_id, ids = dossier_with_rule
    with job_app.app_context():
        document_id = add_document(
            integration_id,
            dossier_id,
            "F-ATTENTE",
            DocumentStatus.READY,
            party_id=ids["edf"],
            account_id=ids["energy"],
            tax_rate_id=ids["tva20"],
        )
    new_id = to_xero(job_app, browser, dossier_id, integration_id)
    run_worker_burst(job_app)  # the new lists load
    url = f"/dossiers/{dossier_id}/integrations/{new_id}"

    def document_on() -> int:
        with job_app.app_context():
            return db.session.get(Document, document_id).integration_id

    def new_rules() -> list[tuple[int, int | None]]:
        with job_app.app_context():
            db.session.expire_all()
            return db.session.execute(
                select(Rule.id, Rule.transferred_from_id).where(Rule.integration_id == new_id)
            ).all()

    started = browser.post_form(f"{url}/transfert", {}, page=url)
    assert "Transfert en cours" in unescaped(started.text)
    with job_app.app_context():
        run_id = db.session.scalar(select(RuleTransfer.id))
        locker = db.engine.connect()
    locker.execute(text("SELECT id FROM rule_transfer WHERE id = :id FOR UPDATE"), {"id": run_id})
    worker = WorkerProcess(job_app)
    try:

        def waiting_on_the_row() -> bool:
            locker.execute(text("SELECT pg_stat_clear_snapshot()"))  # a fresh view, not the transaction's
            return bool(
                locker.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND query ILIKE 'UPDATE rule_transfer%'"
                    )
                ).scalar()
            )

        _wait_for(waiting_on_the_row)  # the rules are inserted, the commit has not come
        for pid in _wait_for(worker.horses):
            os.kill(pid, signal.SIGKILL)
        locker.rollback()

        def settled() -> str | None:
            text_ = unescaped(browser.get(started.url, headers={"HX-Request": "true"}).text)
            return None if "Transfert en cours" in text_ else text_

        shown = _wait_for(settled)
        assert "Le transfert n'a pas abouti" in shown and str(CRASHED_MESSAGE) in shown
        assert "Aucune règle n'a été écrite" in shown and "Relancer le transfert" in shown
        assert new_rules() == []  # nothing half-written
        assert "Aucun document n'a été déplacé." in shown and document_on() == integration_id
        page = unescaped(browser.get(url).text)
        assert "Règles à transférer (1)" in page

        again = browser.post_form(f"{url}/transfert", {}, page=started.url)
        assert "Transfert en cours" in unescaped(again.text)

        def done() -> str | None:
            text_ = unescaped(browser.get(again.url, headers={"HX-Request": "true"}).text)
            return text_ if "Transfert terminé" in text_ else None

        finished = _wait_for(done)
        assert "1 règle transférée entière, 0 avec des champs vides" in finished
        assert "Documents : 1 transféré, dont 0 à réviser." in finished and document_on() == new_id
    finally:
        locker.close()
        worker.stop()
    with job_app.app_context():
        old_id = db.session.scalar(select(Rule.id).where(Rule.integration_id == integration_id))
    assert [from_id for _, from_id in new_rules()] == [old_id]  # written once
