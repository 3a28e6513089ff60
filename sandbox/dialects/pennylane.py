"""The sandbox speaking Pennylane's Company API v2: cursor pages, filters, changelogs, imports.

URLs mirror Pennylane's: /sandbox/pennylane/oauth/{authorize,token,revoke} for app.pennylane.com/oauth,
and /sandbox/pennylane/api/external/v2/... for app.pennylane.com/api/external/v2. Pennylane's
description could not be brought in (shared/specs/README.md); this follows its documentation
(https://pennylane.readme.io/docs/ …) and VENDORS.md: lists as {items, has_more, next_cursor} with
`limit` and `cursor`, `filter` as a JSON array of {field, operator, value}, changelogs kept four weeks,
errors as {"error": …, "status": …}, 429 in plain text with retry-after and ratelimit-* headers.

How the sandbox's lists read in Pennylane:
- accounts → ledger_accounts (number is the PCG number, label, enabled, vat_rate);
- payment methods → bank_accounts;
- suppliers / customers → suppliers / customers (vat_number, reg_no); an archived one is gone, as a
  deleted one is in Pennylane, and its deletion shows in the changelog;
- tax rates → none: Pennylane's VAT rates are a fixed list of codes (FR_200…), checked on imports;
- tracking → categories, grouped in category_groups by axis.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from sqlalchemy import select

from sandbox import oauth
from sandbox.columns import utcnow
from sandbox.csrf import sandbox_csrf
from sandbox.dialects import check_bearer
from sandbox.faults import apply_faults
from sandbox.inputs import after_id, to_id, to_int, to_moment
from sandbox.models import SandboxAttachment, SandboxInvoice, SandboxItem
from webapp.extensions import db

bp = Blueprint("sandbox_pennylane", __name__, url_prefix="/pennylane")
# Token lifetimes as the vendor's (VENDORS.md).
ACCESS_TTL, REFRESH_TTL = 24 * 3600, 90 * 86400
MAX_LIMIT = 100  # https://pennylane.readme.io/docs/using-cursor-based-pagination (1 to 100)
CHANGELOG_LIMIT = 1000
VAT_RATES = {"FR_200": "20", "FR_100": "10", "FR_85": "8.5", "FR_55": "5.5", "FR_21": "2.1", "exempt": "0"}
KINDS = {
    "ledger_accounts": "accounts",
    "suppliers": "suppliers",
    "customers": "customers",
    "bank_accounts": "payment_methods",
}


def company_number(company_id: str) -> int:
    return int(hashlib.sha256(company_id.encode()).hexdigest(), 16) % 900_000 + 100_000


@bp.route("/oauth/authorize", methods=["GET", "POST"])
def authorize():
    return oauth.authorize()


@bp.post("/oauth/token")
@sandbox_csrf.exempt
def token():
    return oauth.issue_token_as(ACCESS_TTL, REFRESH_TTL)


@bp.post("/oauth/revoke")
@sandbox_csrf.exempt
def revoke():
    return oauth.revoke_token()


api = Blueprint("sandbox_pennylane_api", __name__, url_prefix="/pennylane/api/external/v2")
sandbox_csrf.exempt(api)


@api.before_request
def authenticate():
    faulted = _faults()
    if faulted is not None:
        return faulted
    check = check_bearer()
    if check.problem:
        return _error(401, "The access token is invalid")
    g.company = check.company
    return None


@api.after_request
def in_pennylanes_words(response: Response) -> Response:
    """What the sandbox refuses before the dialect reads the request (a NUL, a lone surrogate, a body
    nested too deep, a value no column holds) is answered in Pennylane's error format."""
    if response.status_code != 400 or response.mimetype != "application/json":
        return response
    body = response.get_json(silent=True)
    if not isinstance(body, dict) or body.get("error") != "invalid_request":
        return response
    refused = _error(400, str(body.get("message") or "The request is invalid"))
    for name, value in response.headers.items():
        if name.lower().startswith("ratelimit"):
            refused.headers[name] = value
    return refused


@api.after_request
def rate_limit_headers(response: Response) -> Response:
    # Every answer carries the window's state (https://pennylane.readme.io/docs/rate-limiting-1).
    response.headers.setdefault("ratelimit-limit", "25")
    response.headers.setdefault("ratelimit-remaining", "24")
    response.headers.setdefault("ratelimit-reset", str(int(time.time()) + 5))
    return response


