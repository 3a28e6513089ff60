"""The sandbox's Xero dialect judged by Xero's own Python library (xero-python), used unchanged and
configured only through its own settings (the APIs' base_url, its Configuration and OAuth2Token):
whatever the library reads from the dialect, it reads as it reads Xero, its strict deserialiser
included (field types, /Date(…)/ dates, enums), and the errors come as the exceptions it raises."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from xero_python.accounting import AccountingApi
from xero_python.accounting.models import (
    Contact,
    Contacts,
    Invoice,
    Invoices,
    LineAmountTypes,
    LineItem,
    LineItemTracking,
)
from xero_python.api_client import ApiClient, Configuration
from xero_python.api_client.oauth2 import OAuth2Token
from xero_python.exceptions import ApiException, BadRequestException, RateLimitException
from xero_python.identity import IdentityApi

from sandbox.dialects import tenant_guid
from sandbox.faults import set_setting
from sandbox.models import SandboxAttachment, SandboxInvoice, SandboxItem
from sandbox.seed import ACCOUNTS, CUSTOMERS, PAYMENT_METHODS, SUPPLIERS, TAX_RATES, TRACKING
from tests.conftest import LiveServer, sandbox_tokens
from tests.http_user import COMPANY
from webapp.extensions import db

TENANT = tenant_guid(COMPANY)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture
def sandbox(app):
    """The sandbox on a real port (the library speaks HTTP), with the demo company and a token."""
    _company, access, _refresh = sandbox_tokens(
        app,
        company_id=COMPANY,
        scope="offline_access accounting.settings accounting.contacts accounting.transactions",
        access_ttl=1800,
    )
    sandbox_app = app.extensions["raccord.sandbox"]
    server = LiveServer(app).start()
    yield {"url": server.url, "access": access, "app": sandbox_app}
    server.stop()


def _client(access: str) -> ApiClient:
    token = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": 1800,
        "scope": ["accounting.settings"],
    }
    return ApiClient(
        Configuration(oauth2_token=OAuth2Token(client_id="raccord", client_secret="unused")),
        oauth2_token_getter=lambda: token,
        oauth2_token_saver=token.update,
    )


def _named(value) -> str:
    """An enum of the library's models as the text Xero sent (some fields are typed, some not)."""
    return getattr(value, "value", value)


@pytest.fixture
def accounting(sandbox) -> AccountingApi:
    return AccountingApi(_client(sandbox["access"]), base_url=f"{sandbox['url']}/sandbox/xero/api.xro/2.0")


def test_the_connections_name_the_demo_organisation(sandbox):
    identity = IdentityApi(_client(sandbox["access"]), base_url=f"{sandbox['url']}/sandbox/xero")
    (connection,) = identity.get_connections()
    assert connection.tenant_id == TENANT and connection.tenant_type == "ORGANISATION"
    assert connection.tenant_name == "Boulangerie Martin SARL"
    assert isinstance(connection.created_date_utc, datetime)


def test_accounts_tax_rates_and_tracking_categories_read_whole(accounting):
    accounts = accounting.get_accounts(TENANT).accounts
    assert len(accounts) == len(ACCOUNTS) + len(PAYMENT_METHODS)
    assert {a.code for a in accounts if _named(a.type) == "BANK"} == {code for code, _ in PAYMENT_METHODS}
    assert all(isinstance(a.updated_date_utc, datetime) for a in accounts)
    rates = accounting.get_tax_rates(TENANT).tax_rates
    assert {(r.tax_type, r.effective_rate) for r in rates} == {(c, Decimal(r)) for c, _, r in TAX_RATES}
    categories = accounting.get_tracking_categories(TENANT).tracking_categories
    assert sorted((c.name, o.name) for c in categories for o in c.options) == sorted(
        (axis, option) for option, axis in TRACKING
    )


def test_contacts_come_page_by_page_and_archived_ones_on_demand(accounting, sandbox):
    seen, page = [], 1
    while True:
        answer = accounting.get_contacts(TENANT, page=page, page_size=7)
        seen += [c.contact_id for c in answer.contacts]
        assert answer.pagination.page == page and answer.pagination.page_size == 7
        if page >= answer.pagination.page_count:
            break
        page += 1
    assert len(seen) == len(set(seen)) == len(SUPPLIERS) + len(CUSTOMERS) == answer.pagination.item_count
    with sandbox["app"].app_context():
        db.session.execute(
            update(SandboxItem).where(SandboxItem.name == "Orange Business").values(active=False)
        )
        db.session.commit()
    names = {c.name for c in accounting.get_contacts(TENANT, page_size=1000).contacts}
    assert "Orange Business" not in names and len(names) == len(seen) - 1
    archived = [
        c
        for c in accounting.get_contacts(TENANT, page_size=1000, include_archived=True).contacts
        if c.name == "Orange Business"
    ]
    assert [_named(c.contact_status) for c in archived] == ["ARCHIVED"]


