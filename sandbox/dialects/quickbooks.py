"""The sandbox speaking QuickBooks Online (Accounting API v3): realmId, the query language, Fault bodies.

URLs mirror Intuit's: /sandbox/quickbooks/connect/oauth2 for appcenter.intuit.com (the callback
gets realmId), /sandbox/quickbooks/oauth2/v1/tokens/bearer for oauth.platform.intuit.com,
/sandbox/quickbooks/oauth2/tokens/revoke for developer.api.intuit.com, and
/sandbox/quickbooks/v3/company/<realmId>/... for quickbooks.api.intuit.com. QuickBooks publishes
no machine-readable description; this follows its documentation
(https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/account …).

How the sandbox's lists read in QuickBooks:
- accounts → Account (AcctNum is the PCG number; AccountType Expense, Income, Other Current
  Liability or Other Current Asset), payment methods → Account of type Bank or Credit Card;
- suppliers / customers → Vendor / Customer (DisplayName; TaxIdentifier is write-only, as in
  QuickBooks, which masks it on read);
- tax rates → TaxRate (RateValue) with one TaxCode each, the code lines refer to;
- tracking → Class, named Axis:Name as QuickBooks shows sub-classes.
Archived items are Active = false and, as in QuickBooks, left out of a query unless it asks
`Active IN (true, false)`.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, Response, g, jsonify, request
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from sandbox import oauth
from sandbox.columns import utcnow
from sandbox.csrf import sandbox_csrf
from sandbox.dialects import check_bearer
from sandbox.faults import apply_faults, get_setting
from sandbox.inputs import field, json_object, page_offset, to_id, to_int, to_moment
from sandbox.models import (
    SandboxAttachment,
    SandboxClient,
    SandboxCompany,
    SandboxGrant,
    SandboxInvoice,
    SandboxItem,
    SandboxSetting,
    SandboxToken,
)
from webapp.extensions import db

bp = Blueprint("sandbox_quickbooks", __name__, url_prefix="/quickbooks")
# Token lifetimes as the vendor's (https://developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/faq).
ACCESS_TTL, REFRESH_TTL = 60 * 60, 100 * 86400
MAX_RESULTS = 1000  # https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/data-queries
ENTITY_KINDS = {
    "Account": ("accounts", "payment_methods"),
    "Vendor": ("suppliers",),
    "Customer": ("customers",),
    "TaxRate": ("tax_rates",),
    "TaxCode": ("tax_rates",),
    "Class": ("tracking_categories",),
    "Item": ("qbo_items",),  # products and services, kept by the dialect for sales invoice lines
}


def realm_of(company_id: str) -> str:
    """A company's realmId: a number, as QuickBooks gives them, stable across runs."""
    return str(int(hashlib.sha256(company_id.encode()).hexdigest(), 16) % 10**16 + 9 * 10**15)


@bp.route("/connect/oauth2", methods=["GET", "POST"])
def authorize():
    """The consent page; QuickBooks adds the chosen company's realmId to the callback."""
    response = oauth.authorize()
    location = response.headers.get("Location") if hasattr(response, "headers") else None
    company = db.session.get(SandboxCompany, request.form.get("company_id") or "")
    if location and company is not None and "code=" in location:
        parts = urlsplit(location)
        query = parse_qsl(parts.query) + [("realmId", realm_of(company.id))]
        response.headers["Location"] = urlunsplit(parts._replace(query=urlencode(query)))
    return response


@bp.post("/oauth2/v1/tokens/bearer")
@sandbox_csrf.exempt
def token():
    return oauth.issue_token_as(ACCESS_TTL, REFRESH_TTL)


@bp.post("/oauth2/tokens/revoke")
@sandbox_csrf.exempt
def revoke():
    """Intuit's revocation: a JSON body {"token": …} with the client's Basic credentials."""
    auth = request.authorization
    client = db.session.get(SandboxClient, auth.username) if auth and auth.username else None
    if client is None or not client.check_client_secret(auth.password or ""):
        return jsonify({"error": "invalid_client"}), 401
    value = str(json_object().get("token") or request.form.get("token") or "")
    found = SandboxToken.by_refresh_token(value) or SandboxToken.by_access_token(value)
    if found is not None:
        grant = db.session.get(SandboxGrant, found.grant_id)
        if grant is not None and grant.revoked_at is None:
            grant.revoked_at = utcnow()
        found.revoked = True
        db.session.commit()
    return Response(status=200)


