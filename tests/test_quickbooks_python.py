"""The QuickBooks dialect judged by Intuit's own Python libraries, used as a developer would use them.

intuit-oauth (AuthClient) is given the dialect's discovery document as its `environment`, the way it
reads Intuit's own; python-quickbooks is given the dialect's base URL through its `api_url_v3`
setting and talks to it over HTTP. Nothing in either library is patched: where they choke, the
dialect is wrong.
"""

from __future__ import annotations

import hashlib

import pytest
from intuitlib.client import AuthClient
from intuitlib.exceptions import AuthClientError
from quickbooks import QuickBooks
from quickbooks.exceptions import (
    AuthorizationException,
    ObjectNotFoundException,
    QuickbooksException,
    UnsupportedException,
    ValidationException,
)
from quickbooks.objects.account import Account
from quickbooks.objects.attachable import Attachable
from quickbooks.objects.base import AttachableRef, Ref
from quickbooks.objects.bill import Bill
from quickbooks.objects.customer import Customer
from quickbooks.objects.department import Department
from quickbooks.objects.detailline import AccountBasedExpenseLine, AccountBasedExpenseLineDetail
from quickbooks.objects.taxcode import TaxCode
from quickbooks.objects.trackingclass import Class
from quickbooks.objects.vendor import Vendor
from sqlalchemy import func, select

from sandbox.dialects.quickbooks import realm_of
from sandbox.models import SandboxAttachment, SandboxGrant, SandboxInvoice, SandboxItem, SandboxToken
from sandbox.oauth import issue_tokens
from sandbox.seed import ACCOUNTS, CUSTOMERS, SUPPLIERS, TAX_RATES, TRACKING
from tests.http_user import COMPANY
from webapp.extensions import db

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
REALM = realm_of(COMPANY)


@pytest.fixture
def intuit(job_app, live, monkeypatch):
    """An AuthClient and a QuickBooks client on the dialect, from a consent given to Boulangerie Martin."""
    # oauthlib refuses plain http unless told the transport is local: its own setting for tests.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    sandbox = job_app.extensions["raccord.sandbox"]
    with sandbox.app_context():
        _access, refresh = issue_tokens(
            client_id=job_app.config["SANDBOX_CLIENT_ID"],
            company_id=COMPANY,
            scope="com.intuit.quickbooks.accounting",
            access_ttl=3600,
            refresh_ttl=100 * 86400,
        )
        db.session.commit()
    auth_client = AuthClient(
        client_id=job_app.config["SANDBOX_CLIENT_ID"],
        client_secret=job_app.config["SANDBOX_CLIENT_SECRET"],
        redirect_uri=f"{live.url}/oauth/callback",
        environment=f"{live.url}/sandbox/quickbooks/.well-known/openid_configuration/",
        refresh_token=refresh,
        realm_id=REALM,
    )
    qb = QuickBooks(auth_client=auth_client, refresh_token=refresh, company_id=REALM, minorversion=75)
    qb.api_url_v3 = f"{live.url}/sandbox/quickbooks/v3"
    return auth_client, qb, sandbox


def count_rows(sandbox, model, *where) -> int:
    with sandbox.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_refresh_and_revoke_through_auth_client(intuit):
    auth_client, _qb, sandbox = intuit
    # QuickBooks(auth_client=…) refreshed at once (no access token yet): Intuit's answer, read whole.
    assert auth_client.access_token and auth_client.refresh_token
    assert auth_client.expires_in == 3600
    assert 99 * 86400 < auth_client.x_refresh_token_expires_in <= 100 * 86400
    first = auth_client.refresh_token
    auth_client.refresh()
    assert auth_client.refresh_token != first and auth_client.x_refresh_token_expires_in > 0
    with pytest.raises(AuthClientError) as refused:
        auth_client.refresh(refresh_token=first)  # rotated: the old one is dead
    assert refused.value.status_code == 400
    assert auth_client.revoke() is True
    with pytest.raises(AuthClientError):
        auth_client.refresh()
    with sandbox.app_context():
        token = SandboxToken.by_refresh_token(auth_client.refresh_token)
        assert token.revoked and db.session.get(SandboxGrant, token.grant_id).revoked_at is not None


