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
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Blueprint, Response, g, jsonify, request
from joserfc import jwt as jose_jwt
from joserfc.jwk import RSAKey
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from sandbox import oauth
from sandbox.columns import utcnow
from sandbox.csrf import sandbox_csrf
from sandbox.dialects import check_bearer, tenant_guid
from sandbox.faults import apply_faults, get_setting
from sandbox.inputs import page_offset, to_int, to_moment
from sandbox.models import (
    SandboxAttachment,
    SandboxCompany,
    SandboxConnection,
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
# One consent may authorise several organisations; each becomes (or updates) one connection, and
# the access token is a JWT whose authentication_event_id is the authEventId of the connections that
# consent made or updated (https://developer.xero.com/documentation/guides/oauth2/auth-flow, "Check
# the tenants you're authorized to access"; claims: .../guides/oauth2/token-types).

REFRESH_GRACE = 30 * 60  # the replaced refresh token still works this long (token-types page)
AUDIENCE = "https://identity.xero.com/resources"


@bp.route("/identity/connect/authorize", methods=["GET", "POST"])
def authorize():
    response = oauth.authorize(several=True)
    location = response.headers.get("Location", "") if hasattr(response, "headers") else ""
    if "code=" in location and g.get("consent_auth_event"):
        oauth.record_connections(
            request.args.get("client_id", ""), g.get("consent_companies") or [], g.consent_auth_event
        )
        db.session.commit()
    return response


@bp.post("/identity/connect/token")
@sandbox_csrf.exempt
def token():
    return oauth.issue_token_as(ACCESS_TTL, REFRESH_TTL, jwt=_access_jwt, refresh_grace=REFRESH_GRACE)


@bp.post("/identity/connect/revocation")
@sandbox_csrf.exempt
def revocation():
    return oauth.revoke_token()


@bp.get("/identity/.well-known/openid-configuration/jwks")
@sandbox_csrf.exempt
def jwks():
    """The public key that signs the access tokens, as Xero publishes its own."""
    key = _signing_key()
    public = {**key.as_dict(private=False), "kid": key.thumbprint(), "use": "sig", "alg": "RS256"}
    return jsonify({"keys": [public]})


def _access_jwt(*, client, user, scope: str, ttl: int) -> str:
    companies, auth_event = g.get("token_consent") or ([user.id], None)
    now = int(time.time())
    user_id = str(uuid.uuid5(uuid.NAMESPACE_OID, f"xero-user-{user.owner or user.id}"))
    session_id = uuid.uuid4().hex
    claims = {
        "nbf": now,
        "exp": now + ttl,
        "iss": f"{request.host_url}sandbox/xero/identity",
        "aud": AUDIENCE,
        "client_id": client.client_id,
        "sub": uuid.uuid5(uuid.NAMESPACE_OID, user_id).hex,
        "auth_time": now,
        "xero_userid": user_id,
        "global_session_id": session_id,
        "sid": session_id,
        "jti": uuid.uuid4().hex,
        "authentication_event_id": auth_event or "",
        "scope": (scope or "").split(),
        "amr": ["pwd"],
    }
    key = _signing_key()
    header = {"alg": "RS256", "kid": key.thumbprint(), "typ": "JWT"}
    return jose_jwt.encode(header, claims, key)


_keys: dict[str, RSAKey] = {}


def _signing_key():
    """The RSA key that signs access tokens: made once per sandbox database, kept in its settings."""
    url = str(db.engine.url)
    if url not in _keys:
        pem = get_setting(KEY_SETTING)
        if pem is None:
            made = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = made.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode()
            try:  # on a connection of its own: the token request's transaction stays as it is
                with db.engine.begin() as connection:
                    connection.execute(SandboxSetting.__table__.insert().values(key=KEY_SETTING, value=pem))
            except IntegrityError:  # another process made it first: theirs it is
                pass
            db.session.expire_all()
            pem = get_setting(KEY_SETTING)
        _keys[url] = RSAKey.import_key(pem)
    return _keys[url]


KEY_SETTING = "xero_token_signing_key"


def _connection_json(connection: SandboxConnection, company: SandboxCompany) -> dict:
    return {
        "id": connection.id,
        "authEventId": connection.auth_event_id,
        "tenantId": tenant_guid(company.id),
        "tenantType": "ORGANISATION",
        "tenantName": company.name,
        "createdDateUtc": _iso(connection.created_at),
        "updatedDateUtc": _iso(connection.updated_at),
    }


def _connections(check) -> list[tuple[SandboxConnection, SandboxCompany]]:
    """The connections of the token's user to this app: every organisation of theirs connected by
    any consent (a Xero token reaches them all; the xero-tenant-id header says which)."""
    owner = check.company.owner
    query = (
        select(SandboxConnection, SandboxCompany)
        .join(SandboxCompany, SandboxCompany.id == SandboxConnection.company_id)
        .where(SandboxConnection.client_id == check.token.client_id)
        .order_by(SandboxConnection.created_at, SandboxConnection.id)
    )
    if owner:
        query = query.where(SandboxCompany.owner == owner)
    else:
        query = query.where(SandboxCompany.id.in_(check.grant.companies))
    return [(connection, company) for connection, company in db.session.execute(query)]


@bp.get("/connections")
@bp.get("/Connections")
@sandbox_csrf.exempt
def connections():
    faulted = _faults()
    if faulted is not None:
        return faulted
    check = check_bearer()
    if check.problem:
        return _unauthorized(check)
    wanted = request.args.get("authEventId")
    rows = [
        _connection_json(connection, company)
        for connection, company in _connections(check)
        if not wanted or connection.auth_event_id == wanted
    ]
    return jsonify(rows)


@bp.delete("/connections/<connection_id>")
@bp.delete("/Connections/<connection_id>")
@sandbox_csrf.exempt
def disconnect(connection_id: str):
    check = check_bearer()
    if check.problem:
        return _unauthorized(check)
    for connection, _company in _connections(check):
        if connection.id == connection_id:
            db.session.delete(connection)
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
    company = next((c for _, c in _connections(check) if tenant and tenant_guid(c.id) == tenant), None)
    if company is None:  # not an organisation this user connected to the app
        return _problem(403, "Forbidden", "AuthenticationUnsuccessful")
    g.company = company
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