api = Blueprint("sandbox_quickbooks_api", __name__, url_prefix="/quickbooks/v3/company/<realm>")
sandbox_csrf.exempt(api)


@api.url_value_preprocessor
def pull_realm(_endpoint, values):
    g.realm = values.pop("realm", None) if values else None


@api.before_request
def authenticate():
    faulted = _faults()
    if faulted is not None:
        return faulted
    check = check_bearer()
    if check.problem:
        detail = "Token expired" if check.problem == "expired" else "Token revoked or invalid"
        return _auth_fault(detail)
    if realm_of(check.company.id) != g.realm:
        return _fault(403, "AuthorizationFault", "ApplicationAuthorizationFailed", "003100", "")
    g.company = check.company
    return None


@api.get("/companyinfo/<realm_id>")
def company_info(realm_id: str):
    return _ok(
        {
            "CompanyInfo": {
                "Id": "1",
                "CompanyName": g.company.name,
                "LegalName": g.company.name,
                "Country": "FR",
                "SyncToken": "0",
                "MetaData": _meta(g.company.created_at),
            }
        }
    )


@api.get("/query")
def query():
    text = (request.args.get("query") or "").strip()
    found = re.fullmatch(
        r"(?is)select\s+\*\s+from\s+(\w+)(?:\s+where\s+(.+?))?(?:\s+startposition\s+(\d+))?(?:\s+maxresults\s+(\d+))?",
        text,
    )
    if not found:
        return _fault(
            400, "ValidationFault", "QueryParserError: Encountered an unexpected token", "4000", "query"
        )
    entity, where, start, maximum = found.groups()
    entity = entity[:1].upper() + entity[1:]
    if entity in ("Bill", "Invoice"):
        return _query_transactions(entity, where)
    if entity == "Attachable":
        return _query_attachables(where)
    if entity not in ENTITY_KINDS:
        return _fault(
            400, "ValidationFault", f"QueryValidationError: Entity {entity} is not supported", "4001", "query"
        )
    statement = select(SandboxItem).where(
        SandboxItem.company_id == g.company.id, SandboxItem.kind.in_(ENTITY_KINDS[entity])
    )
    include_inactive = False
    for condition in _conditions(where):
        condition = condition.strip()
        if re.fullmatch(r"(?i)active\s+in\s*\(\s*true\s*,\s*false\s*\)", condition):
            include_inactive = True
        elif re.fullmatch(r"(?i)active\s*=\s*false", condition):
            include_inactive = True
            statement = statement.where(SandboxItem.active.is_(False))
        elif moment := re.fullmatch(r"(?i)metadata\.lastupdatedtime\s*>=?\s*'([^']+)'", condition):
            since = to_moment(moment.group(1))
            if since is None:
                return _fault(400, "ValidationFault", "QueryValidationError: invalid date", "4001", "query")
            statement = statement.where(SandboxItem.updated_at > since)
        elif name := re.fullmatch(r"(?i)(displayname|name)\s*(=|like)\s*'((?:[^'\\]|\\.)*)'", condition):
            value = re.sub(r"\\(.)", r"\1", name.group(3))
            if name.group(2).lower() == "like":
                statement = statement.where(SandboxItem.name.ilike(value))
            else:
                statement = statement.where(func.lower(SandboxItem.name) == value.lower())
        else:
            return _fault(
                400,
                "ValidationFault",
                f"QueryValidationError: unsupported condition {condition}",
                "4001",
                "query",
            )
    if not include_inactive:
        statement = statement.where(SandboxItem.active.is_(True))
    start_at, limit = to_int(start, 1), to_int(maximum, 100)
    if start_at is None or limit is None or page_offset(max(1, start_at), 1) is None:
        return _fault(
            400, "ValidationFault", "QueryValidationError: STARTPOSITION or MAXRESULTS", "4001", "query"
        )
    start_at, limit = max(1, start_at), min(MAX_RESULTS, max(0, limit))
    rows = db.session.scalars(statement.order_by(SandboxItem.id).offset(start_at - 1).limit(limit)).all()
    shape = {
        "Account": _account_json,
        "Vendor": _party_json,
        "Customer": _party_json,
        "TaxRate": _tax_rate_json,
        "TaxCode": _tax_code_json,
        "Class": _class_json,
        "Item": _item_json,
    }[entity]
    body: dict = {}
    if rows:
        body = {entity: [shape(r) for r in rows], "startPosition": start_at, "maxResults": len(rows)}
    return _ok({"QueryResponse": body})