@api.get("/me")
def me():
    return jsonify(
        {
            "user": {
                "id": 1,
                "first_name": "Camille",
                "last_name": "Martin",
                "email": "compta@example.fr",
                "locale": "fr",
            },
            "company": {
                "id": company_number(g.company.id),
                "name": g.company.name,
                "reg_no": g.company.siren or "",
            },
        }
    )


@api.get("/<kind>")
def list_items(kind: str):
    if kind in ("categories", "category_groups"):
        return _categories(kind)
    if kind in ("supplier_invoices", "customer_invoices"):
        return _invoices(kind)
    if kind not in KINDS:
        return _error(404, "Not found")
    query = select(SandboxItem).where(SandboxItem.company_id == g.company.id, SandboxItem.kind == KINDS[kind])
    if kind != "ledger_accounts":
        query = query.where(SandboxItem.active.is_(True))  # Pennylane deletes what the sandbox archives
    filters, problem = _filters()
    if problem:
        return problem
    for field, operator, value in filters:
        column = {"id": SandboxItem.id, "number": SandboxItem.code, "name": SandboxItem.name}.get(field)
        if column is None:
            return _error(400, f"Filter on {field[:40]} is not supported")
        values = value if operator == "in" and isinstance(value, list) else [value]
        if field == "id":
            numbers = [to_int(v) if isinstance(v, str | int) else None for v in values]
            if None in numbers:
                return _error(400, "Filter on id takes integers")
            values = [number if to_id(number) else 0 for number in numbers]  # 0: no such id
        else:
            values = [str(v) for v in values]
        if operator == "eq":
            query = query.where(column == values[0])
        elif operator == "in" and isinstance(value, list):
            query = query.where(column.in_(values))
        elif operator == "start_with" and field != "id":
            query = query.where(column.ilike(f"{str(value).replace('%', '')}%"))
        else:
            return _error(400, f"Operator {operator[:20]} is not supported on {field}")
    return _page(
        query,
        {
            "ledger_accounts": _ledger_json,
            "suppliers": _party_json,
            "customers": _party_json,
            "bank_accounts": _bank_json,
        }[kind],
    )


@api.get("/changelogs/<kind>")
def changelog(kind: str):
    """Insert, update and delete events of the last four weeks, oldest first."""
    if kind not in ("suppliers", "customers"):
        return _error(404, "Not found")
    start = request.args.get("start_date")
    since = None
    if start:
        since = to_moment(start)
        if since is None:
            return _error(400, "start_date must be an ISO 8601 date-time")
        if (datetime.now(UTC) - since).days > 28:
            return _error(422, "start_date must be within the last 4 weeks")
    query = select(SandboxItem).where(SandboxItem.company_id == g.company.id, SandboxItem.kind == KINDS[kind])
    if since is not None:
        query = query.where(SandboxItem.updated_at >= since)
    rows = db.session.scalars(
        query.order_by(SandboxItem.updated_at, SandboxItem.id).limit(CHANGELOG_LIMIT)
    ).all()
    items = [
        {
            "id": row.id,
            "operation": "delete" if not row.active else ("insert" if row.creation_key else "update"),
            "processed_at": _iso(row.updated_at),
        }
        for row in rows
    ]
    return jsonify({"items": items, "has_more": False, "next_cursor": None})


@api.post("/suppliers")
@api.post("/company_customers")
def create_party():
    body = _body()
    name = (_text(body, "name", limit=300, required=True) or "").strip()
    if not name:
        raise Refused(422, "name is missing")
    vat_number = _text(body, "vat_number", limit=40)
    reg_no = _text(body, "reg_no", limit=9)
    if reg_no is not None and not re.fullmatch(r"[0-9]{9}", reg_no):
        raise Refused(422, "reg_no must be a SIREN of 9 digits")
    kind = "suppliers" if request.path.endswith("/suppliers") else "customers"
    item = SandboxItem(
        company_id=g.company.id,
        kind=kind,
        external_id=f"pl-{uuid.uuid4().hex[:12]}",
        name=name,
        vat_number=vat_number,
        siren=reg_no,
        creation_key=f"pennylane-{uuid.uuid4().hex}",
        updated_at=utcnow(),
    )
    db.session.add(item)
    db.session.commit()
    response = jsonify(_party_json(item))
    response.status_code = 201
    return response