def test_lists_as_python_quickbooks_queries_them(intuit):
    _auth, qb, _sandbox = intuit
    accounts = Account.all(qb=qb, max_results=1000)
    assert {a.AcctNum for a in accounts} >= {number for number, _ in ACCOUNTS}
    assert Account.count(qb=qb) == len(accounts)
    vendors = Vendor.all(qb=qb, order_by="DisplayName")
    assert [v.DisplayName for v in vendors] == sorted(SUPPLIERS)
    assert Vendor.count(qb=qb) == len(SUPPLIERS)
    page = Vendor.where("", order_by="DisplayName DESC", start_position=2, max_results=3, qb=qb)
    assert [v.DisplayName for v in page] == sorted(SUPPLIERS, reverse=True)[1:4]
    (edf,) = Vendor.filter(DisplayName="EDF Entreprises", qb=qb)
    assert Vendor.get(edf.Id, qb=qb).DisplayName == "EDF Entreprises"
    assert [v.DisplayName for v in Vendor.where("DisplayName LIKE '%Moulins%'", qb=qb)] == [
        "Moulins Soufflet",
        "Grands Moulins de Paris",
    ]
    assert [v.Id for v in Vendor.choose([edf.Id, "999999"], qb=qb)] == [edf.Id]
    assert len(Vendor.query("SELECT * FROM Vendor MAXRESULTS 2", qb=qb)) == 2
    customers = Customer.all(qb=qb)
    assert {c.DisplayName for c in customers} == set(CUSTOMERS)
    codes = TaxCode.all(qb=qb)
    assert {c.Name for c in codes} == {code for code, _, _ in TAX_RATES}
    assert TaxCode.get(codes[0].Id, qb=qb).Name == codes[0].Name
    classes = Class.all(qb=qb)
    assert {c.FullyQualifiedName for c in classes} == {f"{axis}:{name}" for name, axis in TRACKING}
    assert Class.get(classes[0].Id, qb=qb).Name == classes[0].Name
    assert Department.all(qb=qb) == [] and Department.count(qb=qb) == 0
    with pytest.raises(ObjectNotFoundException) as missing:
        Department.get("1", qb=qb)
    assert missing.value.error_code == 610


def test_query_faults_come_back_as_the_library_raises_them(intuit):
    _auth, qb, _sandbox = intuit
    with pytest.raises(ValidationException) as parsed:
        Vendor.query("SELEC * FROM Vendor", qb=qb)
    assert parsed.value.error_code == 4000 and "QueryParserError" in parsed.value.detail
    with pytest.raises(ValidationException) as too_many:
        Vendor.all(max_results=1001, qb=qb)
    assert too_many.value.error_code == 4001 and "Max allowed value is 1000" in too_many.value.detail
    with pytest.raises(ValidationException) as huge:
        Vendor.where("", start_position="9" * 30, qb=qb)
    assert huge.value.error_code == 4000
    with pytest.raises(ValidationException) as unknown:
        Vendor.filter(Shoe="x", qb=qb)
    assert unknown.value.error_code == 4001 and "Shoe" in unknown.value.detail
    with pytest.raises(UnsupportedException):
        qb.get_single_object("Shoe", "1")


def a_bill(qb, vendor: Vendor, account: Account, amount) -> Bill:
    bill = Bill()
    bill.VendorRef = vendor.to_ref()
    bill.DocNumber = "PYQB-001"
    bill.TxnDate = "2026-11-02"
    line = AccountBasedExpenseLine()
    line.Amount = amount
    line.Description = "Électricité novembre"
    line.AccountBasedExpenseLineDetail = AccountBasedExpenseLineDetail()
    line.AccountBasedExpenseLineDetail.AccountRef = account.to_ref()
    bill.Line.append(line)
    return bill