@api.post("/vendor")
@api.post("/customer")
def create_party():
    entity = "Vendor" if request.path.endswith("/vendor") else "Customer"
    body = json_object()
    replay = _replay(entity)
    if replay is not None:
        return replay
    name = str(body.get("DisplayName") or body.get("CompanyName") or "").strip()
    if not name:
        return _fault(
            400,
            "ValidationFault",
            "Required param missing, need to supply the required value for the API",
            "2020",
            "DisplayName",
        )
    if db.session.scalar(
        select(SandboxItem.id).where(
            SandboxItem.company_id == g.company.id,
            SandboxItem.kind.in_(("suppliers", "customers")),
            func.lower(SandboxItem.name) == name.lower(),
        )
    ):
        return _fault(
            400,
            "ValidationFault",
            "Duplicate Name Exists Error",
            "6240",
            "DisplayName",
            detail="The name supplied already exists. : "
            "Another customer, vendor or employee is already using this name.",
        )
    item = SandboxItem(
        company_id=g.company.id,
        kind="suppliers" if entity == "Vendor" else "customers",
        external_id=f"qbo-{uuid.uuid4().hex[:12]}",
        name=name[:300],
        vat_number=body.get("TaxIdentifier") or None,
        updated_at=utcnow(),
    )
    db.session.add(item)
    db.session.flush()
    return _remember(entity, {entity: _party_json(item)})


@api.post("/bill")
def create_bill():
    replay = _replay("Bill")
    if replay is not None:
        return replay
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _fault(400, "ValidationFault", "Request has invalid or unsupported property", "2010", "")
    vendor = _by_id(("suppliers",), field(body, "VendorRef", "value"))
    if vendor is None or not vendor.active:
        return _fault(
            400,
            "ValidationFault",
            "Invalid Reference Id",
            "2500",
            "VendorRef",
            detail="Invalid Reference Id : "
            "Vendor assigned to this transaction has been deleted or is inactive.",
        )
    lines = body.get("Line") or []
    if not lines:
        return _fault(
            400,
            "ValidationFault",
            "Required param missing, need to supply the required value for the API",
            "2020",
            "Line",
        )
    for line in lines:
        detail = line.get("AccountBasedExpenseLineDetail") or {}
        account_id = (detail.get("AccountRef") or {}).get("value")
        account = _by_id(("accounts",), account_id)
        if account is None or not account.active:
            return _fault(
                400,
                "ValidationFault",
                "Invalid Reference Id",
                "2500",
                "AccountRef",
                detail=f"Invalid Reference Id : Accounts element id {account_id} not found or inactive",
            )
        tax = detail.get("TaxCodeRef")
        if tax and (_by_id(("tax_rates",), tax.get("value")) is None):
            return _fault(
                400,
                "ValidationFault",
                "Invalid Reference Id",
                "2500",
                "TaxCodeRef",
                detail="Invalid Reference Id : TaxCode not found",
            )
        try:
            Decimal(str(line.get("Amount")))
        except (InvalidOperation, ValueError):
            return _fault(400, "ValidationFault", "Invalid Number", "2030", "Amount")
    invoice = SandboxInvoice(
        company_id=g.company.id,
        idempotency_key=f"qbo-{uuid.uuid4().hex}",
        payload={"dialect": "quickbooks", "entity": "Bill", **body},
    )
    db.session.add(invoice)
    db.session.flush()
    return _remember("Bill", {"Bill": _bill_json(invoice)})


@api.post("/item")
def create_item():
    replay = _replay("Item")
    if replay is not None:
        return replay
    body = json_object()
    name = str(body.get("Name") or "").strip()
    account = _by_id(("accounts",), field(body, "IncomeAccountRef", "value"))
    if not name:
        return _fault(400, "ValidationFault", "Required param missing", "2020", "Name")
    if account is None or not account.active:
        return _fault(400, "ValidationFault", "Invalid Reference Id", "2500", "IncomeAccountRef")
    if db.session.scalar(
        select(SandboxItem.id).where(
            SandboxItem.company_id == g.company.id, SandboxItem.kind == "qbo_items", SandboxItem.name == name
        )
    ):
        return _fault(400, "ValidationFault", "Duplicate Name Exists Error", "6240", "Name")
    item = SandboxItem(
        company_id=g.company.id,
        kind="qbo_items",
        external_id=f"qbo-item-{uuid.uuid4().hex[:10]}",
        name=name[:300],
        extras={"type": body.get("Type") or "Service", "income_account": str(account.id)},
        updated_at=utcnow(),
    )
    db.session.add(item)
    db.session.flush()
    return _remember("Item", {"Item": _item_json(item)})


