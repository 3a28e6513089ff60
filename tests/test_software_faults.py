"""The accounting software misbehaving — slow, 5xx, 429, garbled JSON, a connection closed without an
answer — met by real workers: bounded retries, a clear outcome in French, the integration not marked
expired by mistake, the list as it was, no invoice made twice."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import run_worker_burst, unescaped
from tests.http_user import controls_api
from tests.test_connect_and_lists import EXPECTED_SIZES, sizes
from tests.test_publishing import click_publish, new_invoice, status_of, upstream_invoices
from webapp.extensions import db
from webapp.models import DocumentStatus, Integration, IntegrationStatus, ListKind, ListSync
from webapp.models.lists import SyncStatus

RETRIES = 2  # PROVIDER_MAX_RETRIES for these workers: 3 calls at most


def _controls(live) -> str:
    return f"{live.url}/sandbox/controls/api"


def _faults_left(live) -> int:
    return controls_api.get(f"{_controls(live)}/state", timeout=10).json()["settings"]["faults"]["count"]


def _customers_sync(job_app, integration_id: int) -> ListSync:
    with job_app.app_context():
        sync = db.session.scalar(
            select(ListSync).where(
                ListSync.integration_id == integration_id, ListSync.kind == ListKind.CUSTOMERS
            )
        )
        db.session.expunge(sync)
        return sync


@pytest.mark.parametrize(
    ("fault", "calls", "message"),
    [
        (
            {"status": 503},
            RETRIES + 1,
            "Le logiciel comptable est indisponible (erreur 503). Réessayez plus tard.",
        ),
        (
            {"status": 500},
            RETRIES + 1,
            "Le logiciel comptable est indisponible (erreur 500). Réessayez plus tard.",
        ),
        (  # a wait longer than PROVIDER_MAX_RETRY_AFTER is left to the user, not slept in a worker
            {"status": 429, "retry_after": 3600},
            1,
            "Le logiciel comptable limite le nombre de demandes. Réessayez dans 60 minutes.",
        ),
        ({"kind": "malformed"}, RETRIES + 1, "Compta Démo a renvoyé une réponse illisible."),
        (
            {"kind": "drop"},
            RETRIES + 1,
            "Le logiciel comptable ne répond pas. Réessayez dans quelques minutes.",
        ),
    ],
    ids=["503", "500", "429-long", "malformed-json", "connection-closed"],
)
def test_a_refresh_against_a_failing_software_stops_after_bounded_retries_and_keeps_the_list(
    job_app, live, connected_dossier, fault, calls, message
):
    browser, dossier_id, integration_id = connected_dossier
    before = sizes(job_app, integration_id)
    controls_api.post(f"{_controls(live)}/faults", json={"count": 20, **fault}, timeout=10)
    page = f"/dossiers/{dossier_id}/listes/customers"
    browser.post_form(f"{page}/recharger", {}, page=page, htmx=True)
    run_worker_burst(job_app, PROVIDER_MAX_RETRIES=str(RETRIES))

    assert 20 - _faults_left(live) == calls  # bounded: then the job ends
    controls_api.post(f"{_controls(live)}/faults", json={"count": 0}, timeout=10)
    sync = _customers_sync(job_app, integration_id)
    assert sync.status is SyncStatus.FAILED and sync.last_error == message
    with job_app.app_context():
        assert db.session.get(Integration, integration_id).status is IntegrationStatus.CONNECTED
    assert sizes(job_app, integration_id) == before == EXPECTED_SIZES
    shown = unescaped(browser.get(f"/dossiers/{dossier_id}/integrations/{integration_id}").text)
    assert message in shown and "Réessayer" in shown and "a expiré" not in shown

    if fault.get("status") == 429:
        # Nobody calls the company before the software's Retry-After (the company's budget, shared by
        # every worker, is paused for it); here the hour has passed.
        from webapp.connectors.limits import budget_for

        with job_app.app_context():
            budget = budget_for("sandbox", db.session.get(Integration, integration_id).company_id)
            assert budget.usage()["paused_until"] is not None
            budget.forget()

    # The software answers again: the same button loads the list.
    browser.post_form(f"{page}/recharger", {}, page=page, htmx=True)
    run_worker_burst(job_app, PROVIDER_MAX_RETRIES=str(RETRIES))
    assert _customers_sync(job_app, integration_id).status is SyncStatus.SUCCEEDED


@pytest.mark.parametrize("kind", ["malformed", "drop"])
def test_a_list_read_cut_short_once_is_read_again_and_loads(job_app, live, connected_dossier, kind):
    """A truncated JSON answer (or a connection closed mid-answer) during a refresh is transient."""
    browser, dossier_id, integration_id = connected_dossier
    controls_api.post(f"{_controls(live)}/faults", json={"count": 1, "kind": kind}, timeout=10)
    page = f"/dossiers/{dossier_id}/listes/customers"
    browser.post_form(f"{page}/recharger", {}, page=page, htmx=True)
    run_worker_burst(job_app, PROVIDER_MAX_RETRIES=str(RETRIES))
    assert _faults_left(live) == 0  # the fault was met
    sync = _customers_sync(job_app, integration_id)
    assert sync.status is SyncStatus.SUCCEEDED, sync.last_error
    assert sizes(job_app, integration_id) == EXPECTED_SIZES


def test_a_software_slower_than_the_timeout_is_given_up_on_in_bounded_time(job_app, live, connected_dossier):
    browser, dossier_id, integration_id = connected_dossier
    controls_api.post(f"{_controls(live)}/settings", json={"latency_ms": 2500}, timeout=10)
    try:
        page = f"/dossiers/{dossier_id}/listes/customers"
        browser.post_form(f"{page}/recharger", {}, page=page, htmx=True)
        run_worker_burst(job_app, PROVIDER_TIMEOUT="1", PROVIDER_MAX_RETRIES="1")
    finally:
        controls_api.post(f"{_controls(live)}/settings", json={"latency_ms": 0}, timeout=10)
    sync = _customers_sync(job_app, integration_id)
    assert sync.status is SyncStatus.FAILED
    assert sync.last_error == "Le logiciel comptable ne répond pas. Réessayez dans quelques minutes."
    with job_app.app_context():
        assert db.session.get(Integration, integration_id).status is IntegrationStatus.CONNECTED
    assert sizes(job_app, integration_id) == EXPECTED_SIZES


def test_a_publication_whose_connection_is_closed_is_retried_and_makes_one_invoice(
    job_app, live, dossier_with_rule
):
    browser, dossier_id, integration_id, ids = dossier_with_rule
    document_id = new_invoice(browser, dossier_id, ids)
    controls_api.post(f"{_controls(live)}/faults", json={"count": 2, "kind": "drop"}, timeout=10)
    click_publish(browser, dossier_id, document_id)
    run_worker_burst(job_app, PROVIDER_MAX_RETRIES=str(RETRIES))

    assert _faults_left(live) == 0
    document = status_of(job_app, document_id)
    assert document.status is DocumentStatus.PUBLISHED
    invoices = upstream_invoices(live)
    assert len(invoices) == 1 and document.upstream_id == str(invoices[0]["id"])
    with job_app.app_context():
        assert db.session.get(Integration, integration_id).status is IntegrationStatus.CONNECTED
