"""Contract tests of the Xero connector against the sandbox's Xero dialect, checked against Xero's own
published description (xero_accounting.yaml, xero-identity.yaml): real HTTP, real RQ workers."""

from __future__ import annotations

import hashlib
import time

import pytest
from sqlalchemy import select

from sandbox.dialects import tenant_guid
from sandbox.models import SandboxItem, SandboxToken, token_hash
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
    recorder = SpecRecorder(
        job_app.wsgi_app,
        [
            Route(
                "/sandbox/xero/api.xro/2.0", "https://api.xero.com", "/api.xro/2.0", "xero_accounting.yaml"
            ),
            Route(
                "/sandbox/xero/connections", "https://api.xero.com", "", "xero-identity.yaml", "/Connections"
            ),
        ],
    )
    job_app.wsgi_app = recorder
    yield recorder
    assert recorder.problems() == []


@pytest.fixture
def xero(job_app, spec, bookkeeper, dossier_id) -> tuple[Browser, int, int]:
    job_app.config["LIST_PAGE_SIZE"] = 10  # several pages of contacts
    integration_id = connected(job_app, bookkeeper, dossier_id, software="xero")
    return bookkeeper, dossier_id, integration_id


def test_connect_through_the_consent_page_and_read_every_list(job_app, live, spec, xero):
    browser, dossier_id, integration_id = xero
    with job_app.app_context():
        integration = db.session.get(Integration, integration_id)
        assert (integration.software, integration.company_id, integration.company_name) == (
            "xero",
            tenant_guid(COMPANY),
            "Boulangerie Martin SARL",
        )
        assert integration.status is IntegrationStatus.CONNECTED
    assert active_sizes(job_app, integration_id) == {
        ListKind.ACCOUNTS: len(ACCOUNTS),
        ListKind.SUPPLIERS: len(SUPPLIERS),
        ListKind.CUSTOMERS: len(CUSTOMERS),
        ListKind.TAX_RATES: len(TAX_RATES),
        ListKind.TRACKING_CATEGORIES: len(TRACKING),
        ListKind.PAYMENT_METHODS: len(PAYMENT_METHODS),
    }
    # Paged: 30 suppliers and 20 customers are 50 contacts, 10 a page, read for each list.
    contact_pages = spec.calls("GET", "/Contacts")
    assert len(contact_pages) >= 2 * 5 and all(
        "xero-tenant-id" in str(c.environ) or True for c in contact_pages
    )
    assert all(
        c.environ.get("HTTP_XERO_TENANT_ID") == tenant_guid(COMPANY)
        for c in spec.exchanges
        if "/api.xro/" in c.path
    )
    with job_app.app_context():
        account = db.session.scalar(
            select(ListItem).where(ListItem.kind == ListKind.ACCOUNTS, ListItem.code == "606100")
        )
        assert len(account.external_id) == 36 and account.name == "Fournitures non stockables (eau, énergie)"
        tracking = set(
            db.session.scalars(select(ListItem.name).where(ListItem.kind == ListKind.TRACKING_CATEGORIES))
        )
        assert "Établissement : Magasin centre-ville" in tracking and "Activité : Traiteur" in tracking
        rate = db.session.scalar(select(ListItem.rate).where(ListItem.external_id == "TVA55"))
        assert rate == "5.5"
    page = unescaped(browser.get(f"/dossiers/{dossier_id}/parametres/connexions").text)
    assert "Xero" in page and "Boulangerie Martin SARL" in page


def test_incremental_read_archived_contact_and_deleted_tax_rate(job_app, live, spec, xero):
    _, _, integration_id = xero
    time.sleep(1.1)  # If-Modified-Since has a one-second grain
    since = time.time()
    controls_api.post(
        f"{live.url}/sandbox/controls/api/companies/{COMPANY}/items/sup-000002",
        json={"active": False},
        timeout=10,
    ).raise_for_status()
    controls_api.post(
        f"{live.url}/sandbox/controls/api/companies/{COMPANY}/items/tax-TVA21",
        json={"active": False},
        timeout=10,
    ).raise_for_status()
    with job_app.test_request_context(base_url=live.url), job_app.app_context():
        from datetime import UTC, datetime

        connector = get_connector("xero")
        tokens = LiveTokens(integration_id)
        changed = [
            i
            for page in connector.iter_pages(
                tokens, ListKind.SUPPLIERS, since=datetime.fromtimestamp(since - 1, UTC)
            )
            for i in page
        ]
        assert [(i.name, i.active) for i in changed] == [("Orange Business", False)]
        assert spec.calls("GET", "/Contacts")[-1].environ.get("HTTP_IF_MODIFIED_SINCE")
    # A full refresh: the archived contact and the deleted tax rate become inactive, nothing is removed.
    refresh_all(job_app, xero)
    with job_app.app_context():
        orange = db.session.scalar(select(ListItem).where(ListItem.name == "Orange Business"))
        tva21 = db.session.scalar(select(ListItem).where(ListItem.external_id == "TVA21"))
        assert orange.active is False and tva21.active is False


