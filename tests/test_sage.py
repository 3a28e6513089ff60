"""Contract tests of the Sage connector against the sandbox's Sage dialect, every call checked against
Sage's published description (sage-accounting-v3.1-swagger.json): real HTTP, real RQ workers."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from sandbox.dialects import tenant_guid
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


@pytest.fixture
def spec(job_app) -> SpecRecorder:
    # /businesses belongs to Sage's core API, not to this description: it is left out of the check.
    recorder = SpecRecorder(
        job_app.wsgi_app,
        [
            Route(
                "/sandbox/sage/v3.1",
                "https://api.accounting.sage.com",
                "/v3.1",
                "sage-accounting-v3.1-swagger.json",
            )
        ],
    )
    job_app.wsgi_app = recorder
    yield recorder
    checked = [e for e in recorder.exchanges if not e.path.endswith("/businesses")]
    recorder.exchanges = checked
    assert recorder.problems() == []


@pytest.fixture
def sage(job_app, spec, bookkeeper, dossier_id) -> tuple[Browser, int, int]:
    job_app.config["LIST_PAGE_SIZE"] = 10  # several pages
    integration_id = connected(job_app, bookkeeper, dossier_id, software="sage")
    return bookkeeper, dossier_id, integration_id


def test_connect_and_read_every_list_in_pages(job_app, live, spec, sage):
    browser, dossier_id, integration_id = sage
    with job_app.app_context():
        integration = db.session.get(Integration, integration_id)
        assert (integration.software, integration.company_id, integration.company_name) == (
            "sage",
            tenant_guid(COMPANY),
            "Boulangerie Martin SARL",
        )
        assert load_tokens(integration).extra["business_id"] == tenant_guid(COMPANY)
        # Sage's access tokens live 5 minutes: loading six lists needed no renewal, not one per call.
        assert load_tokens(integration).extra["lifetime"] == 300
        assert db.session.scalar(select(func.count()).select_from(SandboxToken)) == 1
    assert active_sizes(job_app, integration_id) == {
        ListKind.ACCOUNTS: len(ACCOUNTS),
        ListKind.SUPPLIERS: len(SUPPLIERS),
        ListKind.CUSTOMERS: len(CUSTOMERS),
        ListKind.TAX_RATES: len(TAX_RATES),
        ListKind.TRACKING_CATEGORIES: len(TRACKING),
        ListKind.PAYMENT_METHODS: len(PAYMENT_METHODS),
    }
    ledger_pages = spec.calls("GET", "/ledger_accounts")
    assert len(ledger_pages) == -(-len(ACCOUNTS) // 10)  # 47 accounts, 10 a page
    assert all(e.environ.get("HTTP_X_BUSINESS") == tenant_guid(COMPANY) for e in ledger_pages)
    vendors = [
        e for e in spec.calls("GET", "/contacts") if "contact_type_id=VENDOR" in e.environ["QUERY_STRING"]
    ]
    assert len(vendors) == 3
    with job_app.app_context():
        account = db.session.scalar(
            select(ListItem).where(ListItem.kind == ListKind.ACCOUNTS, ListItem.code == "606100")
        )
        assert len(account.external_id) == 36 and account.extras["type"] == "expense"
        edf = db.session.scalar(select(ListItem).where(ListItem.name == "EDF Entreprises"))
        assert edf.vat_number.startswith("FR") and len(edf.siren) == 9
        bank = db.session.scalar(select(ListItem).where(ListItem.kind == ListKind.PAYMENT_METHODS).limit(1))
        assert bank.code.startswith("512") and "iban" not in str(bank.extras).lower()
        names = set(
            db.session.scalars(select(ListItem.name).where(ListItem.kind == ListKind.TRACKING_CATEGORIES))
        )
        assert "Établissement : Magasin centre-ville" in names
        assert db.session.scalar(select(ListItem.rate).where(ListItem.external_id == "TVA55")) == "5.5"


def test_incremental_read_and_inactive_items(job_app, live, spec, sage):
    _, _, integration_id = sage
    time.sleep(1.1)
    since = datetime.now(UTC)
    time.sleep(1.1)
    for external_id in ("sup-000002", "tax-TVA21", "acc-606300"):
        controls_api.post(
            f"{live.url}/sandbox/controls/api/companies/{COMPANY}/items/{external_id}",
            json={"active": False},
            timeout=10,
        ).raise_for_status()
    with job_app.test_request_context(base_url=live.url), job_app.app_context():
        changed = [
            i
            for page in get_connector("sage").iter_pages(
                LiveTokens(integration_id), ListKind.SUPPLIERS, since=since
            )
            for i in page
        ]
        assert [(i.name, i.active) for i in changed] == [("Orange Business", False)]
    assert "updated_or_created_since=" in spec.calls("GET", "/contacts")[-1].environ["QUERY_STRING"]
    refresh_all(job_app, sage)
    with job_app.app_context():
        inactive = set(
            db.session.scalars(
                select(ListItem.name).where(
                    ListItem.integration_id == integration_id, ListItem.active.is_(False)
                )
            )
        )
    assert {"Orange Business", "TVA 2,1 %", "Fournitures d'entretien et de petit équipement"} <= inactive


def test_the_5_minute_token_is_refreshed_and_rotated(job_app, live, spec, sage):
    _, _, integration_id = sage
    with job_app.app_context():
        token = db.session.scalar(select(SandboxToken).order_by(SandboxToken.id.desc()))
        token.issued_at = time.time() - 3600  # expired, unseen by Raccord
        old_refresh = load_tokens(db.session.get(Integration, integration_id)).refresh_token
        db.session.commit()
    with job_app.test_request_context(base_url=live.url), job_app.app_context():
        pages = list(get_connector("sage").iter_pages(LiveTokens(integration_id), ListKind.TAX_RATES))
        assert len(pages[0]) == len(TAX_RATES)
        db.session.expire_all()
        stored = load_tokens(db.session.get(Integration, integration_id))
        assert stored.refresh_token != old_refresh and stored.extra["business_id"] == tenant_guid(COMPANY)
    unauthorized = [e for e in spec.exchanges if e.status == 401]
    assert unauthorized and b'"$dataCode":"Unauthorized"' in unauthorized[0].answer.replace(b" ", b"")


def test_invalid_grant_makes_the_integration_expiree(job_app, live, spec, sage):
    browser, dossier_id, integration_id = sage
    controls_api.post(f"{live.url}/sandbox/controls/api/companies/{COMPANY}/expire", json={}, timeout=10)
    refresh_all(job_app, sage)
    with job_app.app_context():
        assert db.session.get(Integration, integration_id).status is IntegrationStatus.EXPIRED
    page = unescaped(browser.get(f"/dossiers/{dossier_id}/documents").text)
    assert "L'intégration avec Sage Business Cloud Comptabilité a expiré." in page


def test_rate_limited_waits_and_succeeds(job_app, live, spec, sage):
    _, _, integration_id = sage
    controls_api.post(
        f"{live.url}/sandbox/controls/api/faults",
        json={"count": 1, "status": 429, "retry_after": 1},
        timeout=10,
    )
    with job_app.test_request_context(base_url=live.url), job_app.app_context():
        pages = list(get_connector("sage").iter_pages(LiveTokens(integration_id), ListKind.TAX_RATES))
    assert len(pages[0]) == len(TAX_RATES)
    limited = [e for e in spec.exchanges if e.status == 429]
    assert limited and dict(limited[0].headers).get("Retry-After") == "1"
    assert b"TooManyRequests" in limited[0].answer


def test_a_purchase_invoice_is_published_once_with_its_pdf(job_app, live, spec, sage):
    browser, dossier_id, _ = sage
    document_id = new_bill(browser, dossier_id, job_app, tax_code="TVA20", number="S-001", pdf=PDF)
    click_publish(browser, dossier_id, document_id)
    run_worker_burst(job_app)
    document = status_of(job_app, document_id)
    assert document.status is DocumentStatus.PUBLISHED, document.failure_reason
    (invoice,) = upstream_invoices(live)
    sent = invoice["payload"]
    assert sent["sage_kind"] == "purchase_invoices" and sent["vendor_reference"] == "S-001"
    with job_app.app_context():
        account_guid = db.session.scalar(
            select(SandboxItem.guid).where(
                SandboxItem.company_id == COMPANY, SandboxItem.external_id == "acc-606100"
            )
        )
    assert sent["invoice_lines"][0]["ledger_account_id"] == account_guid
    assert sent["invoice_lines"][0]["tax_rate_id"] == "TVA20"
    assert invoice["attachments"][0]["sha256"] == hashlib.sha256(PDF).hexdigest()
    upload = spec.calls("POST", "/attachments")[0]
    assert upload.body and base64.b64encode(PDF).decode() in upload.body.decode()
    created = spec.calls("POST", "/purchase_invoices")[0]
    assert f'"idempotency_id": "{document.idempotency_key}"' in created.body.decode()

    # Sent again with the same idempotency_id (a timeout after Sage created it): Sage answers with
    # the first invoice.
    with job_app.test_request_context(base_url=live.url), job_app.app_context():
        answer = get_connector("sage")._call(
            LiveTokens(document.integration_id), "POST", "/purchase_invoices", json=json.loads(created.body)
        )
    assert answer["id"] == document.upstream_id
    assert len(upstream_invoices(live)) == 1

    # Published again (a worker killed after Sage answered): found by its reference, not re-created.
    with job_app.test_request_context(base_url=live.url), job_app.app_context():
        from webapp.services.publishing import publish

        db.session.get(Document, document_id).status = DocumentStatus.READY
        db.session.commit()
        publish(document_id)
    (invoice,) = upstream_invoices(live)
    assert len(invoice["attachments"]) == 1
    # The publication and the replay above: the re-run found the invoice by its reference, no POST.
    assert len(spec.calls("POST", "/purchase_invoices")) == 2


def test_a_rejected_field_is_shown_in_french_with_sages_words_and_the_field(job_app, live, spec, sage):
    browser, dossier_id, _ = sage
    controls_api.post(
        f"{live.url}/sandbox/controls/api/companies/{COMPANY}/items/acc-606100",
        json={"active": False},
        timeout=10,
    ).raise_for_status()
    document_id = new_bill(browser, dossier_id, job_app, tax_code="TVA20", number="S-002")
    click_publish(browser, dossier_id, document_id)
    run_worker_burst(job_app)
    document = status_of(job_app, document_id)
    assert document.status is DocumentStatus.FAILED
    assert plain_spaces(document.failure_reason) == (
        "Sage a refusé la demande : Ledger account is not valid or is no longer in use "
        "(champ invoice_lines.0.ledger_account_id)"
    )
    assert "RecordInvalid" in document.failure_detail
    assert upstream_invoices(live) == []


def test_a_new_supplier_is_looked_for_then_created_once_as_a_vendor(job_app, live, spec, sage):
    browser, dossier_id, _ = sage
    with job_app.app_context():
        account = db.session.scalar(
            select(ListItem.id).where(ListItem.code == "606400", ListItem.kind == ListKind.ACCOUNTS)
        )
        tax = db.session.scalar(select(ListItem.id).where(ListItem.external_id == "TVA20"))
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
        "party_name": "Fournil Dupont SARL",
        "party_vat_number": "FR40303265045",
        "number": "S-003",
        "issue_date": "2026-11-02",
        "amount_ht": "100,00",
        "amount_tva": "20,00",
        "amount_ttc": "120,00",
        "currency": "EUR",
        "pdf": None,
    }
    response = browser.post_form(url, {k: v for k, v in form.items() if v is not None}, page=url)
    document_id = int(response.text.split('id="document-')[1].split('"')[0])
    click_publish(browser, dossier_id, document_id)
    run_worker_burst(job_app)
    assert status_of(job_app, document_id).status is DocumentStatus.PUBLISHED
    with job_app.app_context():
        created = db.session.scalars(
            select(SandboxItem).where(SandboxItem.name == "Fournil Dupont SARL")
        ).all()
        assert [(c.vat_number, c.kind) for c in created] == [("FR40303265045", "suppliers")]
    created_calls = spec.calls("POST", "/contacts")
    assert len(created_calls) == 1 and b'"contact_type_ids": ["VENDOR"]' in created_calls[0].body
    assert any("search=FR40303265045" in e.environ["QUERY_STRING"] for e in spec.calls("GET", "/contacts"))