@api.post("/invoice")
def create_invoice():
    replay = _replay("Invoice")
    if replay is not None:
        return replay
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _fault(400, "ValidationFault", "Request has invalid or unsupported property", "2010", "")
    customer = _by_id(("customers",), field(body, "CustomerRef", "value"))
    if customer is None or not customer.active:
        return _fault(400, "ValidationFault", "Invalid Reference Id", "2500", "CustomerRef")
    lines = body.get("Line") or []
    if not lines:
        return _fault(400, "ValidationFault", "Required param missing", "2020", "Line")
    for line in lines:
        detail = line.get("SalesItemLineDetail") or {}
        item = _by_id(("qbo_items",), (detail.get("ItemRef") or {}).get("value"))
        if line.get("DetailType") != "SalesItemLineDetail" or item is None or not item.active:
            return _fault(
                400,
                "ValidationFault",
                "Invalid Reference Id",
                "2500",
                "ItemRef",
                detail="Invalid Reference Id : Item element not found or inactive",
            )
        account = db.session.get(SandboxItem, int(item.extras.get("income_account") or 0))
        if account is None or not account.active:
            return _fault(
                400,
                "ValidationFault",
                "Invalid Reference Id",
                "2500",
                "IncomeAccountRef",
                detail="Invalid Reference Id : the item's income account is inactive",
            )
    invoice = SandboxInvoice(
        company_id=g.company.id,
        idempotency_key=f"qbo-{uuid.uuid4().hex}",
        payload={"dialect": "quickbooks", "entity": "Invoice", **body},
    )
    db.session.add(invoice)
    db.session.flush()
    return _remember("Invoice", {"Invoice": _bill_json(invoice)})


@api.post("/upload")
def upload():
    metadata = request.files.get("file_metadata_01")
    content = request.files.get("file_content_01")
    if metadata is None or content is None:
        return _fault(
            400, "ValidationFault", "Upload requires file_metadata_01 and file_content_01", "2020", "file"
        )
    try:
        attachable = json.loads(metadata.read())
        ref = attachable["AttachableRef"][0]["EntityRef"]
    except (ValueError, KeyError, IndexError, TypeError):
        return _fault(400, "ValidationFault", "Invalid Attachable metadata", "2010", "AttachableRef")
    invoice = _bill_by_id(ref.get("value"))
    if invoice is None or ref.get("type") != invoice.payload.get("entity", "Bill"):
        return _fault(400, "ValidationFault", "Invalid Reference Id", "2500", "AttachableRef")
    data = content.read()
    name = str(attachable.get("FileName") or content.filename or "piece-jointe")[:200]
    attachment = SandboxAttachment(
        invoice_id=invoice.id,
        filename=name,
        content_type=str(attachable.get("ContentType") or content.mimetype or "application/octet-stream")[
            :80
        ],
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
    )
    db.session.add(attachment)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return _fault(400, "ValidationFault", "Duplicate file name for this transaction", "6000", "FileName")
    return _ok({"AttachableResponse": [{"Attachable": _attachable_json(attachment, invoice)}]})


# --- queries on transactions --------------------------------------------------------------


def _conditions(where: str | None) -> list[str]:
    """The conditions of a WHERE clause, split on AND outside quoted values."""
    parts, current, quoted, index = [], "", False, 0
    text = where or ""
    while index < len(text):
        char = text[index]
        if char == "\\" and quoted:
            current += text[index : index + 2]
            index += 2
            continue
        if char == "'":
            quoted = not quoted
        if not quoted and re.match(r"(?i)\s+and\s+", text[index:]):
            parts.append(current)
            current = ""
            index += re.match(r"(?i)\s+and\s+", text[index:]).end()
            continue
        current += char
        index += 1
    if current.strip():
        parts.append(current)
    return [p.strip() for p in parts]


def _query_transactions(entity: str, where: str | None) -> Response:
    rows = [r for r in _bills() if r.payload.get("entity", "Bill") == entity]
    found = re.fullmatch(r"(?i)\s*docnumber\s*=\s*'([^']*)'\s*", where or "")
    if where and not found:
        return _fault(400, "ValidationFault", "QueryValidationError: unsupported condition", "4001", "query")
    if found:
        rows = [r for r in rows if r.payload.get("DocNumber") == found.group(1)]
    body = (
        {"Bill": [_bill_json(r) for r in rows], "startPosition": 1, "maxResults": len(rows)} if rows else {}
    )
    return _ok({"QueryResponse": body})


