"""The sandbox speaking Sage Business Cloud Accounting v3.1, in Sage's field names, paging and errors.

URLs mirror Sage's: /sandbox/sage/oauth2/auth/central for www.sageone.com's consent page,
/sandbox/sage/token and /sandbox/sage/revoke for oauth.accounting.sage.com, and
/sandbox/sage/v3.1/... for api.accounting.sage.com/v3.1. The business is chosen with the
X-Business header (GET /businesses lists them). Answers follow Sage's published description
(shared/specs/sage-accounting-v3.1-swagger.json), against which the tests check them, with one
difference Sage documents itself: lists come wrapped as {$total, $page, $next, $back,
$itemsPerPage, $items} (https://developer.sage.com/accounting/guides/concepts/pagination/),
where the description shows bare arrays.

How the sandbox's lists read in Sage:
- accounts → ledger_accounts (nominal_code is the PCG number; ledger_account_type EXPENSES,
  SALES, CURRENT_LIABILITY or CURRENT_ASSETS; an archived account is not included_in_chart);
- payment methods → bank_accounts (nominal codes 512xxx, is_active);
- suppliers / customers → contacts with contact_types VENDOR / CUSTOMER (tax_number is the VAT
  number, registered_number the SIREN, is_active);
- tax rates → tax_rates (percentage; an archived rate is not is_visible);
- tracking → analysis_types, one per axis, with the items as analysis_type_categories.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from sqlalchemy import false as sa_false
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from sandbox import oauth
from sandbox.columns import utcnow
from sandbox.csrf import sandbox_csrf
from sandbox.dialects import check_bearer, tenant_guid
from sandbox.faults import apply_faults
from sandbox.inputs import json_object, page_offset, to_int, to_moment
from sandbox.models import SandboxAttachment, SandboxCompany, SandboxInvoice, SandboxItem
from webapp.extensions import db

bp = Blueprint("sandbox_sage", __name__, url_prefix="/sage")
# Token lifetimes as the vendor's (https://developer.sage.com/accounting/guides/authenticating/authentication/).
ACCESS_TTL, REFRESH_TTL = 5 * 60, 31 * 86400
MAX_PER_PAGE = 200  # https://developer.sage.com/accounting/guides/concepts/pagination/
DEFAULT_PER_PAGE = 20
CONTACT_TYPES = {"VENDOR": "suppliers", "CUSTOMER": "customers"}
INVOICE_KINDS = {
    "purchase_invoices": ("purchase_invoice", "PURCHASE_INVOICE"),
    "sales_invoices": ("sales_invoice", "SALES_INVOICE"),
}


@bp.route("/oauth2/auth/central", methods=["GET", "POST"])
def authorize():
    """Sage's sign-in: the user's businesses are all reachable with the token; here, those ticked."""
    return oauth.authorize(several=True)


@bp.post("/token")
@sandbox_csrf.exempt
def token():
    return oauth.issue_token_as(ACCESS_TTL, REFRESH_TTL)


@bp.post("/revoke")
@sandbox_csrf.exempt
def revoke():
    return oauth.revoke_token()


api = Blueprint("sandbox_sage_api", __name__, url_prefix="/sage/v3.1")
sandbox_csrf.exempt(api)


@api.before_request
def authenticate():
    faulted = _faults()
    if faulted is not None:
        return faulted
    check = check_bearer()
    if check.problem:
        return _errors(401, "Unauthorized", "Your access token is invalid or has expired")
    g.businesses = [
        company
        for company in (db.session.get(SandboxCompany, each) for each in check.grant.companies)
        if company is not None
    ]
    wanted = request.headers.get("X-Business")
    # Without X-Business, Sage uses the user's lead business: the first one here.
    chosen = next((c for c in g.businesses if tenant_guid(c.id) == wanted), None) if wanted else check.company
    if chosen is None:
        return _errors(403, "BusinessNotFound", "You do not have access to this business", "X-Business")
    g.company = chosen
    return None


@api.after_request
def in_sages_words(response: Response) -> Response:
    """What the sandbox refuses before the dialect reads the request (a NUL, a lone surrogate, text a
    column cannot hold, a body of another shape) comes in Sage's error body too: an array of
    {$severity, $dataCode, $message, $source}
    (https://developer.sage.com/accounting/guides/concepts/frequently_raised_errors/), with 422 for
    data Sage cannot process (https://developer.sage.com/accounting/guides/concepts/response_codes/)."""
    if not 400 <= response.status_code < 500 or response.mimetype != "application/json":
        return response
    body = response.get_json(silent=True)
    if not isinstance(body, dict) or "error" not in body:
        return response
    field = body.get("field")
    status = 422 if field or request.is_json else response.status_code
    return _errors(
        status,
        "RecordInvalid" if status == 422 else "BadRequest",
        str(body.get("message") or "The request is not valid"),
        str(field or ""),
    )


@api.get("/businesses")
def businesses():
    """Sage's core API: the businesses the user gave access to (in the sandbox, those of the consent)."""
    return jsonify(
        [
            {
                "id": tenant_guid(company.id),
                "displayed_as": company.name,
                "$path": f"/businesses/{tenant_guid(company.id)}",
                "name": company.name,
                "is_demo": False,
            }
            for company in g.businesses
        ]
    )


@api.get("/ledger_accounts")
def ledger_accounts():
    query = _query(("accounts",))
    return _page(query, _ledger_account_json)


@api.get("/bank_accounts")
def bank_accounts():
    query = _query(("payment_methods",))
    if request.args.get("filter_inactive_bank_accounts", "").lower() == "true":
        query = query.where(SandboxItem.active.is_(True))
    return _page(query, _bank_account_json)


@api.get("/contacts")
def contacts():
    wanted = request.args.get("contact_type_id")
    kinds = (CONTACT_TYPES[wanted],) if wanted in CONTACT_TYPES else tuple(CONTACT_TYPES.values())
    query = _query(kinds)
    if request.args.get("filter_inactive_contacts", "").lower() == "true":
        query = query.where(SandboxItem.active.is_(True))
    term = (request.args.get("search") or "").strip()
    if term:
        pattern = f"%{term.replace('%', '').replace('_', '')}%"
        query = query.where(
            or_(
                SandboxItem.name.ilike(pattern),
                SandboxItem.code.ilike(pattern),
                SandboxItem.vat_number.ilike(pattern),
                SandboxItem.siren.ilike(pattern),
            )
        )
    return _page(query, _contact_json)


@api.get("/tax_rates")
def tax_rates():
    return _page(_query(("tax_rates",)), _tax_rate_json)


@api.get("/analysis_types")
def analysis_types():
    axes: dict[str, list[SandboxItem]] = {}
    for item in db.session.scalars(
        select(SandboxItem)
        .where(SandboxItem.company_id == g.company.id, SandboxItem.kind == "tracking_categories")
        .order_by(SandboxItem.id)
    ):
        axes.setdefault(_text_of(_extras(item).get("axis")) or "Analytique", []).append(item)
    rows = []
    for axis, items in axes.items():
        type_id = str(uuid.uuid5(uuid.NAMESPACE_OID, f"{g.company.id}/analysis/{axis}"))
        rows.append(
            {
                "id": type_id,
                "displayed_as": axis,
                "$path": f"/analysis_types/{type_id}",
                "name": axis,
                "analysis_type_categories": [
                    {
                        "id": item.guid,
                        "displayed_as": item.name,
                        "$path": f"/analysis_type_categories/{item.guid}",
                        "code": (item.external_id or "")[:10],
                        "name": item.name,
                    }
                    for item in items
                    if item.active  # Sage deletes categories: an archived one is simply gone
                ],
            }
        )
    return _wrap(rows, total=len(rows), page=1, per_page=max(len(rows), 1))


@api.post("/contacts")
def create_contact():
    try:
        body = _checked(json_object(), "contact", CONTACT_FIELDS)
    except _Refused as refused:
        return refused.response()
    types = body["contact_type_ids"]
    if not types or any(t not in CONTACT_TYPES for t in types):
        return _errors(422, "RecordInvalid", "Contact type must be VENDOR or CUSTOMER", "contact_type_ids")
    key = body.get("idempotency_id") or None
    if key:
        replayed = db.session.scalar(
            select(SandboxItem).where(SandboxItem.company_id == g.company.id, SandboxItem.creation_key == key)
        )
        if replayed is not None:
            response = jsonify(_contact_json(replayed))
            response.status_code = 201
            return response
    name = body["name"]
    item = SandboxItem(
        company_id=g.company.id,
        creation_key=key,
        kind=CONTACT_TYPES[types[0]],
        external_id=f"sage-{uuid.uuid4().hex[:12]}",
        code=body.get("reference") or name.upper().replace(" ", "")[:8],
        name=name,
        vat_number=body.get("tax_number") or None,
        siren=body.get("registered_number") or None,
        updated_at=utcnow(),
    )
    db.session.add(item)
    db.session.commit()
    response = jsonify(_contact_json(item))
    response.status_code = 201
    return response


@api.get("/<kind>")
def list_invoices(kind: str):
    if kind not in INVOICE_KINDS:
        return _errors(404, "RecordNotFound", "Not found")
    # The payloads are filtered here, not in SQL: SQLite's JSON functions fail on a whole table for
    # one payload they cannot read (a NaN kept before the checks), and the list must still answer.
    query = select(SandboxInvoice).where(SandboxInvoice.company_id == g.company.id)
    contact = request.args.get("contact_id")
    term = (request.args.get("search") or "").strip().lower()
    rows = []
    for invoice in db.session.scalars(query.order_by(SandboxInvoice.id)):
        payload = _payload(invoice)
        if payload.get("dialect") != "sage" or payload.get("sage_kind") != kind:
            continue
        reference = _text_of(payload.get("vendor_reference")) or _text_of(payload.get("reference")) or ""
        if (not contact or payload.get("contact_id") == contact) and (not term or term in reference.lower()):
            rows.append(invoice)
    return _wrap([_invoice_json(i) for i in rows], total=len(rows), page=1, per_page=max(len(rows), 1))


@api.post("/<kind>")
def create_invoice(kind: str):
    if kind not in INVOICE_KINDS:
        return _errors(404, "RecordNotFound", "Not found")
    root, _context = INVOICE_KINDS[kind]
    try:
        body = _checked(json_object(), root, INVOICE_FIELDS)
    except _Refused as refused:
        return refused.response()
    key = f"sage-{body.get('idempotency_id') or uuid.uuid4().hex}"
    replayed = db.session.scalar(
        select(SandboxInvoice).where(
            SandboxInvoice.company_id == g.company.id, SandboxInvoice.idempotency_key == key
        )
    )
    if replayed is not None:  # the same idempotency_id again: the first answer, nothing created
        response = jsonify(_invoice_json(replayed))
        response.status_code = 201
        return response
    problem = _invoice_problem(body, "VENDOR" if kind == "purchase_invoices" else "CUSTOMER")
    if problem is not None:
        return _errors(422, "RecordInvalid", problem[1], problem[0])
    # Only what Sage's description names, checked: nothing else of the request is kept.
    invoice = SandboxInvoice(
        company_id=g.company.id, idempotency_key=key, payload={"dialect": "sage", "sage_kind": kind, **body}
    )
    db.session.add(invoice)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return _errors(409, "Conflict", "The same idempotency_id is being processed")
    response = jsonify(_invoice_json(invoice))
    response.status_code = 201
    return response


@api.get("/attachments")
def attachments():
    context = request.args.get("attachment_context_id")
    invoice = _invoice_by_guid(context) if context else None
    rows = []
    if invoice is not None:
        rows = db.session.scalars(
            select(SandboxAttachment)
            .where(SandboxAttachment.invoice_id == invoice.id)
            .order_by(SandboxAttachment.id)
        ).all()
    return _wrap(
        [_attachment_json(a, invoice) for a in rows], total=len(rows), page=1, per_page=max(len(rows), 1)
    )


@api.post("/attachments")
def attach():
    try:
        body = _checked(json_object(), "attachment", ATTACHMENT_FIELDS)
    except _Refused as refused:
        return refused.response()
    invoice = _invoice_by_guid(body.get("attachment_context_id") or "")
    if invoice is None:
        return _errors(422, "RecordInvalid", "Attachment context not found", "attachment_context_id")
    try:
        data = base64.b64decode(body["file"], validate=True)
    except (binascii.Error, ValueError):
        return _errors(422, "RecordInvalid", "File is not valid base64", "file")
    if not data:
        return _errors(422, "RecordInvalid", "File can't be blank", "file")
    if len(data) > MAX_FILE_SIZE:
        return _errors(422, "RecordInvalid", "File is too large (maximum is 2.5 MB)", "file")
    attachment = SandboxAttachment(
        invoice_id=invoice.id,
        filename=body["file_name"],
        content_type=body["mime_type"],
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
    )
    db.session.add(attachment)
    try:
        db.session.commit()
    except IntegrityError:  # Sage would keep both; the sandbox keeps one per name and says so
        db.session.rollback()
        return _errors(422, "RecordInvalid", "A file with this name is already attached", "file_name")
    response = jsonify(_attachment_json(attachment, invoice))
    response.status_code = 201
    return response


# --- shapes -----------------------------------------------------------------------------------


def _query(kinds: tuple[str, ...]):
    query = select(SandboxItem).where(SandboxItem.company_id == g.company.id, SandboxItem.kind.in_(kinds))
    since = request.args.get("updated_or_created_since")
    if since:
        moment = to_moment(since)
        if moment is None:
            return query.where(sa_false())
        query = query.where(SandboxItem.updated_at > moment)
    return query


def _page(query, shape) -> Response:
    page = to_int(request.args.get("page"), 1)
    per_page = to_int(request.args.get("items_per_page"), DEFAULT_PER_PAGE)
    if page is None or per_page is None:
        return _errors(400, "InvalidParameter", "page and items_per_page must be integers", "page")
    page, per_page = max(1, page), min(MAX_PER_PAGE, max(1, per_page))
    if page_offset(page, per_page) is None:
        return _errors(400, "InvalidParameter", "page is out of range", "page")
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(
        query.order_by(SandboxItem.id).offset((page - 1) * per_page).limit(per_page)
    ).all()
    return _wrap([shape(r) for r in rows], total=total, page=page, per_page=per_page)


def _wrap(items: list, *, total: int, page: int, per_page: int) -> Response:
    base = request.base_url.split("/sandbox/sage/v3.1", 1)[-1]
    last = (total + per_page - 1) // per_page
    return jsonify(
        {
            "$total": total,
            "$page": page,
            "$next": f"{base}?page={page + 1}&items_per_page={per_page}" if page < last else None,
            "$back": f"{base}?page={page - 1}&items_per_page={per_page}" if page > 1 else None,
            "$itemsPerPage": per_page,
            "$items": items,
        }
    )


def _stamp(item) -> dict:
    return {
        "created_at": _iso(item.updated_at),
        "updated_at": _iso(item.updated_at),
    }


def _ledger_account_json(item: SandboxItem) -> dict:
    extras = _extras(item)
    code = item.code or "0"
    kind = {"expense": "EXPENSES", "revenue": "SALES"}.get(extras.get("type"))
    kind = kind or ("CURRENT_LIABILITY" if code.startswith("4") else "CURRENT_ASSETS")
    return {
        "id": item.guid,
        "displayed_as": f"{item.name} ({code})",
        "$path": f"/ledger_accounts/{item.guid}",
        **_stamp(item),
        "ledger_account_type": {
            "id": kind,
            "displayed_as": kind.replace("_", " ").title(),
            "$path": f"/ledger_account_types/{kind}",
        },
        "included_in_chart": item.active,
        "name": item.name,
        "display_name": item.name,
        "nominal_code": int(code) if code.isascii() and code.isdigit() else 0,
        "visible_in_expenses": kind == "EXPENSES",
        "visible_in_sales": kind == "SALES",
        # The sandbox's reverse-charge VAT accounts; Sage marks them by their tax rate.
        "tax_recoverable": not extras.get("reverse_charge"),
    }


def _bank_account_json(item: SandboxItem) -> dict:
    index = int(hashlib.sha256(item.external_id.encode()).hexdigest(), 16) % 90 + 10
    kind = "CREDIT_CARD" if item.code == "CB" else "CASH_IN_HAND" if item.code == "CAI" else "CHECKING"
    return {
        "id": item.guid,
        "displayed_as": item.name,
        "$path": f"/bank_accounts/{item.guid}",
        **_stamp(item),
        "bank_account_details": {"account_name": item.name},
        "bank_account_type": {
            "id": kind,
            "displayed_as": kind.title(),
            "$path": f"/bank_account_types/{kind}",
        },
        "nominal_code": 512000 + index,
        "is_active": item.active,
    }


def _contact_json(item: SandboxItem) -> dict:
    kind = "VENDOR" if item.kind == "suppliers" else "CUSTOMER"
    extras = _extras(item)
    body = {
        "id": item.guid,
        "displayed_as": f"{item.name} ({item.code})" if item.code else item.name,
        "$path": f"/contacts/{item.guid}",
        **_stamp(item),
        "contact_types": [
            {
                "id": kind,
                "displayed_as": "Supplier" if kind == "VENDOR" else "Customer",
                "$path": f"/contact_types/{kind}",
            }
        ],
        "name": item.name,
        "reference": item.code,
        "tax_number": item.vat_number,
        "registered_number": item.siren,
        "email": _text_of(extras.get("email")),
        "is_active": item.active,
        "system": False,
    }
    return {k: v for k, v in body.items() if v is not None}


def _tax_rate_json(item: SandboxItem) -> dict:
    return {
        "id": item.code,
        "displayed_as": item.name,
        "$path": f"/tax_rates/{item.code}",
        **_stamp(item),
        "name": item.name,
        "percentage": float(_amount(item.rate)),
        "is_visible": item.active,
        "is_combined_rate": False,
    }


def _invoice_json(invoice: SandboxInvoice) -> dict:
    """An invoice as Sage shows it, whatever its stored payload holds: a value of another type (an
    invoice kept before the checks above, or written by hand) is left out or counts as zero, so the
    list of invoices always answers."""
    payload = _payload(invoice)
    lines = [li for li in payload.get("invoice_lines") or [] if isinstance(li, dict)]
    lines = lines if isinstance(payload.get("invoice_lines"), list) else []
    net = sum((_amount(li.get("unit_price")) * _amount(li.get("quantity"), 1) for li in lines), Decimal(0))
    tax = sum((_amount(li.get("tax_amount")) for li in lines), Decimal(0))
    kind = payload.get("sage_kind") if payload.get("sage_kind") in INVOICE_KINDS else "purchase_invoices"
    contact_id = _text_of(payload.get("contact_id"))
    reference, vendor_reference = (
        _text_of(payload.get("reference")),
        _text_of(payload.get("vendor_reference")),
    )
    body = {
        "id": invoice.guid,
        "displayed_as": vendor_reference or reference or invoice.guid,
        "$path": f"/{kind}/{invoice.guid}",
        "created_at": _iso(invoice.created_at),
        "updated_at": _iso(invoice.created_at),
        "contact": (
            {"id": contact_id, "displayed_as": "", "$path": f"/contacts/{contact_id}"} if contact_id else None
        ),
        "date": _text_of(payload.get("date")),
        "due_date": _text_of(payload.get("due_date")),
        "reference": reference,
        "vendor_reference": vendor_reference,
        "net_amount": float(round(net, 2)),
        "tax_amount": float(round(tax, 2)),
        "total_amount": float(round(net + tax, 2)),
        "status": {"id": "UNPAID", "displayed_as": "Unpaid", "$path": "/artefact_statuses/UNPAID"},
    }
    return {k: v for k, v in body.items() if v is not None}


def _attachment_json(attachment: SandboxAttachment, invoice) -> dict:
    guid = str(uuid.uuid5(uuid.NAMESPACE_OID, f"sage-attachment-{attachment.id}"))
    return {
        "id": guid,
        "displayed_as": attachment.filename,
        "$path": f"/attachments/{guid}",
        "file_name": attachment.filename,
        "mime_type": attachment.content_type,
        "file_size": attachment.size,
        "attachment_context": {
            "id": invoice.guid,
            "displayed_as": "",
            "$path": f"/purchase_invoices/{invoice.guid}",
        },
        "created_at": _iso(attachment.created_at),
        "updated_at": _iso(attachment.created_at),
    }


def _invoice_problem(body: dict, contact_type: str) -> tuple[str, str] | None:
    """What Sage refuses in a well-formed invoice: a contact, account or tax rate that is not there or
    no longer in use. `body` has passed `_checked`: every value is of its type."""
    contact = _by_guid(tuple(v for k, v in CONTACT_TYPES.items() if k == contact_type), body["contact_id"])
    if contact is None:
        return "contact_id", "Contact is not valid"
    if not contact.active:
        return "contact_id", f"The contact {contact.name} is inactive"
    for index, line in enumerate(body["invoice_lines"]):
        account = _by_guid(("accounts",), line["ledger_account_id"])
        if account is None or not account.active:
            return (
                f"invoice_lines.{index}.ledger_account_id",
                "Ledger account is not valid or is no longer in use",
            )
        tax_id = line.get("tax_rate_id")
        if tax_id:
            tax = db.session.scalar(
                select(SandboxItem).where(
                    SandboxItem.company_id == g.company.id,
                    SandboxItem.kind == "tax_rates",
                    SandboxItem.code == tax_id,
                )
            )
            if tax is None or not tax.active:
                return f"invoice_lines.{index}.tax_rate_id", "Tax rate is not valid"
    return None


def _by_guid(kinds, guid: str) -> SandboxItem | None:
    if not guid:
        return None
    return db.session.scalar(
        select(SandboxItem).where(
            SandboxItem.company_id == g.company.id, SandboxItem.kind.in_(kinds), SandboxItem.guid == guid
        )
    )


def _invoice_by_guid(guid: str) -> SandboxInvoice | None:
    return db.session.scalar(
        select(SandboxInvoice).where(SandboxInvoice.company_id == g.company.id, SandboxInvoice.guid == guid)
    )


# --- what a request may hold, as Sage's description types it -----------------------------------
#
# Each body is checked whole before anything is read from it or stored: the types of Sage's published
# description (shared/specs/sage-accounting-v3.1-swagger.json: postContacts, postPurchaseInvoices,
# postSalesInvoices, postAttachments), its required fields, finite numbers in Sage's precision (money
# in cents; quantities and unit prices to 5 places, as Sage's screens take them [?]) and lengths that
# the sandbox's columns hold. A refusal is Sage's 422 RecordInvalid naming the field ($source) and
# never repeating the value. Fields the description does not name are ignored and not kept, as Sage
# ignores unknown attributes.

#: The largest amount the sandbox takes: twelve digits before the decimal point.
MAX_AMOUNT = Decimal("999999999999.99999")
#: Sage's largest attachment, from the description (postAttachments.file_size maximum).
MAX_FILE_SIZE = 2621440


@dataclass(frozen=True)
class _Field:
    kind: str  # text, date, number, integer, boolean, texts (a list of text), lines (a list of objects)
    required: bool = False
    max_length: int = 200
    places: int = 2  # a number's decimal places
    minimum: int = 0  # an integer's bounds
    maximum: int = 2**31 - 1
    fields: dict[str, _Field] | None = None  # a line's


def _text(max_length: int = 200, *, required: bool = False) -> _Field:
    return _Field("text", required=required, max_length=max_length)


def _number(places: int = 2, *, required: bool = False) -> _Field:
    return _Field("number", required=required, places=places)


ID = _text(100)
BOOLEAN = _Field("boolean")
CONTACT_FIELDS = {
    "name": _text(300, required=True),
    "contact_type_ids": _Field("texts", required=True, max_length=20),
    "reference": _text(60),
    "tax_number": _text(40),
    "registered_number": _text(9),  # the sandbox keeps a SIREN
    "notes": _text(2000),
    "locale": _text(10),
    "currency_id": _text(10),
    "credit_limit": _number(),
    "credit_days": _Field("integer", maximum=365),
    "default_sales_ledger_account_id": ID,
    "default_purchase_ledger_account_id": ID,
    "default_sales_tax_rate_id": ID,
    "idempotency_id": ID,
}
LINE_FIELDS = {
    "description": _text(2000, required=True),
    "ledger_account_id": _text(100, required=True),
    "quantity": _number(5, required=True),
    "unit_price": _number(5, required=True),
    "tax_rate_id": ID,
    "net_amount": _number(),
    "tax_amount": _number(),
    "total_amount": _number(),
    "unit_price_includes_tax": BOOLEAN,
    "is_purchase_for_resale": BOOLEAN,
    "tax_recoverable": BOOLEAN,
    "product_id": ID,
    "service_id": ID,
}
INVOICE_FIELDS = {
    "contact_id": _text(100, required=True),
    "date": _Field("date", required=True),
    "due_date": _Field("date", required=True),
    "invoice_lines": _Field("lines", required=True, maximum=500, fields=LINE_FIELDS),
    "reference": _text(),
    "vendor_reference": _text(),
    "contact_name": _text(),
    "contact_reference": _text(),
    "notes": _text(2000),
    "currency_id": _text(10),
    "status_id": _text(40),
    "exchange_rate": _number(6),
    "net_amount": _number(),
    "tax_amount": _number(),
    "total_amount": _number(),
    "total_quantity": _number(5),
    "vat_reverse_charge": BOOLEAN,
    "idempotency_id": ID,
}
ATTACHMENT_FIELDS = {
    "file": _text(-(-MAX_FILE_SIZE // 3) * 4, required=True),
    "file_name": _text(200, required=True),
    "mime_type": _text(80, required=True),
    "description": _text(200),
    "file_extension": _text(10),
    "file_size": _Field("integer", maximum=MAX_FILE_SIZE),
    "attachment_context_type_id": _text(40),
    "attachment_context_id": ID,
    "transaction_id": ID,
    "is_public": BOOLEAN,
}


class _Refused(Exception):
    """A field that is not what Sage's description says it is: refused by name, its value unsaid."""

    def __init__(self, source: str, message: str):
        super().__init__(message)
        self.source, self.message = source, message

    def response(self) -> Response:
        return _errors(422, "RecordInvalid", self.message, self.source)


def _checked(request_body: dict, root: str, fields: dict[str, _Field]) -> dict:
    """`request_body[root]` checked against `fields`: the named fields that are present, each of its
    type; _Refused at the first that is not."""
    body = request_body.get(root)
    if not isinstance(body, dict):
        raise _Refused(root, f"{_label(root)} is missing")
    return _object(body, fields, "")


def _object(body: dict, fields: dict[str, _Field], prefix: str) -> dict:
    clean = {}
    for name, spec in fields.items():
        value = body.get(name)
        source = f"{prefix}{name}"
        if value is None or value == "" or value == []:
            if spec.required:
                raise _Refused(source, f"{_label(name)} can't be blank")
            if value is None:
                continue
        clean[name] = _value(value, spec, source, name)
    return clean


def _value(value: Any, spec: _Field, source: str, name: str) -> Any:
    label = _label(name)
    if spec.kind in ("text", "date"):
        if not isinstance(value, str):
            raise _Refused(source, f"{label} must be text")
        if spec.kind == "date" and not _is_date(value):
            raise _Refused(source, f"{label} is not a valid date (YYYY-MM-DD)")
        elif len(value) > spec.max_length:
            raise _Refused(source, f"{label} is too long (maximum is {spec.max_length} characters)")
        return value
    if spec.kind == "boolean":
        if not isinstance(value, bool):
            raise _Refused(source, f"{label} must be true or false")
        return value
    if spec.kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Refused(source, f"{label} must be a whole number")
        if not spec.minimum <= value <= spec.maximum:
            raise _Refused(source, f"{label} must be between {spec.minimum} and {spec.maximum}")
        return value
    if spec.kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Refused(source, f"{label} is not a number")
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        if not number.is_finite() or abs(number) > MAX_AMOUNT:
            raise _Refused(source, f"{label} is out of range")
        if number.as_tuple().exponent < -spec.places:
            raise _Refused(source, f"{label} has more than {spec.places} decimal places")
        return value
    if not isinstance(value, list):
        raise _Refused(source, f"{label} must be a list")
    if len(value) > spec.maximum:
        raise _Refused(source, f"{label} has more than {spec.maximum} items")
    if spec.kind == "texts":
        for index, each in enumerate(value):
            if not isinstance(each, str) or len(each) > spec.max_length:
                raise _Refused(f"{source}.{index}", f"{label} must be a list of identifiers")
        return list(value)
    lines = []
    for index, line in enumerate(value):
        if not isinstance(line, dict):
            raise _Refused(f"{source}.{index}", f"{label} must be a list of objects")
        lines.append(_object(line, spec.fields or {}, f"{source}.{index}."))
    return lines


def _is_date(value: str) -> bool:
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


# --- what was stored, read defensively ----------------------------------------------------------


def _payload(invoice: SandboxInvoice) -> dict:
    return invoice.payload if isinstance(invoice.payload, dict) else {}


def _text_of(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _amount(value: Any, default: int = 0) -> Decimal:
    """A stored number as a Decimal, or `default` when it is none (text, NaN, out of range)."""
    if value is None:
        return Decimal(default)
    try:
        number = Decimal(str(value)) if isinstance(value, float | str) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return Decimal(default)
    if isinstance(value, bool) or not number.is_finite() or abs(number) > MAX_AMOUNT:
        return Decimal(default)
    return number


def _extras(item: SandboxItem) -> dict:
    return item.extras if isinstance(item.extras, dict) else {}


# --- errors, in Sage's words ------------------------------------------------------------------


def _errors(status: int, code: str, message: str, source: str = "") -> Response:
    response = jsonify([{"$severity": "error", "$dataCode": code, "$message": message, "$source": source}])
    response.status_code = status
    return response


def _faults() -> Response | None:
    faulted = apply_faults()
    if faulted is None or faulted.status_code != 429:
        return faulted
    response = _errors(429, "TooManyRequests", "Too many requests, please retry later")
    response.headers["Retry-After"] = faulted.headers.get("Retry-After", "1")
    return response


def _iso(moment: datetime | None) -> str:
    if moment is None:
        return "1970-01-01T00:00:00Z"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
