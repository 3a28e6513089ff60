"""Publishing to the sandbox with real workers: once upstream, failures in French, expiry, republish."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from tests.conftest import plain_spaces, run_worker_burst, unescaped
from tests.http_user import COMPANY, Browser, controls_api
from tests.test_reconnect import expire, reconnect
from webapp.extensions import db
from webapp.models import Document, DocumentStatus, Event, JobRun, Rule

# Every write these flows make keeps the dossiers' lines of 'Mes dossiers' true.
pytestmark = pytest.mark.usefixtures("summaries_stay_true")


def new_invoice(browser: Browser, dossier_id: int, ids: dict, number: str = "F-001") -> int:
    url = f"/dossiers/{dossier_id}/documents/nouvelle/achat"
    form = {
        "party_id": ids["edf"],
        "number": number,
        "issue_date": "2026-11-02",
        "amount_ht": "100,00",
        "amount_tva": "20,00",
        "amount_ttc": "120,00",
        "currency": "EUR",
    }
    response = browser.post_form(url, form, page=url)
    assert response.status_code == 200 and "ajoutée : Prêt" in unescaped(response.text)
    return int(response.text.split('id="document-')[1].split('"')[0])


def upstream_invoices(live) -> list[dict]:
    return controls_api.get(
        f"{live.url}/sandbox/controls/api/companies/{COMPANY}/invoices", timeout=10
    ).json()["items"]


def status_of(job_app, document_id: int) -> Document:
    with job_app.app_context():
        document = db.session.get(Document, document_id)
        db.session.expunge(document)
        return document


def click_publish(browser: Browser, dossier_id: int, document_id: int) -> requests.Response:
    page = f"/dossiers/{dossier_id}/documents"
    return browser.post_form(f"{page}/{document_id}/publier", {}, page=page, htmx=True)


def test_a_double_click_and_a_retry_still_make_one_invoice_upstream(job_app, live, dossier_with_rule):
    browser, dossier_id, _, ids = dossier_with_rule
    document_id = new_invoice(browser, dossier_id, ids)
    first = click_publish(browser, dossier_id, document_id)
    assert "En cours" in unescaped(first.text) and "hx-get" in first.text
    click_publish(browser, dossier_id, document_id)  # the second click of a double click
    with job_app.app_context():
        assert db.session.query(JobRun).filter(JobRun.kind == "publish").count() == 1
    run_worker_burst(job_app)
    document = status_of(job_app, document_id)
    assert document.status is DocumentStatus.PUBLISHED and document.upstream_id
    invoices = upstream_invoices(live)
    assert len(invoices) == 1 and invoices[0]["idempotency_key"] == document.idempotency_key
    with job_app.app_context():  # the timeline says who clicked « Publier », not « automatique »
        published = db.session.scalar(select(Event).where(Event.kind == "document.published"))
        assert (
            published.actor_id is not None
            and published.actor_id == db.session.get(JobRun, published.job_run_id).owner_id
        )
    assert (
        invoices[0]["payload"]["account_id"] == "acc-606100"
        and invoices[0]["payload"]["amount_total"] == "120.00"
    )

    # A retry after a timeout (the job sent, the answer was lost): the software keeps one invoice.
    with job_app.app_context():
        from webapp.services.publishing import publish

        db.session.get(Document, document_id).status = DocumentStatus.READY
        db.session.commit()
        publish(document_id)
    assert len(upstream_invoices(live)) == 1
    row = browser.get(
        f"/dossiers/{dossier_id}/documents/{document_id}/ligne?suivi=1", headers={"HX-Request": "true"}
    )
    assert "Publié" in unescaped(row.text)


def test_an_account_archived_upstream_fails_with_both_messages(job_app, live, dossier_with_rule):
    browser, dossier_id, _, ids = dossier_with_rule
    controls_api.post(
        f"{live.url}/sandbox/controls/api/companies/{COMPANY}/items/acc-606100",
        json={"active": False},
        timeout=10,
    )
    document_id = new_invoice(browser, dossier_id, ids)
    click_publish(browser, dossier_id, document_id)
    run_worker_burst(job_app)
    document = status_of(job_app, document_id)
    assert document.status is DocumentStatus.FAILED
    assert (
        plain_spaces(document.failure_reason)
        == "Le logiciel comptable a refusé la demande : 606100 is archived"
    )
    assert "606100 is archived" in document.failure_detail
    listed = unescaped(browser.get(f"/dossiers/{dossier_id}/documents?statut=echec").text)
    assert "Échec" in listed and "Réponse du logiciel" in listed
    assert upstream_invoices(live) == []


def test_expired_integration_fails_at_once_then_republish_after_reconnecting(
    job_app, live, dossier_with_rule
):
    browser, dossier_id, integration_id, ids = dossier_with_rule
    document_id = new_invoice(browser, dossier_id, ids)
    expire(job_app, live, browser, dossier_id, integration_id)

    response = click_publish(browser, dossier_id, document_id)
    assert "Intégration expirée" in unescaped(response.text)
    with job_app.app_context():
        assert (
            db.session.query(JobRun).filter(JobRun.kind == "publish").count() == 0
        )  # the software is not called
    assert status_of(job_app, document_id).failure_reason == "Intégration expirée"

    reconnect(browser, dossier_id, integration_id)
    page = unescaped(browser.get(f"/dossiers/{dossier_id}/integrations/{integration_id}").text)
    assert "Republier les factures en échec (1)" in page
    listed = unescaped(browser.get(f"/dossiers/{dossier_id}/documents").text)
    assert "L'intégration a été reconnectée : la facture peut être publiée à nouveau." in listed

    url = f"/dossiers/{dossier_id}/integrations/{integration_id}"
    done = browser.post_form(f"{url}/republier", {}, page=url)
    assert "Publication relancée pour 1 facture." in unescaped(done.text)
    run_worker_burst(job_app)
    assert status_of(job_app, document_id).status is DocumentStatus.PUBLISHED
    assert len(upstream_invoices(live)) == 1


def test_a_rule_with_publication_automatique_publishes_ready_invoices(job_app, live, dossier_with_rule):
    browser, dossier_id, _, ids = dossier_with_rule
    with job_app.app_context():
        db.session.scalar(select(Rule)).auto_publish = True
        db.session.commit()
    url = f"/dossiers/{dossier_id}/documents/nouvelle/achat"
    form = {
        "party_id": ids["edf"],
        "number": "F-AUTO",
        "issue_date": "2026-11-02",
        "amount_ht": "100,00",
        "amount_tva": "20,00",
        "amount_ttc": "120,00",
        "currency": "EUR",
    }
    response = browser.post_form(url, form, page=url)
    assert (
        "Facture F-AUTO ajoutée : Prêt. La règle demande la publication automatique, elle est en cours."
        in unescaped(response.text)
    )
    document_id = int(response.text.split('id="document-')[1].split('"')[0])
    assert status_of(job_app, document_id).status is DocumentStatus.IN_PROGRESS
    run_worker_burst(job_app)
    assert status_of(job_app, document_id).status is DocumentStatus.PUBLISHED
    assert [i["payload"]["number"] for i in upstream_invoices(live)] == ["F-AUTO"]