@api.post("/file_attachments")
def upload():
    upload = request.files.get("file")
    if upload is None:
        return _error(422, "file is missing")
    data = upload.read()
    if not data.startswith(b"%PDF-"):
        return _error(422, "Only PDF files are accepted")
    # Kept as a pending attachment, claimed by the import that names it.
    pending = SandboxInvoice(
        company_id=g.company.id,
        idempotency_key=f"pennylane-file-{uuid.uuid4().hex}",
        payload={"dialect": "pennylane", "pending_file": True},
    )
    db.session.add(pending)
    db.session.flush()
    db.session.add(
        SandboxAttachment(
            invoice_id=pending.id,
            filename=(upload.filename or "facture.pdf")[:200],
            content_type="application/pdf",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            data=data,
        )
    )
    db.session.commit()
    response = jsonify(
        {"id": pending.id, "filename": upload.filename, "url": f"/file_attachments/{pending.id}"}
    )
    response.status_code = 201
    return response


@api.post("/supplier_invoices/import")
@api.post("/customer_invoices/import")
def import_invoice():
    """Everything is checked before the pending file is claimed: a refused import keeps nothing
    (https://pennylane.readme.io/docs/supplier-invoicing)."""
    purchase = "/supplier_invoices/" in request.path
    body = _body()
    party_field = "supplier_id" if purchase else "customer_id"
    kept: dict[str, Any] = {
        "invoice_number": _text(body, "invoice_number", limit=100),
        "external_reference": _text(body, "external_reference", limit=255),
        "date": _date(body, "date", required=True),
        "deadline": _date(body, "deadline"),
        "currency": _text(body, "currency", limit=3) or "EUR",
    }
    if not re.fullmatch(r"[A-Z]{3}", kept["currency"]):
        raise Refused(422, "currency must be an ISO 4217 code such as EUR")
    amounts = {
        key: _amount(body.get(key), key)
        for key in ("currency_amount", "currency_amount_before_tax", "currency_tax")
    }
    lines = body.get("invoice_lines")
    if not lines:
        raise Refused(422, "invoice_lines is missing")
    if not isinstance(lines, list) or not all(isinstance(line, dict) for line in lines) or len(lines) > 500:
        raise Refused(422, "invoice_lines must be a list of objects")
    kept_lines, line_total = [], Decimal(0)
    for line in lines:
        account = db.session.get(SandboxItem, _row_id(line.get("ledger_account_id")) or 0)
        if account is None or account.company_id != g.company.id or account.kind != "accounts":
            raise Refused(422, "invoice_lines ledger_account_id is invalid")
        if not account.active:
            raise Refused(422, f"Ledger account {account.code} is disabled")
        rate = line.get("vat_rate")
        if not isinstance(rate, str) or rate not in VAT_RATES:
            shown = rate if isinstance(rate, str) and len(rate) <= 20 else "given"
            raise Refused(422, f"vat_rate {shown} is not a valid VAT rate")
        line_amount = _amount(line.get("currency_amount"), "invoice_lines currency_amount")
        kept_line = {"ledger_account_id": account.id, "currency_amount": str(line_amount), "vat_rate": rate}
        if line.get("currency_tax") is not None:
            kept_line["currency_tax"] = str(_amount(line.get("currency_tax"), "invoice_lines currency_tax"))
        label = _text(line, "label", limit=255)
        if label is not None:
            kept_line["label"] = label
        line_total += line_amount
        kept_lines.append(kept_line)
    total = amounts["currency_amount"]
    if line_total != total or amounts["currency_amount_before_tax"] + amounts["currency_tax"] != total:
        raise Refused(422, "The sum of invoice_lines currency_amount must equal currency_amount")
    party = db.session.get(SandboxItem, _row_id(body.get(party_field)) or 0)
    if (
        party is None
        or party.company_id != g.company.id
        or party.kind != ("suppliers" if purchase else "customers")
        or not party.active
    ):
        raise Refused(422, f"{party_field} is invalid")
    pending_id = _row_id(body.get("file_attachment_id"))
    pending = db.session.get(SandboxInvoice, pending_id) if pending_id else None
    if pending is None or pending.company_id != g.company.id or not pending.payload.get("pending_file"):
        raise Refused(422, "file_attachment_id is invalid or already used by another invoice")
    attachment = db.session.scalar(
        select(SandboxAttachment).where(SandboxAttachment.invoice_id == pending.id)
    )
    same_file = any(
        (db.session.get(SandboxInvoice, other.invoice_id).payload or {}).get("kind")
        for other in db.session.scalars(
            select(SandboxAttachment).where(
                SandboxAttachment.sha256 == attachment.sha256, SandboxAttachment.id != attachment.id
            )
        )
        if db.session.get(SandboxInvoice, other.invoice_id).company_id == g.company.id
    )
    if same_file:
        raise Refused(409, "This file has already been imported")
    pending.payload = {
        "dialect": "pennylane",
        "kind": "supplier_invoice" if purchase else "customer_invoice",
        **{key: value for key, value in kept.items() if value is not None},
        **{key: str(value) for key, value in amounts.items()},
        party_field: party.id,
        "file_attachment_id": pending.id,
        "invoice_lines": kept_lines,
    }
    pending.idempotency_key = f"pennylane-{pending.id}"
    db.session.commit()
    response = jsonify(_invoice_json(pending))
    response.status_code = 201
    return response


