"""Contract tests of the QuickBooks Online connector against the sandbox's QuickBooks dialect.

QuickBooks publishes no machine-readable description: the tests check the wire facts its
documentation states (realmId on the callback and in every path, the query language, minorversion,
requestid, Fault bodies, 429 without Retry-After), as seen by a recorder in front of the server.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from urllib.parse import parse_qs

import pytest
from sqlalchemy import select

from sandbox.dialects.quickbooks import realm_of
from sandbox.models import SandboxItem, SandboxToken
from sandbox.seed import ACCOUNTS, CUSTOMERS, PAYMENT_METHODS, SUPPLIERS, TAX_RATES, TRACKING
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
REALM = realm_of(COMPANY)


@pytest.fixture
def wire(job_app) -> SpecRecorder:
    """Records the calls under /sandbox/quickbooks (no description to check them against)."""
    recorder = SpecRecorder(
        job_app.wsgi_app, [Route("/sandbox/quickbooks", "https://quickbooks.api.intuit.com", "", "")]
    )
    job_app.wsgi_app = recorder
    yield recorder
    for exchange in recorder.exchanges:
        if "/v3/company/" in exchange.path:
            assert exchange.path.startswith(f"/sandbox/quickbooks/v3/company/{REALM}/"), exchange.path
            assert parse_qs(exchange.environ["QUERY_STRING"]).get("minorversion") == ["75"], exchange.path


@pytest.fixture
def qbo(job_app, wire, bookkeeper, dossier_id) -> tuple[Browser, int, int]:
    job_app.config["LIST_PAGE_SIZE"] = 10
    job_app.config["QUICKBOOKS_THROTTLE_WAIT"] = 1.0
    integration_id = connected(job_app, bookkeeper, dossier_id, software="quickbooks")
    return bookkeeper, dossier_id, integration_id


def queries(wire, entity: str) -> list[str]:
    return [
        parse_qs(e.environ["QUERY_STRING"])["query"][0]
        for e in wire.exchanges
        if e.path.endswith("/query")
        and f"FROM {entity} " in parse_qs(e.environ["QUERY_STRING"])["query"][0] + " "
    ]


def test_realm_id_from_the_callback_and_every_list_through_the_query_language(job_app, live, wire, qbo):
    _, _, integration_id = qbo
    with job_app.app_context():
        integration = db.session.get(Integration, integration_id)
        assert (integration.software, integration.company_id, integration.company_name) == (
            "quickbooks",
            REALM,
            "Boulangerie Martin SARL",
        )
        assert load_tokens(integration).extra["realm_id"] == REALM
    assert active_sizes(job_app, integration_id) == {
        ListKind.ACCOUNTS: len(ACCOUNTS),
        ListKind.SUPPLIERS: len(SUPPLIERS),
        ListKind.CUSTOMERS: len(CUSTOMERS),
        ListKind.TAX_RATES: len(TAX_RATES),
        ListKind.TRACKING_CATEGORIES: len(TRACKING),
        ListKind.PAYMENT_METHODS: len(PAYMENT_METHODS),
    }
    vendor_queries = queries(wire, "Vendor")
    assert vendor_queries[:3] == [
        f"SELECT * FROM Vendor WHERE Active IN (true, false) STARTPOSITION {start} MAXRESULTS 10"  # noqa: S608
        for start in (1, 11, 21)
    ]
    with job_app.app_context():
        account = db.session.scalar(
            select(ListItem).where(ListItem.kind == ListKind.ACCOUNTS, ListItem.code == "606100")
        )
        assert account.external_id.isdigit() and account.extras["type"] == "expense"
        tax = db.session.scalar(
            select(ListItem).where(ListItem.kind == ListKind.TAX_RATES, ListItem.code == "TVA55")
        )
        assert tax.rate == "5.5" and tax.name == "TVA 5,5 %"
        names = set(
            db.session.scalars(select(ListItem.name).where(ListItem.kind == ListKind.TRACKING_CATEGORIES))
        )
        assert "Établissement : Magasin centre-ville" in names


def test_incremental_read_and_inactive_items(job_app, live, wire, qbo):
    _, _, integration_id = qbo
    time.sleep(1.1)
    since = datetime.now(UTC)
    time.sleep(1.1)
    for external_id in ("sup-000002", "tax-TVA21"):
        controls_api.post(
            f"{live.url}/sandbox/controls/api/companies/{COMPANY}/items/{external_id}",
            json={"active": False},
            timeout=10,
        ).raise_for_status()
    with job_app.test_request_context(base_url=live.url), job_app.app_context():
        changed = [
            i
            for page in get_connector("quickbooks").iter_pages(
                LiveTokens(integration_id), ListKind.SUPPLIERS, since=since
            )
            for i in page
        ]
    assert [(i.name, i.active) for i in changed] == [("Orange Business", False)]
    assert "MetaData.LastUpdatedTime > '" in queries(wire, "Vendor")[-1]
    refresh_all(job_app, qbo)
    with job_app.app_context():
        inactive = set(
            db.session.scalars(
                select(ListItem.name).where(
                    ListItem.integration_id == integration_id, ListItem.active.is_(False)
                )
            )
        )
    assert {"Orange Business", "TVA 2,1 %"} <= inactive


def test_expired_access_token_is_refreshed_and_the_new_refresh_token_stored(job_app, live, wire, qbo):
    _, _, integration_id = qbo
    with job_app.app_context():
        token = db.session.scalar(select(SandboxToken).order_by(SandboxToken.id.desc()))
        token.issued_at = time.time() - 7200
        old_refresh = load_tokens(db.session.get(Integration, integration_id)).refresh_token
        db.session.commit()
    with job_app.test_request_context(base_url=live.url), job_app.app_context():
        pages = list(
            get_connector("quickbooks").iter_pages(LiveTokens(integration_id), ListKind.TRACKING_CATEGORIES)
        )
        assert len(pages[0]) == len(TRACKING)
        db.session.expire_all()
        stored = load_tokens(db.session.get(Integration, integration_id))
        assert stored.refresh_token != old_refresh and stored.extra["realm_id"] == REALM
    unauthorized = [e for e in wire.exchanges if e.status == 401]
    assert unauthorized and json.loads(unauthorized[0].answer)["fault"]["error"][0]["code"] == "3200"


def test_invalid_grant_makes_the_integration_expiree(job_app, live, wire, qbo):
    browser, dossier_id, integration_id = qbo
    controls_api.post(f"{live.url}/sandbox/controls/api/companies/{COMPANY}/expire", json={}, timeout=10)
    refresh_all(job_app, qbo)
    with job_app.app_context():
        assert db.session.get(Integration, integration_id).status is IntegrationStatus.EXPIRED
    assert "L'intégration avec QuickBooks Online a expiré." in unescaped(
        browser.get(f"/dossiers/{dossier_id}/documents").text
    )


def test_throttled_without_retry_after_waits_as_configured_and_succeeds(job_app, live, wire, qbo):
    _, _, integration_id = qbo
    controls_api.post(f"{live.url}/sandbox/controls/api/faults", json={"count": 1, "status": 429}, timeout=10)
    started = time.monotonic()
    with job_app.test_request_context(base_url=live.url), job_app.app_context():
        pages = list(
            get_connector("quickbooks").iter_pages(LiveTokens(integration_id), ListKind.TRACKING_CATEGORIES)
        )
    assert len(pages[0]) == len(TRACKING) and time.monotonic() - started >= 1.0
    (limited,) = [e for e in wire.exchanges if e.status == 429]
    assert "Retry-After" not in dict(limited.headers)
    assert json.loads(limited.answer)["Fault"]["Error"][0]["code"] == "3001"


def test_a_bill_is_published_once_with_its_pdf(job_app, live, wire, qbo):
    browser, dossier_id, _ = qbo
    document_id = new_bill(browser, dossier_id, job_app, tax_code="TVA20", number="Q-001", pdf=PDF)
    click_publish(browser, dossier_id, document_id)
    run_worker_burst(job_app)
    document = status_of(job_app, document_id)
    assert document.status is DocumentStatus.PUBLISHED, document.failure_reason
    (invoice,) = upstream_invoices(live)
    sent = invoice["payload"]
    with job_app.app_context():
        ids = {
            row.external_id: str(row.id)
            for row in db.session.scalars(
                select(SandboxItem).where(
                    SandboxItem.company_id == COMPANY,
                    SandboxItem.external_id.in_(("acc-606100", "tax-TVA20", "sup-000001")),
                )
            )
        }
    line = sent["Line"][0]
    assert sent["DocNumber"] == "Q-001" and sent["VendorRef"] == {"value": ids["sup-000001"]}
    assert line["DetailType"] == "AccountBasedExpenseLineDetail" and line["Amount"] == 100.0
    assert line["AccountBasedExpenseLineDetail"]["AccountRef"] == {"value": ids["acc-606100"]}
    assert line["AccountBasedExpenseLineDetail"]["TaxCodeRef"] == {"value": ids["tax-TVA20"]}
    assert invoice["attachments"][0]["sha256"] == hashlib.sha256(PDF).hexdigest()
    (created,) = [e for e in wire.exchanges if e.method == "POST" and e.path.endswith("/bill")]
    assert parse_qs(created.environ["QUERY_STRING"])["requestid"] == [document.idempotency_key]
    upload = [e for e in wire.exchanges if e.path.endswith("/upload")][0]
    assert b'name="file_metadata_01"' in upload.body and b'name="file_content_01"' in upload.body

    with job_app.test_request_context(base_url=live.url), job_app.app_context():
        from webapp.services.publishing import publish

        db.session.get(Document, document_id).status = DocumentStatus.READY
        db.session.commit()
        publish(document_id)
    (invoice,) = upstream_invoices(live)
    assert len(invoice["attachments"]) == 1
    assert len([e for e in wire.exchanges if e.method == "POST" and e.path.endswith("/bill")]) == 1


def test_a_rejected_reference_is_shown_in_french_with_intuits_words(job_app, live, wire, qbo):
    browser, dossier_id, _ = qbo
    controls_api.post(
        f"{live.url}/sandbox/controls/api/companies/{COMPANY}/items/acc-606100",
        json={"active": False},
        timeout=10,
    ).raise_for_status()
    document_id = new_bill(browser, dossier_id, job_app, tax_code="TVA20", number="Q-002")
    click_publish(browser, dossier_id, document_id)
    run_worker_burst(job_app)
    document = status_of(job_app, document_id)
    assert document.status is DocumentStatus.FAILED
    assert plain_spaces(document.failure_reason).startswith(
        "QuickBooks a refusé la demande : Invalid Reference Id : Accounts element id"
    )
    assert document.failure_reason.endswith("(AccountRef)")
    assert '"code":"2500"' in document.failure_detail.replace(" ", "")


def test_a_new_supplier_is_looked_for_by_name_then_created_once(job_app, live, wire, qbo):
    browser, dossier_id, _ = qbo
    with job_app.app_context():
        account = db.session.scalar(
            select(ListItem.id).where(ListItem.code == "606400", ListItem.kind == ListKind.ACCOUNTS)
        )
        tax = db.session.scalar(
            select(ListItem.id).where(ListItem.code == "TVA20", ListItem.kind == ListKind.TAX_RATES)
        )
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
        "party_name": "L'Atelier and Co",
        "number": "Q-003",
        "issue_date": "2026-11-02",
        "amount_ht": "100,00",
        "amount_tva": "20,00",
        "amount_ttc": "120,00",
        "currency": "EUR",
    }
    response = browser.post_form(url, form, page=url)
    document_id = int(response.text.split('id="document-')[1].split('"')[0])
    click_publish(browser, dossier_id, document_id)
    run_worker_burst(job_app)
    assert status_of(job_app, document_id).status is DocumentStatus.PUBLISHED
    with job_app.app_context():
        created = db.session.scalars(select(SandboxItem).where(SandboxItem.name == "L'Atelier and Co")).all()
        assert [c.kind for c in created] == ["suppliers"]
    assert any("DisplayName LIKE '%Atelier%'" in q for q in queries(wire, "Vendor"))
    assert len([e for e in wire.exchanges if e.method == "POST" and e.path.endswith("/vendor")]) == 1


def new_sale(browser: Browser, dossier_id: int, job_app, *, number: str) -> int:
    with job_app.app_context():
        customer = db.session.scalar(
            select(ListItem.id).where(ListItem.kind == ListKind.CUSTOMERS).order_by(ListItem.id)
        )
        account = db.session.scalar(
            select(ListItem.id).where(ListItem.code == "706000", ListItem.kind == ListKind.ACCOUNTS)
        )
        tax = db.session.scalar(
            select(ListItem.id).where(ListItem.code == "TVA20", ListItem.kind == ListKind.TAX_RATES)
        )
    url = f"/dossiers/{dossier_id}/documents/nouvelle/vente"
    form = {
        "party_id": customer,
        "number": number,
        "issue_date": "2026-11-03",
        "amount_ht": "500,00",
        "amount_tva": "100,00",
        "amount_ttc": "600,00",
        "currency": "EUR",
    }
    response = browser.post_form(url, form, page=url)
    document_id = int(response.text.split('id="document-')[1].split('"')[0])
    show = f"/dossiers/{dossier_id}/documents/{document_id}"
    browser.post_form(show, {"party_id": customer, "account_id": account, "tax_rate_id": tax}, page=show)
    return document_id


def test_sales_invoices_go_through_one_service_item_per_income_account(job_app, live, wire, qbo):
    browser, dossier_id, _ = qbo
    first = new_sale(browser, dossier_id, job_app, number="V-001")
    second = new_sale(browser, dossier_id, job_app, number="V-002")
    for document_id in (first, second):
        click_publish(browser, dossier_id, document_id)
    run_worker_burst(job_app)
    for document_id in (first, second):
        document = status_of(job_app, document_id)
        assert document.status is DocumentStatus.PUBLISHED, document.failure_reason
    with job_app.app_context():
        (item,) = db.session.scalars(
            select(SandboxItem).where(SandboxItem.company_id == COMPANY, SandboxItem.kind == "qbo_items")
        ).all()
        income = db.session.scalar(
            select(SandboxItem.id).where(
                SandboxItem.company_id == COMPANY, SandboxItem.external_id == "acc-706000"
            )
        )
    assert item.name == "Raccord 706000" and item.extras["income_account"] == str(income)
    invoices = upstream_invoices(live)
    assert [i["payload"]["DocNumber"] for i in invoices] == ["V-001", "V-002"]
    line = invoices[0]["payload"]["Line"][0]
    assert line["DetailType"] == "SalesItemLineDetail" and line["SalesItemLineDetail"]["ItemRef"] == {
        "value": str(item.id)
    }
    assert line["Amount"] == 500.0 and invoices[0]["payload"]["TxnTaxDetail"] == {"TotalTax": 100.0}