def _query_attachables(where: str | None) -> Response:
    found = re.fullmatch(r"(?i)\s*attachableref\.entityref\.value\s*=\s*'([^']*)'\s*", where or "")
    if not found:
        return _fault(400, "ValidationFault", "QueryValidationError: unsupported condition", "4001", "query")
    invoice = _bill_by_id(found.group(1))
    rows = []
    if invoice is not None:
        rows = db.session.scalars(
            select(SandboxAttachment).where(SandboxAttachment.invoice_id == invoice.id)
        ).all()
    body = (
        {
            "Attachable": [_attachable_json(a, invoice) for a in rows],
            "startPosition": 1,
            "maxResults": len(rows),
        }
        if rows
        else {}
    )
    return _ok({"QueryResponse": body})


def _bills() -> list[SandboxInvoice]:
    return [
        i
        for i in db.session.scalars(
            select(SandboxInvoice)
            .where(SandboxInvoice.company_id == g.company.id)
            .order_by(SandboxInvoice.id)
        )
        if (i.payload or {}).get("dialect") == "quickbooks"
    ]


def _bill_by_id(value) -> SandboxInvoice | None:
    number = to_id(value)
    if number is None:
        return None
    invoice = db.session.get(SandboxInvoice, number)
    return invoice if invoice is not None and invoice.company_id == g.company.id else None


def _by_id(kinds, value) -> SandboxItem | None:
    number = to_id(value)
    if number is None:
        return None
    item = db.session.get(SandboxItem, number)
    return item if item is not None and item.company_id == g.company.id and item.kind in kinds else None


# --- shapes ---------------------------------------------------------------------------------


def _meta(moment: datetime) -> dict:
    stamp = _iso(moment)
    return {"CreateTime": stamp, "LastUpdatedTime": stamp}


def _account_json(item: SandboxItem) -> dict:
    extras = item.extras or {}
    if item.kind == "payment_methods":
        kind, classification = ("Credit Card", "Liability") if item.code == "CB" else ("Bank", "Asset")
    else:
        code = item.code or ""
        kind, classification = {
            "expense": ("Expense", "Expense"),
            "revenue": ("Income", "Revenue"),
        }.get(
            extras.get("type"),
            ("Other Current Liability", "Liability")
            if code.startswith("4")
            else ("Other Current Asset", "Asset"),
        )
    return {
        "Id": str(item.id),
        "Name": item.name,
        "FullyQualifiedName": item.name,
        "AcctNum": item.code,
        "AccountType": kind,
        "Classification": classification,
        "Active": item.active,
        "SyncToken": "0",
        "MetaData": _meta(item.updated_at),
    }


def _party_json(item: SandboxItem) -> dict:
    extras = item.extras or {}
    body = {
        "Id": str(item.id),
        "DisplayName": item.name,
        "CompanyName": item.name,
        "PrintOnCheckName": item.name,
        "Active": item.active,
        "SyncToken": "0",
        "MetaData": _meta(item.updated_at),
    }
    if extras.get("email"):
        body["PrimaryEmailAddr"] = {"Address": extras["email"]}
    if item.vat_number:
        body["TaxIdentifier"] = "XXXXXXXX" + item.vat_number[-4:]  # masked on read, as QuickBooks does
    return body


def _tax_rate_json(item: SandboxItem) -> dict:
    return {
        "Id": str(item.id),
        "Name": item.name,
        "RateValue": float(item.rate or 0),
        "Active": item.active,
        "SyncToken": "0",
        "MetaData": _meta(item.updated_at),
    }


def _tax_code_json(item: SandboxItem) -> dict:
    detail = {
        "TaxRateDetail": [
            {
                "TaxRateRef": {"value": str(item.id), "name": item.name},
                "TaxTypeApplicable": "TaxOnAmount",
                "TaxOrder": 0,
            }
        ]
    }
    return {
        "Id": str(item.id),
        "Name": item.code or item.name,
        "Description": item.name,
        "Active": item.active,
        "Taxable": True,
        "PurchaseTaxRateList": detail,
        "SalesTaxRateList": detail,
        "SyncToken": "0",
        "MetaData": _meta(item.updated_at),
    }