def test_if_modified_since_gives_only_what_changed(accounting, sandbox):
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    with sandbox["app"].app_context():
        db.session.execute(update(SandboxItem).values(updated_at=long_ago))
        db.session.execute(
            update(SandboxItem)
            .where(SandboxItem.name.in_(("Metro France", "TVA 20 %")))
            .values(updated_at=datetime.now(UTC))
        )
        db.session.commit()
    since = datetime.now(UTC) - timedelta(minutes=5)
    changed = accounting.get_contacts(TENANT, if_modified_since=since).contacts
    assert [c.name for c in changed] == ["Metro France"]
    assert changed[0].updated_date_utc > since
    assert accounting.get_accounts(TENANT, if_modified_since=since).accounts == []


def test_where_and_order_on_the_fields_the_dialect_reads(accounting):
    (edf,) = accounting.get_contacts(TENANT, where='Name=="EDF Entreprises"').contacts
    assert edf.name == "EDF Entreprises"
    assert accounting.get_contacts(TENANT, where=f'ContactID==GUID("{edf.contact_id}")').contacts[0].name == (
        "EDF Entreprises"
    )
    names = [c.name for c in accounting.get_contacts(TENANT, order="Name DESC", page_size=1000).contacts]
    assert names == sorted(names, key=str.casefold, reverse=True)
    suppliers = accounting.get_contacts(
        TENANT, where='ContactStatus=="ACTIVE" AND Name.StartsWith("Grands")', page_size=1000
    ).contacts
    assert [c.name for c in suppliers] == ["Grands Moulins de Paris"]
    banks = accounting.get_accounts(TENANT, where='Type=="BANK"', order="Code").accounts
    assert [a.code for a in banks] == sorted(code for code, _ in PAYMENT_METHODS)
    rates = accounting.get_tax_rates(TENANT, where='TaxType=="TVA55"').tax_rates
    assert [r.name for r in rates] == ["TVA 5,5 %"]


@pytest.mark.parametrize(
    ("where", "order"),
    [
        ("Balance > 10", None),
        ('Nom=="x"', None),
        ('Name=="x', None),
        (None, "Balance"),
        (None, "Name SIDEWAYS"),
    ],
)
def test_a_where_or_order_the_dialect_does_not_read_is_xeros_query_parse_error(accounting, where, order):
    with pytest.raises(BadRequestException) as raised:
        accounting.get_contacts(TENANT, **{k: v for k, v in (("where", where), ("order", order)) if v})
    assert raised.value.status == 400
    assert raised.value.error_data["Type"] == "QueryParseException"
    assert raised.value.error_data["ErrorNumber"] == 16


def test_a_contact_is_created_once_whatever_the_retries(accounting, sandbox):
    contacts = Contacts(contacts=[Contact(name="Fournil Dupont SARL", tax_number="FR40303265045")])
    first = accounting.create_contacts(TENANT, contacts, idempotency_key="contact-1").contacts[0]
    again = accounting.create_contacts(TENANT, contacts, idempotency_key="contact-1").contacts[0]
    assert again.contact_id == first.contact_id and first.name == "Fournil Dupont SARL"
    assert first.tax_number == "FR40303265045" and isinstance(first.updated_date_utc, datetime)
    with sandbox["app"].app_context():
        assert db.session.scalars(
            select(SandboxItem.guid).where(SandboxItem.name == "Fournil Dupont SARL")
        ).all() == [first.contact_id]


def _bill(accounting, contact_id: str, amount_types: str, key: str, **line) -> Invoice:
    invoice = Invoice(
        type="ACCPAY",
        contact=Contact(contact_id=contact_id),
        date=date(2026, 11, 2),
        due_date=date(2026, 12, 2),
        invoice_number="F-2026-118",
        line_amount_types=LineAmountTypes(amount_types),
        status="AUTHORISED",
        line_items=[
            LineItem(
                description="Électricité novembre",
                quantity=Decimal("3"),
                unit_amount=Decimal("33.33"),
                account_code="606100",
                tax_type="TVA20",
                tracking=[LineItemTracking(name="Établissement", option="Magasin centre-ville")],
                **line,
            ),
            LineItem(
                description="Farine",
                quantity=1,
                unit_amount=Decimal("10.05"),
                account_code="601000",
                tax_type="TVA55",
            ),
        ],
    )
    return accounting.create_invoices(TENANT, Invoices(invoices=[invoice]), idempotency_key=key).invoices[0]