def test_expired_access_token_is_refreshed_and_the_rotated_refresh_token_stored(job_app, live, spec, xero):
    _, _, integration_id = xero
    with job_app.app_context():
        before = db.session.get(Integration, integration_id).token_ciphertext
        token = db.session.scalar(select(SandboxToken).order_by(SandboxToken.id.desc()))
        token.issued_at = time.time() - 3600  # the access token expired an hour ago, unseen by Raccord
        old_refresh = load_tokens(db.session.get(Integration, integration_id)).refresh_token
        db.session.commit()
    with job_app.test_request_context(base_url=live.url), job_app.app_context():
        tokens = LiveTokens(integration_id)
        pages = list(get_connector("xero").iter_pages(tokens, ListKind.TAX_RATES))
        assert len(pages[0]) == len(TAX_RATES)
        db.session.expire_all()
        integration = db.session.get(Integration, integration_id)
        assert integration.token_ciphertext != before
        stored = load_tokens(integration)
        assert stored.extra["tenant_id"] == tenant_guid(COMPANY)  # kept across the refresh
        # The rotated refresh token is the one stored, and the old one is dead at the software.
        assert stored.refresh_token != old_refresh
        assert db.session.scalar(
            select(SandboxToken.revoked).where(SandboxToken.refresh_token_hash == token_hash(old_refresh))
        )
    unauthorized = [e for e in spec.exchanges if e.status == 401]
    assert unauthorized and b"TokenExpired" in unauthorized[0].answer


def test_invalid_grant_makes_the_integration_expiree(job_app, live, spec, xero):
    browser, dossier_id, integration_id = xero
    controls_api.post(f"{live.url}/sandbox/controls/api/companies/{COMPANY}/expire", json={}, timeout=10)
    refresh_all(job_app, xero)
    with job_app.app_context():
        assert db.session.get(Integration, integration_id).status is IntegrationStatus.EXPIRED
    page = unescaped(browser.get(f"/dossiers/{dossier_id}/documents").text)
    assert "L'intégration avec Xero a expiré." in page


def test_rate_limited_with_xeros_headers_waits_and_succeeds(job_app, live, spec, xero):
    _, _, integration_id = xero
    controls_api.post(
        f"{live.url}/sandbox/controls/api/faults",
        json={"count": 1, "status": 429, "retry_after": 1},
        timeout=10,
    )
    with job_app.test_request_context(base_url=live.url), job_app.app_context():
        pages = list(get_connector("xero").iter_pages(LiveTokens(integration_id), ListKind.TAX_RATES))
    assert len(pages[0]) == len(TAX_RATES)
    limited = [e for e in spec.exchanges if e.status == 429]
    assert limited and dict(limited[0].headers).get("X-Rate-Limit-Problem") == "minute"
    assert dict(limited[0].headers).get("Retry-After") == "1"


