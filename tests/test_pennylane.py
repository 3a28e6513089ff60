"""Contract tests of the Pennylane connector against the sandbox's Pennylane dialect.

Pennylane's description could not be brought in (../shared/specs/README.md): the tests check the
wire facts its documentation states (cursor pages of at most 100, filters as JSON, changelogs,
amounts as strings that add up, the PDF imported once, errors as {error, status}, 429 in plain text
with retry-after), as seen by a recorder in front of the server.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from urllib.parse import parse_qs

import pytest
from sqlalchemy import func, select

from sandbox.dialects.pennylane import company_number
from sandbox.models import SandboxItem, SandboxToken
from sandbox.seed import ACCOUNTS, CUSTOMERS, PAYMENT_METHODS, SUPPLIERS, TRACKING
from tests.conftest import plain_spaces, run_worker_burst, unescaped
from tests.http_user import COMPANY, Browser, connected, controls_api
from tests.test_publishing import click_publish, status_of, upstream_invoices
from tests.vendor_helpers import active_sizes, new_bill, refresh_all
from tests.vendor_specs import Route, SpecRecorder
from webapp.connectors.catalogue import get_connector
from webapp.extensions import db
from webapp.models import Document, DocumentStatus, Integration, IntegrationStatus, ListItem, ListKind
from webapp.services.integrations import LiveTokens, load_tokens

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture
def wire(job_app) -> SpecRecorder:
    recorder = SpecRecorder(
        job_app.wsgi_app, [Route("/sandbox/pennylane/api/external/v2", "https://app.pennylane.com", "", "")]
    )
    job_app.wsgi_app = recorder
    yield recorder
    for exchange in recorder.exchanges:
        limit = parse_qs(exchange.environ["QUERY_STRING"]).get("limit")
        if limit and "/changelogs/" not in exchange.path:
            assert 1 <= int(limit[0]) <= 100, exchange.path  # Pennylane pages hold 1 to 100 items


@pytest.fixture
def pennylane(job_app, wire, bookkeeper, dossier_id) -> tuple[Browser, int, int]:
    job_app.config["LIST_PAGE_SIZE"] = 10
    integration_id = connected(job_app, bookkeeper, dossier_id, software="pennylane")
    return bookkeeper, dossier_id, integration_id


def test_connect_and_read_every_list_in_cursor_pages(job_app, live, wire, pennylane):
    _, _, integration_id = pennylane
    with job_app.app_context():
        integration = db.session.get(Integration, integration_id)
        assert (integration.software, integration.company_id, integration.company_name) == (
            "pennylane",
            str(company_number(COMPANY)),
            "Boulangerie Martin SARL",
        )
    assert active_sizes(job_app, integration_id) == {
        ListKind.ACCOUNTS: len(ACCOUNTS),
        ListKind.SUPPLIERS: len(SUPPLIERS),
        ListKind.CUSTOMERS: len(CUSTOMERS),
        ListKind.TAX_RATES: 6,  # Pennylane's own French VAT codes
        ListKind.TRACKING_CATEGORIES: len(TRACKING),
        ListKind.PAYMENT_METHODS: len(PAYMENT_METHODS),
    }
    supplier_pages = [e for e in wire.exchanges if e.path.endswith("/suppliers") and e.method == "GET"]
    assert len(supplier_pages) == 3
    cursors = [parse_qs(e.environ["QUERY_STRING"]).get("cursor") for e in supplier_pages]
    assert cursors[0] is None and cursors[1] and cursors[2]
    with job_app.app_context():
        rates = dict(
            db.session.execute(
                select(ListItem.external_id, ListItem.rate).where(ListItem.kind == ListKind.TAX_RATES)
            ).all()
        )
        assert rates["FR_200"] == "20" and rates["FR_55"] == "5.5" and rates["exempt"] == "0"
        edf = db.session.scalar(select(ListItem).where(ListItem.name == "EDF Entreprises"))
        assert edf.vat_number.startswith("FR") and len(edf.siren) == 9
        names = set(
            db.session.scalars(select(ListItem.name).where(ListItem.kind == ListKind.TRACKING_CATEGORIES))
        )
        assert "Établissement : Magasin centre-ville" in names


def test_incremental_read_from_the_changelog_and_a_deleted_supplier(job_app, live, wire, pennylane):
    _, _, integration_id = pennylane
    time.sleep(1.1)
    since = datetime.now(UTC)
    time.sleep(1.1)
    controls_api.post(
        f"{live.url}/sandbox/controls/api/companies/{COMPANY}/items/sup-000003",
        json={"name": "Metro France SAS"},
        timeout=10,
    ).raise_for_status()
    controls_api.post(
        f"{live.url}/sandbox/controls/api/companies/{COMPANY}/items/sup-000002",
        json={"active": False},
        timeout=10,
    ).raise_for_status()
    with job_app.test_request_context(base_url=live.url), job_app.app_context():
        changed = [
            i
            for page in get_connector("pennylane").iter_pages(
                LiveTokens(integration_id), ListKind.SUPPLIERS, since=since
            )
            for i in page
        ]
    assert [i.name for i in changed] == ["Metro France SAS"]
    (log,) = [e for e in wire.exchanges if "/changelogs/suppliers" in e.path]
    assert "start_date=" in log.environ["QUERY_STRING"]
    fetched = [
        e for e in wire.exchanges if e.path.endswith("/suppliers") and "filter=" in e.environ["QUERY_STRING"]
    ]
    assert json.loads(parse_qs(fetched[-1].environ["QUERY_STRING"])["filter"][0])[0]["operator"] == "in"
    refresh_all(job_app, pennylane)
    with job_app.app_context():
        orange = db.session.scalar(select(ListItem).where(ListItem.name == "Orange Business"))
        assert orange.active is False  # deleted in Pennylane: kept here, inactive


def test_expired_token_refreshed_and_rotated_then_invalid_grant_expiree(job_app, live, wire, pennylane):
    browser, dossier_id, integration_id = pennylane
    with job_app.app_context():
        token = db.session.scalar(select(SandboxToken).order_by(SandboxToken.id.desc()))
        token.issued_at = time.time() - 90_000
        old_refresh = load_tokens(db.session.get(Integration, integration_id)).refresh_token
        db.session.commit()
    with job_app.test_request_context(base_url=live.url), job_app.app_context():
        pages = list(
            get_connector("pennylane").iter_pages(LiveTokens(integration_id), ListKind.PAYMENT_METHODS)
        )
        assert len(pages[0]) == len(PAYMENT_METHODS)
        db.session.expire_all()
        assert load_tokens(db.session.get(Integration, integration_id)).refresh_token != old_refresh
    unauthorized = [e for e in wire.exchanges if e.status == 401]
    assert unauthorized and json.loads(unauthorized[0].answer) == {
        "error": "The access token is invalid",
        "status": 401,
    }

    controls_api.post(f"{live.url}/sandbox/controls/api/companies/{COMPANY}/expire", json={}, timeout=10)
    refresh_all(job_app, pennylane)
    with job_app.app_context():
        assert db.session.get(Integration, integration_id).status is IntegrationStatus.EXPIRED
    assert "L'intégration avec Pennylane a expiré." in unescaped(
        browser.get(f"/dossiers/{dossier_id}/documents").text
    )


def test_rate_limited_in_plain_text_waits_and_succeeds(job_app, live, wire, pennylane):
    _, _, integration_id = pennylane
    controls_api.post(
        f"{live.url}/sandbox/controls/api/faults",
        json={"count": 1, "status": 429, "retry_after": 1},
        timeout=10,
    )
    with job_app.test_request_context(base_url=live.url), job_app.app_context():
        pages = list(
            get_connector("pennylane").iter_pages(LiveTokens(integration_id), ListKind.PAYMENT_METHODS)
        )
    assert len(pages[0]) == len(PAYMENT_METHODS)
    (limited,) = [e for e in wire.exchanges if e.status == 429]
    headers = {k.lower(): v for k, v in limited.headers}
    assert headers["retry-after"] == "1" and headers["ratelimit-remaining"] == "0"
    assert limited.answer == b"Rate limit exceeded. Please retry in 1 seconds."


def test_a_supplier_invoice_is_imported_once_with_its_pdf(job_app, live, wire, pennylane):
    browser, dossier_id, _ = pennylane
    document_id = new_bill(browser, dossier_id, job_app, tax_code="FR_200", number="P-001", pdf=PDF)
    click_publish(browser, dossier_id, document_id)
    run_worker_burst(job_app)
    document = status_of(job_app, document_id)
    assert document.status is DocumentStatus.PUBLISHED, document.failure_reason
    (invoice,) = upstream_invoices(live)
    sent = invoice["payload"]
    with job_app.app_context():
        account = db.session.scalar(
            select(SandboxItem.id).where(
                SandboxItem.company_id == COMPANY, SandboxItem.external_id == "acc-606100"
            )
        )
    assert (sent["currency_amount"], sent["currency_amount_before_tax"], sent["currency_tax"]) == (
        "120.00",
        "100.00",
        "20.00",
    )
    assert sent["invoice_lines"] == [
        {
            "ledger_account_id": account,
            "currency_amount": "120.00",
            "currency_tax": "20.00",
            "vat_rate": "FR_200",
            "label": "Facture P-001",
        }
    ]
    assert sent["external_reference"] == document.idempotency_key
    assert invoice["attachments"][0]["sha256"] == hashlib.sha256(PDF).hexdigest()

    with job_app.test_request_context(base_url=live.url), job_app.app_context():
        from webapp.services.publishing import publish

        db.session.get(Document, document_id).status = DocumentStatus.READY
        db.session.commit()
        publish(document_id)
    assert len(upstream_invoices(live)) == 1
    assert len([e for e in wire.exchanges if e.path.endswith("/supplier_invoices/import")]) == 1


def test_without_pdf_pennylane_cannot_import_and_says_so(job_app, live, wire, pennylane):
    browser, dossier_id, _ = pennylane
    document_id = new_bill(browser, dossier_id, job_app, tax_code="FR_200", number="P-002")
    click_publish(browser, dossier_id, document_id)
    run_worker_burst(job_app)
    document = status_of(job_app, document_id)
    assert document.status is DocumentStatus.FAILED
    assert (
        plain_spaces(document.failure_reason)
        == "Pennylane exige le PDF de la facture pour l'importer : ajoutez-le avant de publier."
    )


def test_a_disabled_account_is_refused_in_french_with_pennylanes_words(job_app, live, wire, pennylane):
    browser, dossier_id, _ = pennylane
    controls_api.post(
        f"{live.url}/sandbox/controls/api/companies/{COMPANY}/items/acc-606100",
        json={"active": False},
        timeout=10,
    ).raise_for_status()
    document_id = new_bill(browser, dossier_id, job_app, tax_code="FR_200", number="P-003", pdf=PDF)
    click_publish(browser, dossier_id, document_id)
    run_worker_burst(job_app)
    document = status_of(job_app, document_id)
    assert document.status is DocumentStatus.FAILED
    assert (
        plain_spaces(document.failure_reason)
        == "Pennylane a refusé la demande : Ledger account 606100 is disabled"
    )
    assert '"status":422' in document.failure_detail.replace(" ", "")


def test_a_new_supplier_created_since_the_last_load_is_found_in_the_changelog(job_app, live, wire, pennylane):
    browser, dossier_id, _ = pennylane
    created = controls_api.post(
        f"{live.url}/sandbox/controls/api/companies/{COMPANY}/suppliers",
        json={"name": "Fournil Dupont", "siren": "303265045"},
        timeout=10,
    )
    created.raise_for_status()
    with job_app.app_context():
        account = db.session.scalar(
            select(ListItem.id).where(ListItem.code == "606400", ListItem.kind == ListKind.ACCOUNTS)
        )
        tax = db.session.scalar(select(ListItem.id).where(ListItem.external_id == "FR_200"))
    settings = f"/dossiers/{dossier_id}/parametres/codage"
    token = (
        browser.get(settings).text.split('name="achats-csrf_token" type="hidden" value="')[1].split('"')[0]
    )
    browser.http.post(
        browser.base + f"{settings}/achats",
        data={"achats-csrf_token": token, "achats-account_id": account, "achats-tax_rate_id": tax},
        timeout=30,
    )
    url = f"/dossiers/{dossier_id}/documents/nouvelle/achat"
    form = {
        "party_name": "FOURNIL DUPONT SARL",
        "party_siren": "303 265 045",
        "number": "P-004",
        "issue_date": "2026-11-02",
        "amount_ht": "100,00",
        "amount_tva": "20,00",
        "amount_ttc": "120,00",
        "currency": "EUR",
    }
    response = browser.post_form(url, form, page=url, files={"pdf": ("P-004.pdf", PDF, "application/pdf")})
    document_id = int(response.text.split('id="document-')[1].split('"')[0])
    click_publish(browser, dossier_id, document_id)
    run_worker_burst(job_app)
    assert status_of(job_app, document_id).status is DocumentStatus.PUBLISHED
    with job_app.app_context():
        assert db.session.scalar(select(func.count()).where(SandboxItem.name.ilike("fournil dupont%"))) == 1
    assert not [e for e in wire.exchanges if e.method == "POST" and e.path.endswith("/suppliers")]
    assert [e for e in wire.exchanges if "/changelogs/suppliers" in e.path]
