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

Every list takes `where` and `order` on the fields named below (Name=="…", ==/!= with text, true,
false, null or GUID("…"), .Contains/.StartsWith/.EndsWith("…"), joined by AND or &&; `order` by
fields, ASC or DESC); any other field or syntax is answered with Xero's QueryParseException.

PUT /Contacts and PUT /Invoices read each field as Xero does (sandbox/dialects/xero_input.py:
types, Xero's lengths, finite numbers rounded to its precision, dates as YYYY-MM-DD, ISO or
/Date(…)/) and create all the elements or none; a refusal is Xero's 400 ValidationException, each
element as read with its ValidationErrors. An invoice is answered as Xero answers one
(https://developer.xero.com/documentation/api/accounting/invoices): its dates in Xero's JSON form
(https://developer.xero.com/documentation/api/requests-and-responses), each line with its
LineItemID, LineAmount and TaxAmount, the tax computed and rounded line by line
(https://developer.xero.com/documentation/api-guides/rounding-in-xero), and SubTotal, TotalTax and
Total the sums of those lines.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

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
from sandbox.dialects.xero_input import (
    MAX_NUMBER,
    TWO_PLACES,
    QueryError,
    Reading,
    is_guid,
    matches,
    money,
    msdate,
    ordered,
    parse_order,
    parse_where,
    to_decimal,
)
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
from sandbox.webhooks import announce
from webapp.extensions import db

bp = Blueprint("sandbox_xero", __name__, url_prefix="/xero")
# Token lifetimes as the vendor's (https://developer.xero.com/documentation/guides/oauth2/token-types).
ACCESS_TTL, REFRESH_TTL = 30 * 60, 60 * 86400

# Contacts come 100 a page, up to 1000 with pageSize
# (https://developer.xero.com/documentation/api/accounting/contacts).
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
#: Elements created by one PUT: Xero asks for batches of at most 50
#: (https://developer.xero.com/documentation/api/accounting/invoices, "up to 50" [to confirm]).
MAX_ELEMENTS = 50


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
    _companies, auth_event = g.get("token_consent") or ([user.id], None)
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
    if wanted:
        try:
            wanted = str(uuid.UUID(wanted))
        except ValueError:
            return _problem(400, "Bad Request", "authEventId must be a GUID")
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


#: What `where` and `order` read on each list (Xero takes any field; the dialect these, and answers
#: any other as Xero answers a field it does not know, a QueryParseException).
ACCOUNT_FIELDS = frozenset(
    {
        "AccountID",
        "Code",
        "Name",
        "Type",
        "Status",
        "Class",
        "BankAccountType",
        "ReportingCode",
        "UpdatedDateUTC",
    }
)
CONTACT_FIELDS = frozenset(
    {
        "ContactID",
        "ContactNumber",
        "ContactStatus",
        "Name",
        "TaxNumber",
        "CompanyNumber",
        "EmailAddress",
        "IsSupplier",
        "IsCustomer",
        "UpdatedDateUTC",
    }
)
TAX_RATE_FIELDS = frozenset({"Name", "TaxType", "Status", "ReportTaxType", "EffectiveRate", "DisplayTaxRate"})
TRACKING_FIELDS = frozenset({"TrackingCategoryID", "Name", "Status"})


@api.get("/Accounts")
def accounts():
    rows = [_account_json(i) for i in _items(("accounts", "payment_methods"), archived=True)]
    return _listed("Accounts", rows, ACCOUNT_FIELDS, "Account")


@api.get("/Contacts")
def contacts():
    """Contacts, paged (https://developer.xero.com/documentation/api/accounting/contacts): `page`
    from 1, `pageSize` up to 1000 (100 when absent), archived ones only with includeArchived=true,
    `IDs`, `searchTerm`, `where` and `order`, If-Modified-Since."""
    try:
        conditions = _where(CONTACT_FIELDS, "Contact")
        keys = _order(CONTACT_FIELDS, "Contact")
    except QueryError as error:
        return _query_error(error)
    page = to_int(request.args.get("page"), 1)
    size = to_int(request.args.get("pageSize"), DEFAULT_PAGE_SIZE)
    if page is None or size is None or page_offset(max(1, page), min(MAX_PAGE_SIZE, max(1, size))) is None:
        return _validation(["page and pageSize must be whole numbers within range."])
    page, size = max(1, page), min(MAX_PAGE_SIZE, max(1, size))
    query = _items_query(("suppliers", "customers"))
    if request.args.get("includeArchived", "").lower() != "true":
        query = query.where(SandboxItem.active.is_(True))
    ids = [i.strip().lower() for i in (request.args.get("IDs") or "").split(",") if i.strip()]
    if ids:
        if len(ids) > MAX_PAGE_SIZE or not all(is_guid(i) for i in ids):
            return _query_error(QueryError("IDs must be a comma separated list of GUIDs"))
        query = query.where(func.lower(SandboxItem.guid).in_(ids))
    term = (request.args.get("searchTerm") or "").strip()
    if term:
        pattern = f"%{term.replace('%', '').replace('_', '')}%"
        query = query.where(or_(SandboxItem.name.ilike(pattern), SandboxItem.code.ilike(pattern)))
    if conditions or keys:
        # Filtered or sorted on the answer's own fields: read whole, then paged (a sandbox's lists
        # are small enough; the plain reads below stay paged by the database).
        rows = [_contact_json(i) for i in db.session.scalars(query.order_by(SandboxItem.id))]
        rows = ordered([r for r in rows if matches(r, conditions)], keys)
        total = len(rows)
        rows = rows[(page - 1) * size : page * size]
    else:
        total = db.session.scalar(select(func.count()).select_from(query.subquery()))
        items = db.session.scalars(query.order_by(SandboxItem.id).offset((page - 1) * size).limit(size))
        rows = [_contact_json(i) for i in items]
    return _ok(
        {
            **_envelope(),
            "pagination": {
                "page": page,
                "pageSize": size,
                "pageCount": (total + size - 1) // size,
                "itemCount": total,
            },
            "Contacts": rows,
        }
    )


@api.get("/TaxRates")
def tax_rates():
    rows = [_tax_rate_json(i) for i in _items(("tax_rates",), archived=True)]
    return _listed("TaxRates", rows, TAX_RATE_FIELDS, "TaxRate")


@api.get("/TrackingCategories")
def tracking_categories():
    archived = request.args.get("includeArchived", "").lower() == "true"
    axes: dict[str, list[SandboxItem]] = {}
    for item in _items(("tracking_categories",), archived=True):
        axes.setdefault((item.extras or {}).get("axis") or "Analytique", []).append(item)
    categories = []
    for axis, options in axes.items():
        category_id = _tracking_category_id(axis)
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
    return _listed("TrackingCategories", categories, TRACKING_FIELDS, "TrackingCategory")


def _listed(name: str, rows: list[dict], fields: frozenset[str], type_name: str) -> Response:
    """An unpaged list, filtered by `where` and sorted by `order` on the fields the dialect reads."""
    try:
        conditions = _where(fields, type_name)
        keys = _order(fields, type_name)
    except QueryError as error:
        return _query_error(error)
    return _ok({**_envelope(), name: ordered([r for r in rows if matches(r, conditions)], keys)})


def _where(fields: frozenset[str], type_name: str):
    text = (request.args.get("where") or "").strip()
    return parse_where(text, fields, type_name) if text else []


def _order(fields: frozenset[str], type_name: str):
    text = (request.args.get("order") or "").strip()
    return parse_order(text, fields, type_name) if text else []


def _tracking_category_id(axis: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"{g.company.id}/tracking/{axis}"))


# --- creating contacts and invoices -----------------------------------------------------------


@api.put("/Contacts")
def create_contacts():
    """Contacts created (https://developer.xero.com/documentation/api/accounting/contacts), all or
    none: every element is checked first, and one refused element refuses the request."""
    replay = _replay("contacts")
    if replay is not None:
        return replay
    elements = _elements("Contacts", "contact")
    if isinstance(elements, Response):
        return elements
    readings = [_read_contact(raw) for raw in elements]
    names = [clean.get("Name", "").lower() for clean, _ in readings]
    for index, (clean, reading) in enumerate(readings):
        name = clean.get("Name")
        if name and (names.index(name.lower()) < index or _active_contact_named(name)):
            reading.refuse(
                f"The contact name {name} is already assigned to another contact. "
                "The contact name must be unique across all active contacts."
            )
    if any(reading.problems for _, reading in readings):
        return _validation_elements([(clean, reading.problems) for clean, reading in readings])
    created = []
    for clean, _ in readings:
        company_number, tax_number = clean.get("CompanyNumber"), clean.get("TaxNumber")
        extras: dict = {"unused": True}  # neither supplier nor customer until a bill or invoice uses it
        # What Xero holds beyond the sandbox's columns (a SIREN has 9 digits, Xero's field 50).
        if company_number and len(company_number) > 9:
            extras["company_number"], company_number = company_number, None
        if tax_number and len(tax_number) > 40:
            extras["tax_number"], tax_number = tax_number, None
        for key, extra in (("EmailAddress", "email"), ("BankAccountDetails", "iban")):
            if clean.get(key):
                extras[extra] = clean[key]
        item = SandboxItem(
            company_id=g.company.id,
            kind="customers" if clean.get("IsCustomer") and not clean.get("IsSupplier") else "suppliers",
            external_id=f"xero-{uuid.uuid4().hex[:12]}",
            code=clean.get("ContactNumber"),
            name=clean["Name"],
            vat_number=tax_number,
            siren=company_number,
            creation_key=request.headers.get("Idempotency-Key") or None,
            extras=extras,
            updated_at=utcnow(),
        )
        db.session.add(item)
        created.append(item)
    db.session.flush()
    contacts = [_contact_json(i) for i in created]
    answer = _commit_and_remember("contacts", {**_envelope(), "Contacts": contacts})
    if answer.status_code == 200:
        announce(created, "Create")  # after the commit, as Xero: the app hears of the new contacts
    return answer


def _read_contact(raw: dict) -> tuple[dict, Reading]:
    """A contact as Xero reads it (the description's lengths); `clean` holds only what passed."""
    reading = Reading()
    clean: dict = {}
    name = reading.text(raw, "Name", 255, required=True)
    if name is not None and not name.strip():
        reading.refuse("Name must be specified.")
    elif name is not None:
        clean["Name"] = name.strip()
    for key, length in (
        ("ContactNumber", 50),
        ("TaxNumber", 50),
        ("CompanyNumber", 50),
        ("EmailAddress", 255),
        ("BankAccountDetails", 255),
        ("FirstName", 255),
        ("LastName", 255),
        ("AccountNumber", 50),
    ):
        value = reading.text(raw, key, length)
        if value is not None:
            clean[key] = value
    for key in ("IsSupplier", "IsCustomer"):
        value = reading.flag(raw, key)
        if value is not None:
            clean[key] = value
    contact_id = reading.guid(raw, "ContactID")
    if contact_id is not None:
        reading.refuse(
            "A contact is updated with POST /Contacts/{ContactID}, which the sandbox does not offer."
        )
    status = reading.choice(raw, "ContactStatus", ("ACTIVE",))
    if status is not None:
        clean["ContactStatus"] = status
    return clean, reading


def _active_contact_named(name: str) -> bool:
    return (
        db.session.scalar(
            select(SandboxItem.id).where(
                SandboxItem.company_id == g.company.id,
                SandboxItem.kind.in_(("suppliers", "customers")),
                SandboxItem.active.is_(True),
                func.lower(SandboxItem.name) == name.lower(),
            )
        )
        is not None
    )


@api.put("/Invoices")
def create_invoices():
    """Invoices created (https://developer.xero.com/documentation/api/accounting/invoices), all or
    none, and answered as Xero answers them: dates in its JSON form, each line with its LineItemID,
    LineAmount and TaxAmount, and the totals computed from the lines."""
    replay = _replay("invoices")
    if replay is not None:
        return replay
    elements = _elements("Invoices", "invoice")
    if isinstance(elements, Response):
        return elements
    four_places = request.args.get("unitdp") == "4"
    readings = [_read_invoice(raw, four_places) for raw in elements]
    if any(reading.problems for _, reading in readings):
        return _validation_elements([(clean, reading.problems) for clean, reading in readings])
    created = []
    for clean, _ in readings:
        contact = _by_guid(("suppliers", "customers"), clean["Contact"]["ContactID"])
        if (contact.extras or {}).get("unused"):
            contact.kind = "suppliers" if clean["Type"] == "ACCPAY" else "customers"
            contact.extras = {k: v for k, v in contact.extras.items() if k != "unused"}
            contact.updated_at = utcnow()
        invoice = SandboxInvoice(
            company_id=g.company.id,
            idempotency_key=request.headers.get("Idempotency-Key") or f"xero-{uuid.uuid4().hex}",
        )
        db.session.add(invoice)
        db.session.flush()
        answer = _invoice_json(invoice, clean, contact)
        invoice.payload = {"dialect": "xero", **answer}
        created.append(answer)
    return _commit_and_remember("invoices", {**_envelope(), "Invoices": created})


INVOICE_TYPES = ("ACCPAY", "ACCREC")
#: The statuses an invoice can be created in (PAID, VOIDED and DELETED come later).
CREATE_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED")
LINE_AMOUNT_TYPES = ("Exclusive", "Inclusive", "NoTax")
_CURRENCY = re.compile(r"[A-Z]{3}")


def _read_invoice(raw: dict, four_places: bool) -> tuple[dict, Reading]:
    """An invoice as Xero reads it: types, lengths, dates, numbers, then the references (contact,
    accounts, tax types, tracking) within the organisation. `clean` holds what passed, for the
    answer and for an error's element (never a refused value)."""
    reading = Reading()
    clean: dict = {}
    kind = reading.choice(raw, "Type", INVOICE_TYPES)
    if kind is None and "Type must be one of" not in " ".join(reading.problems):
        reading.refuse("Invoice Type must be ACCPAY or ACCREC.")
    clean["Type"] = kind
    contact_raw = raw.get("Contact")
    contact_id = reading.guid(contact_raw, "ContactID") if isinstance(contact_raw, dict) else None
    if contact_raw is not None and not isinstance(contact_raw, dict):
        reading.refuse("Contact must be an object.")
    contact = _by_guid(("suppliers", "customers"), contact_id) if contact_id else None
    if contact is None:
        if not reading.problems or contact_raw is None or contact_id is None:
            reading.refuse("A Contact must be specified with a valid ContactID.")
    elif not contact.active:
        reading.refuse(f"The contact {contact.name} has been archived and cannot be used.")
    else:
        clean["Contact"] = {"ContactID": contact.guid}
    for key in ("Date", "DueDate"):
        day = reading.day(raw, key)
        if day is not None:
            clean[key] = day
    for key, length in (("InvoiceNumber", 255), ("Reference", 255), ("Url", 2000)):
        value = reading.text(raw, key, length)
        if value is not None:
            clean[key] = value
    currency = reading.text(raw, "CurrencyCode", 3)
    if currency is not None and not _CURRENCY.fullmatch(currency):
        reading.refuse("CurrencyCode must be a three-letter ISO 4217 code.")
    elif currency is not None:
        clean["CurrencyCode"] = currency
    clean["Status"] = reading.choice(raw, "Status", CREATE_STATUSES, default="DRAFT")
    clean["LineAmountTypes"] = reading.choice(raw, "LineAmountTypes", LINE_AMOUNT_TYPES, default="Exclusive")
    lines = reading.objects(raw, "LineItems", "line items")
    if not lines:
        if lines is not None or "LineItems" not in raw:
            reading.refuse("Invoices must have at least one line item.")
        return clean, reading
    clean["LineItems"] = [_read_line(line, reading, four_places, clean["LineAmountTypes"]) for line in lines]
    return clean, reading


def _read_line(raw: dict, reading: Reading, four_places: bool, amount_types: str | None) -> dict:
    line: dict = {}
    description = reading.text(raw, "Description", 4000)
    if description is not None:
        line["Description"] = description
    quantity = reading.number(raw, "Quantity", 4)
    unit = reading.number(raw, "UnitAmount", 4 if four_places else 2)
    line_amount = reading.number(raw, "LineAmount", 2)
    tax_amount = reading.number(raw, "TaxAmount", 2)
    code = reading.text(raw, "AccountCode", 10, required=True)
    if code is not None:
        account = _by_code(("accounts",), code)
        if account is None or not account.active:
            reading.refuse(
                f"Account code '{code}' has been archived or has been deleted. "
                "Each line item must reference a valid account."
            )
        else:
            line["AccountCode"], line["AccountID"] = account.code, account.guid
    rate = Decimal(0)
    tax_type = reading.text(raw, "TaxType", 50)
    if tax_type is not None:
        tax = _by_code(("tax_rates",), tax_type)
        if tax is None or not tax.active:
            reading.refuse(
                f"The TaxType code '{tax_type}' does not exist or cannot be used with this account code."
            )
        else:
            line["TaxType"] = tax.code
            rate = to_decimal(tax.rate or "0") or Decimal(0)
    tracking = reading.objects(raw, "Tracking", "tracking categories")
    if tracking:
        if len(tracking) > 2:
            reading.refuse("A line item can have at most 2 tracking categories.")
        else:
            line["Tracking"] = [_read_tracking(each, reading) for each in tracking]
    # The line's amounts, as Xero computes them: LineAmount = Quantity × UnitAmount (or the missing
    # one from LineAmount), tax per line rounded to two decimals, on top of the amount (Exclusive)
    # or inside it (Inclusive), none with NoTax.
    if quantity is None:
        quantity = Decimal(1) if unit is not None or line_amount is None else None
    if line_amount is None:
        line_amount = _round2((quantity or Decimal(0)) * (unit or Decimal(0)))
    elif unit is None and quantity:
        unit = (line_amount / quantity).quantize(
            Decimal("0.0001") if four_places else TWO_PLACES, ROUND_HALF_UP
        )
    if abs(line_amount) > MAX_NUMBER:
        reading.refuse(f"LineAmount must be less than {MAX_NUMBER:,}.")
        return line
    if amount_types == "NoTax":
        tax_amount = Decimal(0)
    elif tax_amount is None:
        divisor = Decimal(100) + rate if amount_types == "Inclusive" else Decimal(100)
        tax_amount = _round2(line_amount * rate / divisor)
    line.update(
        {
            "Quantity": quantity if quantity is not None else Decimal(0),
            "UnitAmount": unit if unit is not None else Decimal(0),
            "LineAmount": line_amount,
            "TaxAmount": tax_amount,
        }
    )
    return line


def _read_tracking(raw: dict, reading: Reading) -> dict:
    name = reading.text(raw, "Name", 100)
    option = reading.text(raw, "Option", 100)
    if name is None or option is None:
        reading.refuse("Each tracking category of a line item needs a Name and an Option.")
        return {}
    found = db.session.scalar(
        select(SandboxItem).where(
            SandboxItem.company_id == g.company.id,
            SandboxItem.kind == "tracking_categories",
            SandboxItem.name == option,
            SandboxItem.active.is_(True),
        )
    )
    if found is None or ((found.extras or {}).get("axis") or "Analytique") != name:
        reading.refuse(f"The tracking option '{option}' does not exist in the tracking category '{name}'.")
        return {}
    return {
        "TrackingCategoryID": _tracking_category_id(name),
        "TrackingOptionID": found.guid,
        "Name": name,
        "Option": option,
    }


def _round2(amount: Decimal) -> Decimal:
    return amount.quantize(TWO_PLACES, rounding=ROUND_HALF_UP)


def _elements(key: str, what: str) -> list[dict] | Response:
    """The request's list of elements (`{"Invoices": [{…}]}`), or Xero's refusal of its shape."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _validation([f"The request body must be a JSON object with a {key} array."])
    elements = body.get(key)
    if not isinstance(elements, list) or not elements:
        return _validation([f"A {key} array with at least one {what} is required."])
    if len(elements) > MAX_ELEMENTS:
        return _validation([f"At most {MAX_ELEMENTS} {key} can be sent in one request."])
    if not all(isinstance(each, dict) for each in elements):
        return _validation([f"Each element of {key} must be a {what} object."])
    return elements


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
        "UpdatedDateUTC": msdate(item.updated_at),
        **extra,
    }


def _contact_json(item: SandboxItem) -> dict:
    extras = item.extras or {}
    body = {
        "ContactID": item.guid,
        "ContactNumber": item.code,
        "ContactStatus": "ACTIVE" if item.active else "ARCHIVED",
        "Name": item.name,
        "TaxNumber": item.vat_number or extras.get("tax_number"),
        "CompanyNumber": item.siren or extras.get("company_number"),
        "EmailAddress": extras.get("email"),
        "BankAccountDetails": extras.get("iban"),
        "IsSupplier": item.kind == "suppliers" and not extras.get("unused"),
        "IsCustomer": item.kind == "customers" and not extras.get("unused"),
        "UpdatedDateUTC": msdate(item.updated_at),
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


def _invoice_json(invoice: SandboxInvoice, clean: dict, contact: SandboxItem) -> dict:
    lines = clean["LineItems"]
    total_tax = sum((line["TaxAmount"] for line in lines), Decimal(0))
    line_total = sum((line["LineAmount"] for line in lines), Decimal(0))
    inclusive = clean["LineAmountTypes"] == "Inclusive"
    sub_total = line_total - total_tax if inclusive else line_total
    total = sub_total + total_tax
    body: dict = {
        "Type": clean["Type"],
        "InvoiceID": invoice.guid,
        "InvoiceNumber": clean.get("InvoiceNumber"),
        "Reference": clean.get("Reference"),
        "Payments": [],
        "CreditNotes": [],
        "Prepayments": [],
        "Overpayments": [],
        "AmountDue": money(total),
        "AmountPaid": 0.0,
        "AmountCredited": 0.0,
        "CurrencyRate": 1.0,
        "IsDiscounted": False,
        "HasAttachments": False,
        "HasErrors": False,
        "Contact": {"ContactID": contact.guid, "Name": contact.name, "ContactStatus": "ACTIVE"},
    }
    for key in ("Date", "DueDate"):
        if clean.get(key):
            # Xero answers each date twice: as text, and in its JSON date form.
            body[f"{key}String"] = clean[key].isoformat() + "T00:00:00"
            body[key] = msdate(clean[key])
    body.update(
        {
            "Status": clean["Status"],
            "LineAmountTypes": clean["LineAmountTypes"],
            "LineItems": [_line_json(invoice, index, line) for index, line in enumerate(lines)],
            "SubTotal": money(sub_total),
            "TotalTax": money(total_tax),
            "Total": money(total),
            "UpdatedDateUTC": msdate(utcnow()),
            "CurrencyCode": clean.get("CurrencyCode") or "EUR",
            "Url": clean.get("Url"),
        }
    )
    return {k: v for k, v in body.items() if v is not None}


def _line_json(invoice: SandboxInvoice, index: int, line: dict) -> dict:
    body = {
        "LineItemID": str(uuid.uuid5(uuid.NAMESPACE_OID, f"xero-line-{invoice.guid}-{index}")),
        "Description": line.get("Description"),
        "Quantity": float(line["Quantity"]),
        "UnitAmount": float(line["UnitAmount"]),
        "AccountCode": line.get("AccountCode"),
        "AccountID": line.get("AccountID"),
        "TaxType": line.get("TaxType"),
        "TaxAmount": money(line["TaxAmount"]),
        "LineAmount": money(line["LineAmount"]),
        "Tracking": line.get("Tracking") or [],
    }
    return {k: v for k, v in body.items() if v is not None}


def _element_json(clean: dict) -> dict:
    """What an error's element repeats of the request: the fields that passed, in Xero's JSON form."""
    element = {}
    for key, value in clean.items():
        if isinstance(value, date):
            element[key] = msdate(value)
        elif key == "LineItems":
            element[key] = [
                {k: (float(v) if isinstance(v, Decimal) else v) for k, v in line.items()} for line in value
            ]
        elif value is not None:
            element[key] = value
    return element


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


def _validation(messages: list[str]) -> Response:
    """Xero's 400 for a request it cannot read as a whole: one element carrying the reasons."""
    return _validation_elements([({}, messages)])


def _validation_elements(elements: list[tuple[dict, list[str]]]) -> Response:
    """Xero's 400 ValidationException: each element of the request as it was read (the values that
    passed, never a refused one) with its ValidationErrors, as in
    https://developer.xero.com/documentation/api/http-response-codes."""
    response = jsonify(
        {
            "ErrorNumber": 10,
            "Type": "ValidationException",
            "Message": "A validation exception occurred",
            "Elements": [
                {**_element_json(clean), "ValidationErrors": [{"Message": m} for m in problems]}
                for clean, problems in elements
            ],
        }
    )
    response.status_code = 400
    return response


def _query_error(error: QueryError) -> Response:
    """Xero's answer to a `where` or `order` it cannot read: QueryParseException, error 16 (the
    example of the published description's APIException)."""
    response = jsonify({"ErrorNumber": 16, "Type": "QueryParseException", "Message": str(error)})
    response.status_code = 400
    return response


def _envelope() -> dict:
    """What every answer of the Accounting API starts with."""
    return {
        "Id": str(uuid.uuid4()),
        "Status": "OK",
        "ProviderName": "Raccord",
        "DateTimeUTC": msdate(utcnow()),
    }


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


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _parse_since(value: str) -> datetime | None:
    return to_moment(value, http_date=True)
