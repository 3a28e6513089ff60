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
import uuid
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

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
        axes.setdefault((item.extras or {}).get("axis") or "Analytique", []).append(item)
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
    body = json_object().get("contact")
    if not isinstance(body, dict):
        return _errors(422, "RecordInvalid", "contact is missing", "contact")
    name = str(body.get("name") or "").strip()
    types = body.get("contact_type_ids") or []
    if not name:
        return _errors(422, "RecordInvalid", "Name can't be blank", "name")
    if not types or any(t not in CONTACT_TYPES for t in types):
        return _errors(422, "RecordInvalid", "Contact type must be VENDOR or CUSTOMER", "contact_type_ids")
    key = str(body.get("idempotency_id") or "") or None
    if key:
        replayed = db.session.scalar(
            select(SandboxItem).where(SandboxItem.company_id == g.company.id, SandboxItem.creation_key == key)
        )
        if replayed is not None:
            response = jsonify(_contact_json(replayed))
            response.status_code = 201
            return response
    item = SandboxItem(
        company_id=g.company.id,
        creation_key=key,
        kind=CONTACT_TYPES[types[0]],
        external_id=f"sage-{uuid.uuid4().hex[:12]}",
        code=(body.get("reference") or name.upper().replace(" ", "")[:8]),
        name=name[:300],
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
    query = select(SandboxInvoice).where(
        SandboxInvoice.company_id == g.company.id, SandboxInvoice.payload["sage_kind"].as_string() == kind
    )
    rows = [i for i in db.session.scalars(query.order_by(SandboxInvoice.id))]
    contact = request.args.get("contact_id")
    term = (request.args.get("search") or "").strip().lower()
    rows = [
        i
        for i in rows
        if (not contact or i.payload.get("contact_id") == contact)
        and (
            not term
            or term in str(i.payload.get("vendor_reference") or i.payload.get("reference") or "").lower()
        )
    ]
    return _wrap([_invoice_json(i) for i in rows], total=len(rows), page=1, per_page=max(len(rows), 1))


@api.post("/<kind>")
def create_invoice(kind: str):
    if kind not in INVOICE_KINDS:
        return _errors(404, "RecordNotFound", "Not found")
    root, _context = INVOICE_KINDS[kind]
    body = json_object().get(root)
    if not isinstance(body, dict):
        return _errors(422, "RecordInvalid", f"{root} is missing", root)
    key = f"sage-{body['idempotency_id']}" if body.get("idempotency_id") else f"sage-{uuid.uuid4().hex}"
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
    body = json_object().get("attachment")
    if not isinstance(body, dict):
        return _errors(422, "RecordInvalid", "attachment is missing", "attachment")
    invoice = _invoice_by_guid(str(body.get("attachment_context_id") or ""))
    if invoice is None:
        return _errors(422, "RecordInvalid", "Attachment context not found", "attachment_context_id")
    try:
        data = base64.b64decode(str(body.get("file") or ""), validate=True)
    except (binascii.Error, ValueError):
        return _errors(422, "RecordInvalid", "File is not valid base64", "file")
    if not data:
        return _errors(422, "RecordInvalid", "File can't be blank", "file")
    name = str(body.get("file_name") or "piece-jointe")[:200]
    attachment = SandboxAttachment(
        invoice_id=invoice.id,
        filename=name,
        content_type=str(body.get("mime_type") or "application/octet-stream")[:80],
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
    extras = item.extras or {}
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
        "nominal_code": int(code) if code.isdigit() else 0,
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
    extras = item.extras or {}
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
        "email": extras.get("email"),
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
        "percentage": float(item.rate or 0),
        "is_visible": item.active,
        "is_combined_rate": False,
    }


def _invoice_json(invoice: SandboxInvoice) -> dict:
    payload = invoice.payload
    lines = payload.get("invoice_lines") or []
    net = sum(Decimal(str(li.get("unit_price") or 0)) * Decimal(str(li.get("quantity") or 1)) for li in lines)
    tax = sum(Decimal(str(li.get("tax_amount") or 0)) for li in lines)
    body = {
        "id": invoice.guid,
        "displayed_as": payload.get("vendor_reference") or payload.get("reference") or invoice.guid,
        "$path": f"/{payload.get('sage_kind')}/{invoice.guid}",
        "created_at": _iso(invoice.created_at),
        "updated_at": _iso(invoice.created_at),
        "contact": {
            "id": payload.get("contact_id"),
            "displayed_as": "",
            "$path": f"/contacts/{payload.get('contact_id')}",
        },
        "date": payload.get("date"),
        "due_date": payload.get("due_date"),
        "reference": payload.get("reference"),
        "vendor_reference": payload.get("vendor_reference"),
        "net_amount": float(net),
        "tax_amount": float(tax),
        "total_amount": float(net + tax),
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
    contact = _by_guid(
        tuple(v for k, v in CONTACT_TYPES.items() if k == contact_type), str(body.get("contact_id") or "")
    )
    if contact is None:
        return "contact_id", "Contact is not valid"
    if not contact.active:
        return "contact_id", f"The contact {contact.name} is inactive"
    for field in ("date", "due_date"):
        if not body.get(field):
            return field, f"{field.replace('_', ' ').capitalize()} can't be blank"
    lines = body.get("invoice_lines")
    if not isinstance(lines, list) or not lines:
        return "invoice_lines", "Invoice lines can't be blank"
    for index, line in enumerate(lines):
        account = _by_guid(("accounts",), str((line or {}).get("ledger_account_id") or ""))
        if account is None or not account.active:
            return (
                f"invoice_lines.{index}.ledger_account_id",
                "Ledger account is not valid or is no longer in use",
            )
        tax_id = (line or {}).get("tax_rate_id")
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
        try:
            Decimal(str(line.get("unit_price")))
        except (InvalidOperation, ValueError):
            return f"invoice_lines.{index}.unit_price", "Unit price is not a number"
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


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