def test_a_bill_saved_twice_with_one_request_id_exists_once_with_its_attachment(intuit):
    _auth, qb, sandbox = intuit
    (vendor,) = Vendor.filter(DisplayName="EDF Entreprises", qb=qb)
    (account,) = [a for a in Account.all(qb=qb, max_results=1000) if a.AcctNum == "606100"]
    saved = a_bill(qb, vendor, account, 120.5).save(qb=qb, request_id="raccord-doc-41")
    again = a_bill(qb, vendor, account, 120.5).save(qb=qb, request_id="raccord-doc-41")
    assert again.Id == saved.Id and saved.TotalAmt == 120.5
    assert count_rows(sandbox, SandboxInvoice, SandboxInvoice.company_id == COMPANY) == 1
    assert Bill.get(saved.Id, qb=qb).DocNumber == "PYQB-001"
    assert [b.Id for b in Bill.filter(DocNumber="PYQB-001", qb=qb)] == [saved.Id]

    attachable = Attachable()
    reference = AttachableRef()
    reference.EntityRef = saved.to_ref()
    attachable.AttachableRef.append(reference)
    attachable.FileName = "facture-edf.pdf"
    attachable.ContentType = "application/pdf"
    attachable._FileBytes = PDF
    uploaded = attachable.save(qb=qb)
    assert uploaded.FileName == "facture-edf.pdf" and uploaded.Size == len(PDF)
    with sandbox.app_context():
        (stored,) = db.session.scalars(select(SandboxAttachment)).all()
        assert stored.sha256 == hashlib.sha256(PDF).hexdigest() and stored.content_type == "application/pdf"
    found = Attachable.filter(**{"AttachableRef.EntityRef.Value": saved.Id}, qb=qb)
    assert [a.Id for a in found] == [uploaded.Id]


def test_refused_writes_raise_intuits_codes_and_store_nothing(intuit):
    _auth, qb, sandbox = intuit
    (vendor,) = Vendor.filter(DisplayName="EDF Entreprises", qb=qb)
    (account,) = [a for a in Account.all(qb=qb, max_results=1000) if a.AcctNum == "606100"]
    for amount in ("NaN", "Infinity", "1e400", "12.345678", "99999999999"):
        with pytest.raises(ValidationException) as refused:
            a_bill(qb, vendor, account, amount).save(qb=qb)
        assert refused.value.error_code == 2010, amount
        assert "Amount" in refused.value.detail
    nobody = Ref()
    nobody.value = "999999"
    bill = a_bill(qb, vendor, account, 10)
    bill.VendorRef = nobody
    with pytest.raises(ValidationException) as reference:
        bill.save(qb=qb)
    assert reference.value.error_code == 2500
    empty = Bill()
    empty.VendorRef = vendor.to_ref()
    with pytest.raises(ValidationException) as missing:
        empty.save(qb=qb)
    assert missing.value.error_code == 2020
    long_number = a_bill(qb, vendor, account, 10)
    long_number.DocNumber = "X" * 22
    with pytest.raises(ValidationException) as length:
        long_number.save(qb=qb)
    assert length.value.error_code == 2050
    with pytest.raises(QuickbooksException) as duplicate:
        Vendor.from_json({"DisplayName": "EDF Entreprises"}).save(qb=qb)
    assert duplicate.value.error_code == 6240
    assert count_rows(sandbox, SandboxInvoice, SandboxInvoice.company_id == COMPANY) == 0
    assert (
        count_rows(
            sandbox, SandboxItem, SandboxItem.company_id == COMPANY, SandboxItem.name == "EDF Entreprises"
        )
        == 1
    )


def test_an_expired_access_token_is_the_librarys_authorization_exception(intuit):
    auth_client, qb, _sandbox = intuit
    auth_client.revoke()
    with pytest.raises(AuthorizationException) as refused:
        Vendor.all(qb=qb)
    assert refused.value.error_code == 401
    assert isinstance(refused.value, QuickbooksException)