@pytest.mark.parametrize(
    ("amount_types", "amounts", "tax", "totals"),
    [
        # 3 × 33.33 = 99.99 at 20 %, and 10.05 at 5.5 %: tax per line, rounded to the cent.
        ("Exclusive", ("99.99", "10.05"), ("20.00", "0.55"), ("110.04", "20.55", "130.59")),
        # The same amounts tax included: 99.99 × 20/120 = 16.665 → 16.67; 10.05 × 5.5/105.5 = 0.524 → 0.52.
        ("Inclusive", ("99.99", "10.05"), ("16.67", "0.52"), ("92.85", "17.19", "110.04")),
        ("NoTax", ("99.99", "10.05"), ("0.00", "0.00"), ("110.04", "0.00", "110.04")),
    ],
)
def test_a_bill_is_answered_with_its_lines_and_totals_as_xero_computes_them(
    accounting, sandbox, amount_types, amounts, tax, totals
):
    edf = accounting.get_contacts(TENANT, where='Name=="EDF Entreprises"').contacts[0]
    bill = _bill(accounting, edf.contact_id, amount_types, f"bill-{amount_types}")
    assert (bill.date, bill.due_date) == (date(2026, 11, 2), date(2026, 12, 2))
    assert [line.line_amount for line in bill.line_items] == [Decimal(a) for a in amounts]
    assert [line.tax_amount for line in bill.line_items] == [Decimal(t) for t in tax]
    assert all(line.line_item_id for line in bill.line_items)
    assert bill.line_items[0].tracking[0].option == "Magasin centre-ville"
    assert (bill.sub_total, bill.total_tax, bill.total) == tuple(Decimal(t) for t in totals)
    assert _named(bill.line_amount_types) == amount_types and _named(bill.status) == "AUTHORISED"
    # Sent again with the same key: the first answer, and one bill at the sandbox.
    again = _bill(accounting, edf.contact_id, amount_types, f"bill-{amount_types}")
    assert again.invoice_id == bill.invoice_id
    with sandbox["app"].app_context():
        stored = db.session.scalars(select(SandboxInvoice)).all()
        assert [i.guid for i in stored] == [bill.invoice_id]
        assert stored[0].payload["Total"] == float(totals[2])


def test_the_bills_pdf_is_attached_by_its_file_name(accounting, sandbox):
    edf = accounting.get_contacts(TENANT, where='Name=="EDF Entreprises"').contacts[0]
    bill = _bill(accounting, edf.contact_id, "Exclusive", "bill-with-pdf")
    (attachment,) = accounting.create_invoice_attachment_by_file_name(
        TENANT, bill.invoice_id, "F-2026-118.pdf", PDF
    ).attachments
    assert attachment.file_name == "F-2026-118.pdf" and attachment.mime_type == "application/pdf"
    assert attachment.content_length == len(PDF)
    with sandbox["app"].app_context():
        stored = db.session.scalars(select(SandboxAttachment)).one()
        assert stored.sha256 == hashlib.sha256(PDF).hexdigest()


def test_a_refused_bill_is_xeros_validation_exception_and_nothing_is_stored(accounting, sandbox):
    edf = accounting.get_contacts(TENANT, where='Name=="EDF Entreprises"').contacts[0]
    with sandbox["app"].app_context():
        db.session.execute(update(SandboxItem).where(SandboxItem.code == "606100").values(active=False))
        db.session.commit()
    with pytest.raises(BadRequestException) as raised:
        _bill(accounting, edf.contact_id, "Exclusive", "refused")
    error = raised.value
    assert error.status == 400 and error.error_data["Type"] == "ValidationException"
    (element,) = error.error_data["Elements"]
    assert element["ValidationErrors"] == [
        {
            "Message": "Account code '606100' has been archived or has been deleted. "
            "Each line item must reference a valid account."
        }
    ]
    with sandbox["app"].app_context():
        assert db.session.scalars(select(SandboxInvoice)).all() == []


def test_401_403_and_429_come_as_the_library_raises_them(sandbox, accounting):
    root = f"{sandbox['url']}/sandbox/xero/api.xro/2.0"
    with pytest.raises(ApiException) as raised:
        AccountingApi(_client("not-a-token"), base_url=root).get_accounts(TENANT)
    assert raised.value.status == 401
    assert json.loads(raised.value.body)["Detail"].startswith("TokenInvalid")
    with pytest.raises(ApiException) as raised:
        accounting.get_accounts("00000000-0000-0000-0000-000000000000")
    assert raised.value.status == 403
    assert json.loads(raised.value.body)["Detail"] == "AuthenticationUnsuccessful"
    # One 429: the library (urllib3 under it) waits Retry-After and asks again, as it would at Xero.
    with sandbox["app"].app_context():
        set_setting("faults", {"count": 1, "status": 429, "retry_after": 1})
    started = time.monotonic()
    assert accounting.get_accounts(TENANT).accounts
    assert time.monotonic() - started >= 1
    # 429 after 429: once its retries are spent, the library raises its RateLimitException.
    with sandbox["app"].app_context():
        set_setting("faults", {"count": 10, "status": 429, "retry_after": 0})
    with pytest.raises(RateLimitException) as raised:
        accounting.get_accounts(TENANT)
    assert raised.value.status == 429 and raised.value.rate_limit == "minute"
    assert raised.value.headers["Retry-After"] == "0"
