"""The sandbox speaking Xero: identity endpoints, GET /connections and the Accounting API 2.0 subset
Raccord uses, in Xero's own field names, paging, dates, error bodies and rate-limit headers.

URLs mirror Xero's: /sandbox/xero/identity/connect/{authorize,token,revocation} for
login.xero.com and identity.xero.com, /sandbox/xero/connections for api.xero.com/connections, and
/sandbox/xero/api.xro/2.0/... for the Accounting API. Responses follow the published description
(shared/specs/xero_accounting.yaml), which the tests validate them against.

How the sandbox's lists read in Xero:
- accounts → Accounts (Type EXPENSE for class 6, REVENUE for class 7, CURRLIAB / CURRENT for the
  balance accounts), payment methods → Accounts of Type BANK;
- suppliers and customers → Contacts (IsSupplier / IsCustomer), archived ones only with
  includeArchived=true, paged by `page` and `pageSize` with a `pagination` object;
- tax rates → TaxRates (TaxType is the sandbox code, EffectiveRate the rate);
- tracking → TrackingCategories, one per axis, with the items as Options.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from flask import Blueprint, Response, g, jsonify, request
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from sandbox import oauth
from sandbox.columns import utcnow
from sandbox.csrf import sandbox_csrf
from sandbox.dialects import check_bearer, company_for_guid, tenant_guid
from sandbox.faults import apply_faults
from sandbox.inputs import page_offset, to_int, to_moment
from sandbox.models import (
    SandboxAttachment,
    SandboxCompany,
    SandboxGrant,
    SandboxInvoice,
    SandboxItem,
    SandboxSetting,
)
from webapp.extensions import db

bp = Blueprint("sandbox_xero", __name__, url_prefix="/xero")
# Token lifetimes as the vendor's (https://developer.xero.com/documentation/guides/oauth2/token-types).
ACCESS_TTL, REFRESH_TTL = 30 * 60, 60 * 86400

MAX_PAGE_SIZE = 1000  # https://developer.xero.com/documentation/api/accounting/contacts (pageSize ≤ 1000)
DEFAULT_PAGE_SIZE = 100


# --- identity ---------------------------------------------------------------------------------


@bp.route("/identity/connect/authorize", methods=["GET", "POST"])
def authorize():
    return oauth.authorize()


@bp.post("/identity/connect/token")
@sandbox_csrf.exempt
def token():
    return oauth.issue_token_as(ACCESS_TTL, REFRESH_TTL)


@bp.post("/identity/connect/revocation")
@sandbox_csrf.exempt
def revocation():
    return oauth.revoke_token()


def _connection_json(grant: SandboxGrant) -> dict:
    company_guid = tenant_guid(grant.company_id)
    name = db.session.get(SandboxCompany, grant.company_id).name
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"xero-connection-{grant.id}")),
        "authEventId": str(uuid.uuid5(uuid.NAMESPACE_OID, f"xero-auth-event-{grant.id}")),
        "tenantId": company_guid,
        "tenantType": "ORGANISATION",
        "tenantName": name,
        "createdDateUtc": _iso(grant.created_at),
        "updatedDateUtc": _iso(grant.created_at),
    }


@bp.get("/connections")
@bp.get("/Connections")
@sandbox_csrf.exempt
def connections():
    """The tenants this token's user connected to the app (in the sandbox: the grant's company)."""
    faulted = _faults()
    if faulted is not None:
        return faulted
    check = check_bearer()
    if check.problem:
        return _unauthorized(check)
    grants = db.session.scalars(
        select(SandboxGrant).where(
            SandboxGrant.client_id == check.token.client_id,
            SandboxGrant.company_id == check.token.company_id,
            SandboxGrant.revoked_at.is_(None),
        )
    ).all()
    wanted = request.args.get("authEventId")
    rows = [_connection_json(grant) for grant in grants]
    if wanted:
        rows = [r for r in rows if r["authEventId"] == wanted]
    return jsonify(rows)


@bp.delete("/connections/<connection_id>")
@bp.delete("/Connections/<connection_id>")
@sandbox_csrf.exempt
def disconnect(connection_id: str):
    check = check_bearer()
    if check.problem:
        return _unauthorized(check)
    for grant in db.session.scalars(
        select(SandboxGrant).where(
            SandboxGrant.client_id == check.token.client_id, SandboxGrant.revoked_at.is_(None)
        )
    ):
        if _connection_json(grant)["id"] == connection_id:
            grant.revoked_at = utcnow()
            db.session.commit()
            return Response(status=204)
    return _problem(404, "Not Found", "Connection not found")


# --- the Accounting API -----------------------------------------------------------------------

api = Blueprint("sandbox_xero_api", __name__, url_prefix="/xero/api.xro/2.0")
sandbox_csrf.exempt(api)


@api.before_request
def authenticate():
    faulted = _faults()
    if faulted is not None:
        return faulted
    check = check_bearer()
    if check.problem == "revoked":
        # A disconnected tenant: Xero answers 403 AuthenticationUnsuccessful.
        return _problem(403, "Forbidden", "AuthenticationUnsuccessful")
    if check.problem:
        return _unauthorized(check)
    tenant = request.headers.get("xero-tenant-id", "")
    if not tenant or company_for_guid(tenant) is None or tenant_guid(check.company.id) != tenant:
        return _problem(403, "Forbidden", "AuthenticationUnsuccessful")
    g.company = check.company
    return None


@api.get("/Accounts")
def accounts():
    items = _items(("accounts", "payment_methods"), archived=True)
    return _ok({"Accounts": [_account_json(i) for i in items]})


@api.get("/Contacts")
def contacts():
    query = _items_query(("suppliers", "customers"))
    if request.args.get("includeArchived", "").lower() != "true":
        query = query.where(SandboxItem.active.is_(True))
    term = (request.args.get("searchTerm") or "").strip()
    if term:
        pattern = f"%{term.replace('%', '').replace('_', '')}%"
        query = query.where(or_(SandboxItem.name.ilike(pattern), SandboxItem.code.ilike(pattern)))
    where = request.args.get("where")
    if where:
        found = re.fullmatch(r'\s*(TaxNumber|CompanyNumber|Name)\s*==\s*"([^"]*)"\s*', where)
        if not found:
            return _validation("The where clause is not supported by this sandbox", "where")
        column = {
            "TaxNumber": SandboxItem.vat_number,
            "CompanyNumber": SandboxItem.siren,
            "Name": SandboxItem.name,
        }
        query = query.where(column[found.group(1)] == found.group(2))
    page = to_int(request.args.get("page"), 1)
    size = to_int(request.args.get("pageSize"), DEFAULT_PAGE_SIZE)
    if page is None or size is None:
        return _validation("page and pageSize must be integers", "page")
    page, size = max(1, page), min(MAX_PAGE_SIZE, max(1, size))
    if page_offset(page, size) is None:
        return _validation("page is out of range", "page")
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(query.order_by(SandboxItem.id).offset((page - 1) * size).limit(size)).all()
    return _ok(
        {
            "pagination": {
                "page": page,
                "pageSize": size,
                "pageCount": (total + size - 1) // size,
                "itemCount": total,
            },
            "Contacts": [_contact_json(i) for i in rows],
        }
    )


@api.get("/TaxRates")
def tax_rates():
    return _ok({"TaxRates": [_tax_rate_json(i) for i in _items(("tax_rates",), archived=True)]})


@api.get("/TrackingCategories")
def tracking_categories():
    archived = request.args.get("includeArchived", "").lower() == "true"
    axes: dict[str, list[SandboxItem]] = {}
    for item in _items(("tracking_categories",), archived=True):
        axes.setdefault((item.extras or {}).get("axis") or "Analytique", []).append(item)
    categories = []
    for axis, options in axes.items():
        category_id = str(uuid.uuid5(uuid.NAMESPACE_OID, f"{g.company.id}/tracking/{axis}"))
        active = any(o.active for o in options)
        if not active and not archived:
            continue
        categories.append(
            {
                "TrackingCategoryID": category_id,
                "Name": axis,
                "Status": "ACTIVE" if active else "ARCHIVED",
                "Options": [
                    {
                        "TrackingOptionID": o.guid,
                        "Name": o.name,
                        "Status": "ACTIVE" if o.active else "ARCHIVED",
                        "TrackingCategoryID": category_id,
                    }
                    for o in options
                    if o.active or archived
                ],
            }
        )
    return _ok({"TrackingCategories": categories})


@api.put("/Contacts")
def create_contacts():
    body = request.get_json(silent=True)
    replay = _replay("contacts")
    if replay is not None:
        return replay
    if not isinstance(body, dict) or not isinstance(body.get("Contacts"), list) or not body["Contacts"]:
        return _validation("A Contacts array is required", "Contacts")
    created = []
    for raw in body["Contacts"]:
        name = str((raw or {}).get("Name") or "").strip()
        if not name:
            return _validation("The contact name must be specified.", "Name")
        duplicate = db.session.scalar(
            select(SandboxItem.id).where(
                SandboxItem.company_id == g.company.id,
                SandboxItem.kind.in_(("suppliers", "customers")),
                SandboxItem.active.is_(True),
                func.lower(SandboxItem.name) == name.lower(),
            )
        )
        if duplicate is not None:
            return _validation(
                f"The contact name {name} is already assigned to another contact. "
                "The contact name must be unique across all active contacts.",
                "Name",
            )
        item = SandboxItem(
            company_id=g.company.id,
            kind="customers" if raw.get("IsCustomer") and not raw.get("IsSupplier") else "suppliers",
            external_id=f"xero-{uuid.uuid4().hex[:12]}",
            name=name[:300],
            vat_number=raw.get("TaxNumber") or None,
            siren=raw.get("CompanyNumber") or None,
            creation_key=request.headers.get("Idempotency-Key") or None,
            extras={"unused": True},  # neither supplier nor customer until a bill or invoice uses it
            updated_at=utcnow(),
        )
        db.session.add(item)
        created.append(item)
    db.session.flush()
    answer = {
        "Id": str(uuid.uuid4()),
        "Status": "OK",
        "ProviderName": "Raccord",
        "DateTimeUTC": _msdate(utcnow()),
    }
    answer["Contacts"] = [_contact_json(i) for i in created]
    return _commit_and_remember("contacts", answer)


@api.put("/Invoices")
def create_invoices():
    replay = _replay("invoices")
    if replay is not None:
        return replay
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("Invoices"), list) or not body["Invoices"]:
        return _validation("An Invoices array is required", "Invoices")
    created = []
    for raw in body["Invoices"]:
        problems = _invoice_problems(raw)
        if problems:
            return _validation_elements(raw, problems)
        contact = _by_guid(("suppliers", "customers"), raw["Contact"]["ContactID"])
        if (contact.extras or {}).get("unused"):
            contact.kind = "suppliers" if raw["Type"] == "ACCPAY" else "customers"
            contact.extras = {k: v for k, v in contact.extras.items() if k != "unused"}
            contact.updated_at = utcnow()
        invoice = SandboxInvoice(
            company_id=g.company.id,
            idempotency_key=request.headers.get("Idempotency-Key") or f"xero-{uuid.uuid4().hex}",
            payload={"dialect": "xero", **raw},
        )
        db.session.add(invoice)
        created.append((invoice, raw))
    db.session.flush()
    answer = {
        "Id": str(uuid.uuid4()),
        "Status": "OK",
        "ProviderName": "Raccord",
        "DateTimeUTC": _msdate(utcnow()),
        "Invoices": [_invoice_json(invoice, raw) for invoice, raw in created],
    }
    return _commit_and_remember("invoices", answer)


@api.put("/Invoices/<invoice_id>/Attachments/<filename>")
@api.post("/Invoices/<invoice_id>/Attachments/<filename>")
def attach(invoice_id: str, filename: str):
    invoice = db.session.scalar(
        select(SandboxInvoice).where(
            SandboxInvoice.company_id == g.company.id, SandboxInvoice.guid == invoice_id
        )
    )
    if invoice is None:
        return _problem(404, "Not Found", "The resource you're looking for cannot be found")
    data = request.get_data(cache=False)
    if len(data) > 10 * 1024 * 1024:
        return _problem(413, "Request Entity Too Large", "Attachments are limited to 10 MB")
    # Xero takes the raw bytes (application/octet-stream) and knows the type by the file name.
    content_type = "application/pdf" if filename.lower().endswith(".pdf") else "application/octet-stream"
    attachment = db.session.scalar(
        select(SandboxAttachment).where(
            SandboxAttachment.invoice_id == invoice.id, SandboxAttachment.filename == filename[:200]
        )
    )
    if attachment is None:
        attachment = SandboxAttachment(invoice_id=invoice.id, filename=filename[:200])
        db.session.add(attachment)
    attachment.content_type = content_type
    attachment.data = data
    attachment.size = len(data)
    attachment.sha256 = hashlib.sha256(data).hexdigest()
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return _problem(409, "Conflict", "Concurrent upload")
    return _ok(
        {
            "Attachments": [
                {
                    "AttachmentID": str(uuid.uuid5(uuid.NAMESPACE_OID, f"attachment-{attachment.id}")),
                    "FileName": attachment.filename,
                    "Url": f"{request.host_url}sandbox/xero/api.xro/2.0/Invoices/{invoice.guid}/Attachments/"
                    f"{attachment.filename}",
                    "MimeType": content_type,
                    "ContentLength": attachment.size,
                }
            ]
        }
    )


# --- shapes ---------------------------------------------------------------------------------


def _items_query(kinds: tuple[str, ...]):
    query = select(SandboxItem).where(SandboxItem.company_id == g.company.id, SandboxItem.kind.in_(kinds))
    since = request.headers.get("If-Modified-Since")
    if since:
        moment = _parse_since(since)
        if moment is not None:
            query = query.where(SandboxItem.updated_at > moment)
    return query


def _items(kinds: tuple[str, ...], *, archived: bool) -> list[SandboxItem]:
    query = _items_query(kinds)
    if not archived:
        query = query.where(SandboxItem.active.is_(True))
    return list(db.session.scalars(query.order_by(SandboxItem.id)))


def _account_json(item: SandboxItem) -> dict:
    extras = item.extras or {}
    if item.kind == "payment_methods":
        kind, extra = "BANK", {"BankAccountType": "CREDITCARD" if item.code == "CB" else "BANK"}
    else:
        code = item.code or ""
        kind = {"expense": "EXPENSE", "revenue": "REVENUE"}.get(extras.get("type"), "")
        kind = kind or ("CURRLIAB" if code.startswith("4") else "CURRENT")
        extra = {
            "Class": {"EXPENSE": "EXPENSE", "REVENUE": "REVENUE", "CURRLIAB": "LIABILITY"}.get(kind, "ASSET")
        }
        if extras.get("reverse_charge"):
            extra["ReportingCode"] = "LIA.CUR.TAX.REV"  # the sandbox's marker of a reverse-charge VAT account
    return {
        "AccountID": item.guid,
        "Code": item.code,
        "Name": item.name,
        "Type": kind,
        "Status": "ACTIVE" if item.active else "ARCHIVED",
        "UpdatedDateUTC": _msdate(item.updated_at),
        **extra,
    }


def _contact_json(item: SandboxItem) -> dict:
    extras = item.extras or {}
    body = {
        "ContactID": item.guid,
        "ContactNumber": item.code,
        "ContactStatus": "ACTIVE" if item.active else "ARCHIVED",
        "Name": item.name,
        "TaxNumber": item.vat_number,
        "CompanyNumber": item.siren,
        "EmailAddress": extras.get("email"),
        "BankAccountDetails": extras.get("iban"),
        "IsSupplier": item.kind == "suppliers" and not extras.get("unused"),
        "IsCustomer": item.kind == "customers" and not extras.get("unused"),
        "UpdatedDateUTC": _msdate(item.updated_at),
    }
    return {k: v for k, v in body.items() if v is not None}


def _tax_rate_json(item: SandboxItem) -> dict:
    rate = float(item.rate or 0)
    return {
        "Name": item.name,
        "TaxType": item.code,
        "Status": "ACTIVE" if item.active else "DELETED",
        "ReportTaxType": "INPUT",
        "CanApplyToExpenses": True,
        "CanApplyToRevenue": True,
        "DisplayTaxRate": rate,
        "EffectiveRate": rate,
        "TaxComponents": [{"Name": item.name, "Rate": rate, "IsCompound": False, "IsNonRecoverable": False}],
    }


def _invoice_problems(raw) -> list[str]:
    if not isinstance(raw, dict):
        return ["An invoice must be an object"]
    problems = []
    if raw.get("Type") not in ("ACCPAY", "ACCREC"):
        problems.append("Invoice Type must be ACCPAY or ACCREC")
    contact_id = ((raw.get("Contact") or {}) if isinstance(raw.get("Contact"), dict) else {}).get("ContactID")
    contact = _by_guid(("suppliers", "customers"), contact_id) if contact_id else None
    if contact is None:
        problems.append("A Contact must be specified with a valid ContactID")
    elif not contact.active:
        problems.append(f"The contact {contact.name} has been archived and cannot be used")
    lines = raw.get("LineItems")
    if not isinstance(lines, list) or not lines:
        problems.append("Invoices must have at least one line item")
        return problems
    for line in lines:
        code = str((line or {}).get("AccountCode") or "")
        account = _by_code(("accounts",), code) if code else None
        if account is None or not account.active:
            problems.append(
                f"Account code '{code}' has been archived or has been deleted. "
                "Each line item must reference a valid account."
            )
        tax_type = (line or {}).get("TaxType")
        if tax_type:
            tax = _by_code(("tax_rates",), str(tax_type))
            if tax is None or not tax.active:
                problems.append(
                    f"The TaxType code '{tax_type}' does not exist or cannot be used with this account code"
                )
        try:
            Decimal(str((line or {}).get("UnitAmount")))
        except (InvalidOperation, ValueError):
            problems.append("Line item UnitAmount must be a number")
    return problems


def _invoice_json(invoice: SandboxInvoice, raw: dict) -> dict:
    lines = raw.get("LineItems") or []
    sub_total = sum(
        Decimal(str(li.get("UnitAmount") or 0)) * Decimal(str(li.get("Quantity") or 1)) for li in lines
    )
    tax = sum(Decimal(str(li.get("TaxAmount") or 0)) for li in lines)
    body = {
        "InvoiceID": invoice.guid,
        "Type": raw.get("Type"),
        "InvoiceNumber": raw.get("InvoiceNumber"),
        "Reference": raw.get("Reference"),
        "Contact": {"ContactID": raw["Contact"]["ContactID"]},
        "Date": raw.get("Date"),
        "DueDate": raw.get("DueDate"),
        "Status": raw.get("Status") or "DRAFT",
        "LineAmountTypes": raw.get("LineAmountTypes") or "Exclusive",
        "CurrencyCode": raw.get("CurrencyCode") or "EUR",
        "SubTotal": float(sub_total),
        "TotalTax": float(tax),
        "Total": float(sub_total + tax),
        "HasAttachments": False,
        "UpdatedDateUTC": _msdate(utcnow()),
    }
    return {k: v for k, v in body.items() if v is not None}


def _by_guid(kinds, guid: str) -> SandboxItem | None:
    return db.session.scalar(
        select(SandboxItem).where(
            SandboxItem.company_id == g.company.id, SandboxItem.kind.in_(kinds), SandboxItem.guid == guid
        )
    )


def _by_code(kinds, code: str) -> SandboxItem | None:
    return db.session.scalar(
        select(SandboxItem).where(
            SandboxItem.company_id == g.company.id, SandboxItem.kind.in_(kinds), SandboxItem.code == code
        )
    )


# --- idempotency: Xero replays the first answer to a request sent again with the same key -----


def _replay(what: str) -> Response | None:
    key = request.headers.get("Idempotency-Key")
    if not key:
        return None
    from sandbox.faults import get_setting

    stored = get_setting(_key_name(what, key))
    if stored is None:
        return None
    return _ok(stored)


def _commit_and_remember(what: str, answer: dict) -> Response:
    key = request.headers.get("Idempotency-Key")
    if key:
        db.session.add(SandboxSetting(key=_key_name(what, key), value=answer))
    try:
        db.session.commit()
    except IntegrityError:  # the same key at the same moment: the first one's answer stands
        db.session.rollback()
        replay = _replay(what)
        if replay is not None:
            return replay
        return _problem(409, "Conflict", "Concurrent request with the same Idempotency-Key")
    return _ok(answer)


def _key_name(what: str, key: str) -> str:
    digest = hashlib.sha256(f"{g.company.id}/{what}/{key}".encode()).hexdigest()[:28]  # key ≤ 40
    return f"xero-idem-{digest}"


# --- errors, in Xero's words ------------------------------------------------------------------


def _ok(body) -> Response:
    response = jsonify(body)
    response.headers["X-MinLimit-Remaining"] = "59"
    response.headers["X-DayLimit-Remaining"] = "4999"
    response.headers["X-AppMinLimit-Remaining"] = "9999"
    return response


def _problem(status: int, title: str, detail: str) -> Response:
    response = jsonify({"Title": title, "Status": status, "Detail": detail, "Instance": str(uuid.uuid4())})
    response.status_code = status
    return response


def _unauthorized(check) -> Response:
    if check.problem == "expired" and check.expired_at:
        moment = datetime.fromtimestamp(check.expired_at, UTC).strftime("%m/%d/%Y %H:%M:%S")
        detail = f"TokenExpired: token expired at {moment}"
    else:
        detail = "TokenInvalid: The access token is invalid"
    response = _problem(401, "Unauthorized", detail)
    response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response


def _validation(message: str, _field: str) -> Response:
    response = jsonify({"ErrorNumber": 10, "Type": "ValidationException", "Message": message})
    response.status_code = 400
    return response


def _validation_elements(raw, problems: list[str]) -> Response:
    element = dict(raw) if isinstance(raw, dict) else {}
    element["ValidationErrors"] = [{"Message": p} for p in problems]
    response = jsonify(
        {
            "ErrorNumber": 10,
            "Type": "ValidationException",
            "Message": "A validation exception occurred",
            "Elements": [element],
        }
    )
    response.status_code = 400
    return response


def _faults() -> Response | None:
    """The sandbox's injected faults, dressed as Xero's: 429 carries X-Rate-Limit-Problem."""
    faulted = apply_faults()
    if faulted is None or faulted.status_code != 429:
        return faulted
    response = Response(status=429)
    response.headers["Retry-After"] = faulted.headers.get("Retry-After", "1")
    response.headers["X-Rate-Limit-Problem"] = "minute"
    response.headers["X-MinLimit-Remaining"] = "0"
    return response


def _msdate(moment: datetime) -> str:
    """Xero's JSON dates: /Date(milliseconds+0000)/."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"/Date({int(moment.timestamp() * 1000)}+0000)/"


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _parse_since(value: str) -> datetime | None:
    return to_moment(value, http_date=True)