def _class_json(item: SandboxItem) -> dict:
    axis = (item.extras or {}).get("axis")
    return {
        "Id": str(item.id),
        "Name": item.name,
        "FullyQualifiedName": f"{axis}:{item.name}" if axis else item.name,
        "SubClass": bool(axis),
        "Active": item.active,
        "SyncToken": "0",
        "MetaData": _meta(item.updated_at),
    }


def _item_json(item: SandboxItem) -> dict:
    return {
        "Id": str(item.id),
        "Name": item.name,
        "Type": (item.extras or {}).get("type", "Service"),
        "IncomeAccountRef": {"value": (item.extras or {}).get("income_account")},
        "Active": item.active,
        "SyncToken": "0",
        "MetaData": _meta(item.updated_at),
    }


def _bill_json(invoice: SandboxInvoice) -> dict:
    payload = invoice.payload
    total = sum(Decimal(str(li.get("Amount") or 0)) for li in payload.get("Line") or [])
    tax = Decimal(str((payload.get("TxnTaxDetail") or {}).get("TotalTax") or 0))
    party = "CustomerRef" if payload.get("entity") == "Invoice" else "VendorRef"
    return {
        "Id": str(invoice.id),
        "SyncToken": "0",
        "DocNumber": payload.get("DocNumber"),
        "TxnDate": payload.get("TxnDate"),
        "DueDate": payload.get("DueDate"),
        party: payload.get(party),
        "TotalAmt": float(total + tax),
        "Balance": float(total + tax),
        "Line": payload.get("Line"),
        "MetaData": _meta(invoice.created_at),
    }


def _attachable_json(attachment: SandboxAttachment, invoice: SandboxInvoice) -> dict:
    return {
        "Id": str(attachment.id),
        "FileName": attachment.filename,
        "ContentType": attachment.content_type,
        "Size": attachment.size,
        "AttachableRef": [
            {"EntityRef": {"type": invoice.payload.get("entity", "Bill"), "value": str(invoice.id)}}
        ],
        "SyncToken": "0",
        "MetaData": _meta(attachment.created_at),
    }


# --- requestid: QuickBooks answers a request sent again with the same requestid only once ----


def _replay(what: str) -> Response | None:
    key = request.args.get("requestid")
    if not key:
        return None
    stored = get_setting(_key_name(what, key))
    return _ok(stored) if stored is not None else None


def _remember(what: str, answer: dict) -> Response:
    key = request.args.get("requestid")
    if key:
        db.session.add(SandboxSetting(key=_key_name(what, key), value=answer))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        replay = _replay(what)
        return (
            replay if replay is not None else _fault(400, "ValidationFault", "Duplicate request", "6000", "")
        )
    return _ok(answer)


def _key_name(what: str, key: str) -> str:
    return "qbo-" + hashlib.sha256(f"{g.company.id}/{what}/{key}".encode()).hexdigest()[:32]


# --- faults, in QuickBooks' words -----------------------------------------------------------


def _ok(body: dict) -> Response:
    return jsonify({**body, "time": _iso(utcnow(), millis=True)})


def _fault(status: int, kind: str, message: str, code: str, element: str, *, detail: str = "") -> Response:
    error = {"Message": message, "Detail": detail or message, "code": code}
    if element:
        error["element"] = element
    response = jsonify({"Fault": {"Error": [error], "type": kind}, "time": _iso(utcnow(), millis=True)})
    response.status_code = status
    return response


def _auth_fault(detail: str) -> Response:
    # The 401 body QuickBooks sends: lower-case keys, unlike its other faults.
    response = jsonify(
        {
            "fault": {
                "error": [
                    {
                        "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                        "detail": detail,
                        "code": "3200",
                    }
                ],
                "type": "AUTHENTICATION",
            },
            "time": _iso(utcnow(), millis=True),
        }
    )
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Bearer realm="Intuit", error="invalid_token"'
    return response


def _faults() -> Response | None:
    """Injected faults dressed as QuickBooks': 429 ThrottleExceeded, without Retry-After."""
    faulted = apply_faults()
    if faulted is None or faulted.status_code != 429:
        return faulted
    return _fault(
        429,
        "SERVICE",
        "message=ThrottleExceeded; errorCode=003001; statusCode=429",
        "3001",
        "",
        detail="The request limit was reached.",
    )


def _iso(moment: datetime, *, millis: bool = False) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds" if millis else "seconds")