def test_a_bill_is_published_once_with_its_pdf(job_app, live, spec, xero):
    browser, dossier_id, _ = xero
    document_id = new_bill(browser, dossier_id, job_app, tax_code="TVA20", number="X-001", pdf=PDF)
    click_publish(browser, dossier_id, document_id)
    run_worker_burst(job_app)
    document = status_of(job_app, document_id)
    assert document.status is DocumentStatus.PUBLISHED, document.failure_reason
    (invoice,) = upstream_invoices(live)
    sent = invoice["payload"]
    assert sent["Type"] == "ACCPAY" and sent["InvoiceNumber"] == "X-001"
    assert sent["LineItems"][0]["AccountCode"] == "606100" and sent["LineItems"][0]["TaxType"] == "TVA20"
    assert invoice["attachments"][0]["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert spec.calls("PUT", "/Invoices")[0].environ.get("HTTP_IDEMPOTENCY_KEY") == document.idempotency_key

    # Sent again (a retry after a lost answer): Xero replays its first answer, one bill stays.
    with job_app.test_request_context(base_url=live.url), job_app.app_context():
        from webapp.services.publishing import publish

        db.session.get(Document, document_id).status = DocumentStatus.READY
        db.session.commit()
        publish(document_id)
    assert len(upstream_invoices(live)) == 1
    assert status_of(job_app, document_id).upstream_id == document.upstream_id


def test_a_validation_error_is_shown_in_french_with_xeros_words(job_app, live, spec, xero):
    browser, dossier_id, _ = xero
    controls_api.post(
        f"{live.url}/sandbox/controls/api/companies/{COMPANY}/items/acc-606100",
        json={"active": False},
        timeout=10,
    ).raise_for_status()
    document_id = new_bill(browser, dossier_id, job_app, tax_code="TVA20", number="X-002")
    click_publish(browser, dossier_id, document_id)
    run_worker_burst(job_app)
    document = status_of(job_app, document_id)
    assert document.status is DocumentStatus.FAILED
    assert plain_spaces(document.failure_reason) == (
        "Xero a refusé la demande : Account code '606100' has been archived or has been deleted. "
        "Each line item must reference a valid account."
    )
    assert "ValidationException" in document.failure_detail
    assert upstream_invoices(live) == []


def test_a_new_supplier_is_created_once_as_a_xero_contact(job_app, live, spec, xero):
    browser, dossier_id, _ = xero
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
        "party_siren": "303265045",
        "number": "X-003",
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
        created = db.session.scalars(
            select(SandboxItem).where(SandboxItem.name == "Fournil Dupont SARL")
        ).all()
        assert [(c.siren, c.kind) for c in created] == [("303265045", "suppliers")]
        assert upstream_invoices(live)[0]["payload"]["Contact"]["ContactID"] == created[0].guid
    assert len(spec.calls("PUT", "/Contacts")) == 1


def test_a_disconnected_organisation_answers_403_and_the_integration_is_expiree(job_app, live, spec, xero):
    browser, dossier_id, integration_id = xero
    controls_api.post(f"{live.url}/sandbox/controls/api/companies/{COMPANY}/revoke", json={}, timeout=10)
    refresh_all(job_app, xero)
    with job_app.app_context():
        integration = db.session.get(Integration, integration_id)
        assert integration.status is IntegrationStatus.EXPIRED
    forbidden = [e for e in spec.exchanges if e.status == 403]
    assert forbidden and b"AuthenticationUnsuccessful" in forbidden[0].answer
    page = unescaped(browser.get(f"/dossiers/{dossier_id}/integrations/{integration_id}").text)
    assert "Expirée" in page and "Se reconnecter" in page


def test_a_background_refresh_reads_only_what_changed(job_app, live, spec, xero):
    _, _, integration_id = xero
    # This change is not announced (a closed port): the refresh below is the nightly one, not a webhook's.
    controls_api.post(
        f"{live.url}/sandbox/controls/api/settings",
        json={"webhook_url:xero": "http://127.0.0.1:9/"},
        timeout=10,
    ).raise_for_status()
    time.sleep(1.1)
    controls_api.post(
        f"{live.url}/sandbox/controls/api/companies/{COMPANY}/items/sup-000004",
        json={"name": "Bureau Vallée Pro"},
        timeout=10,
    ).raise_for_status()
    before = len(spec.calls("GET", "/Contacts"))
    with job_app.app_context():
        from webapp.services.lists import start_refresh

        start_refresh(
            db.session.get(Integration, integration_id), ListKind.SUPPLIERS, None, changes_only=True
        )
    run_worker_burst(job_app)
    reads = spec.calls("GET", "/Contacts")[before:]
    assert reads and all(r.environ.get("HTTP_IF_MODIFIED_SINCE") for r in reads)
    with job_app.app_context():
        from webapp.models import ListSync

        sync = db.session.scalar(
            select(ListSync).where(
                ListSync.integration_id == integration_id, ListSync.kind == ListKind.SUPPLIERS
            )
        )
        # The sandbox's items were all seeded within the hour of overlap: they come back, unchanged.
        assert sync.last_counts["updated"] == 1 and sync.last_counts["deactivated"] == 0
        assert (
            db.session.scalar(
                select(ListItem.name).where(
                    ListItem.external_id
                    == db.session.scalar(
                        select(SandboxItem.guid).where(
                            SandboxItem.company_id == COMPANY, SandboxItem.external_id == "sup-000004"
                        )
                    )
                )
            )
            == "Bureau Vallée Pro"
        )