# --- reading a request as Pennylane does -----------------------------------------------------


class Refused(Exception):
    """A request Pennylane refuses: answered {"error": …, "status": …}, nothing of it stored."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@api.errorhandler(Refused)
def _refused(error: Refused) -> Response:
    db.session.rollback()
    return _error(error.status, error.message)


def _refuse_constant(name: str):
    raise ValueError(name)


def _body() -> dict[str, Any]:
    """The JSON object sent; NaN, Infinity, a list or anything unreadable is a bad request."""
    try:
        body = json.loads(request.get_data(cache=True), parse_float=Decimal, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise Refused(400, "The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise Refused(422, "Body must be a JSON object")
    return body


def _text(body: dict, key: str, *, limit: int = 255, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        if required:
            raise Refused(422, f"{key} is missing")
        return None
    if not isinstance(value, str):
        raise Refused(422, f"{key} must be a string")
    if len(value) > limit:
        raise Refused(422, f"{key} is too long (maximum is {limit} characters)")
    return value


def _amount(value: Any, key: str) -> Decimal:
    """An amount as Pennylane takes it: a decimal string (a number is read too), finite, in cents or
    finer (at most 6 decimals) and within 13 digits before the point."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise Refused(422, f"{key} is required and must be a decimal string")
    text = str(value).strip()
    if not re.fullmatch(r"-?[0-9]{1,13}(\.[0-9]{1,6})?", text):
        raise Refused(422, f'{key} must be a decimal number such as "120.00"')
    return Decimal(text)


def _date(body: dict, key: str, *, required: bool = False) -> str | None:
    value = _text(body, key, limit=10, required=required)
    if value is None:
        return None
    try:
        date.fromisoformat(value)
    except ValueError:
        raise Refused(422, f"{key} must be a date (YYYY-MM-DD)") from None
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise Refused(422, f"{key} must be a date (YYYY-MM-DD)")
    return value


def _row_id(value: Any) -> int:
    """An id sent in a body: an integer (or its digits) of a row that can exist, else 0 (no row)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return 0
    return to_id(value) or 0


# --- shapes ---------------------------------------------------------------------------------


def _filters():
    raw = request.args.get("filter")
    if not raw:
        return [], None
    try:
        parsed = json.loads(raw, parse_float=Decimal, parse_constant=_refuse_constant)
        found = [(f["field"], f["operator"], f["value"]) for f in parsed]
        if not isinstance(parsed, list) or not all(
            isinstance(field, str) and isinstance(operator, str) for field, operator, _ in found
        ):
            raise TypeError("filter")
        return found, None
    except (ValueError, KeyError, TypeError, RecursionError):
        return [], _error(400, "filter must be a JSON array of {field, operator, value}")


def _page(query, shape) -> Response:
    limit, after = to_int(request.args.get("limit"), 20), to_int(request.args.get("cursor"), 0)
    if after is None:
        return _error(400, "cursor is invalid")
    if limit is None or not 1 <= limit <= MAX_LIMIT:
        return _error(400, f"limit must be between 1 and {MAX_LIMIT}")
    rows = db.session.scalars(
        query.where(SandboxItem.id > after_id(after)).order_by(SandboxItem.id).limit(limit + 1)
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return jsonify(
        {
            "items": [shape(r) for r in rows],
            "has_more": more,
            "next_cursor": str(rows[-1].id) if more else None,
        }
    )


def _ledger_json(item: SandboxItem) -> dict:
    extras = item.extras or {}
    return {
        "id": item.id,
        "number": item.code,
        "label": item.name,
        "vat_rate": "FR_200" if (item.code or "").startswith(("6", "7")) else "exempt",
        "country_alpha2": "FR",
        "enabled": item.active,
        "reverse_charge": bool(extras.get("reverse_charge")),
    }


def _party_json(item: SandboxItem) -> dict:
    extras = item.extras or {}
    return {
        "id": item.id,
        "name": item.name,
        "vat_number": item.vat_number or "",
        "reg_no": item.siren or "",
        "emails": [extras["email"]] if extras.get("email") else [],
        "iban": extras.get("iban") or "",
        "created_at": _iso(item.updated_at),
        "updated_at": _iso(item.updated_at),
    }


def _bank_json(item: SandboxItem) -> dict:
    return {"id": item.id, "name": item.name, "currency": "EUR", "enabled": item.active}


def _categories(kind: str) -> Response:
    rows = db.session.scalars(
        select(SandboxItem)
        .where(
            SandboxItem.company_id == g.company.id,
            SandboxItem.kind == "tracking_categories",
            SandboxItem.active.is_(True),
        )
        .order_by(SandboxItem.id)
    ).all()
    groups: dict[str, int] = {}
    for row in rows:
        axis = (row.extras or {}).get("axis") or "Analytique"
        groups.setdefault(
            axis, int(hashlib.sha256(f"{g.company.id}/{axis}".encode()).hexdigest(), 16) % 10**6
        )
    if kind == "category_groups":
        items = [{"id": gid, "label": axis} for axis, gid in groups.items()]
    else:
        items = [
            {
                "id": row.id,
                "label": row.name,
                "category_group": {"id": groups[(row.extras or {}).get("axis") or "Analytique"]},
            }
            for row in rows
        ]
    return jsonify({"items": items, "has_more": False, "next_cursor": None})


def _invoices(kind: str) -> Response:
    wanted = "supplier_invoice" if kind == "supplier_invoices" else "customer_invoice"
    filters, problem = _filters()
    if problem:
        return problem
    rows = [
        i
        for i in db.session.scalars(
            select(SandboxInvoice)
            .where(SandboxInvoice.company_id == g.company.id)
            .order_by(SandboxInvoice.id)
        )
        if (i.payload or {}).get("kind") == wanted
    ]
    for field, operator, value in filters:
        if field != "invoice_number" or operator != "eq":
            return _error(400, f"Filter on {field[:40]} is not supported")
        rows = [i for i in rows if i.payload.get("invoice_number") == value]
    return jsonify({"items": [_invoice_json(i) for i in rows], "has_more": False, "next_cursor": None})


def _invoice_json(invoice: SandboxInvoice) -> dict:
    payload = invoice.payload
    return {
        "id": invoice.id,
        "invoice_number": payload.get("invoice_number"),
        "external_reference": payload.get("external_reference"),
        "date": payload.get("date"),
        "deadline": payload.get("deadline"),
        "currency_amount": payload.get("currency_amount"),
        "supplier": {"id": payload.get("supplier_id")} if payload.get("supplier_id") else None,
        "customer": {"id": payload.get("customer_id")} if payload.get("customer_id") else None,
    }


def _error(status: int, message: str) -> Response:
    response = jsonify({"error": message, "status": status})
    response.status_code = status
    return response


def _faults() -> Response | None:
    faulted = apply_faults()
    if faulted is None or faulted.status_code != 429:
        return faulted
    wait = faulted.headers.get("Retry-After", "1")
    response = Response(
        f"Rate limit exceeded. Please retry in {wait} seconds.", status=429, mimetype="text/plain"
    )
    response.headers["retry-after"] = wait
    response.headers["ratelimit-limit"] = "25"
    response.headers["ratelimit-remaining"] = "0"
    response.headers["ratelimit-reset"] = str(int(time.time()) + int(wait))
    return response


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")
