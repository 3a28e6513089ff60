"""The sandbox's REST API: the connected company, its six lists (keyset-paged), and invoices."""

from __future__ import annotations

import hashlib
import time
import uuid

from flask import Blueprint, g, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from sandbox.columns import utcnow
from sandbox.csrf import sandbox_csrf
from sandbox.faults import apply_faults
from sandbox.inputs import after_id, to_int, to_moment
from sandbox.models import (
    SandboxAttachment,
    SandboxCompany,
    SandboxGrant,
    SandboxInvoice,
    SandboxItem,
    SandboxToken,
)
from webapp.extensions import db

bp = Blueprint("sandbox_api", __name__, url_prefix="/api/v1")
sandbox_csrf.exempt(bp)

LIST_KINDS = ("accounts", "suppliers", "customers", "tax_rates", "tracking_categories", "payment_methods")
MAX_LIMIT = 1000


def _error(status: int, error: str, message: str, **extra):
    response = jsonify({"error": error, "message": message, **extra})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = f'Bearer error="{error}"'
    return response


@bp.before_request
def authenticate():
    faulted = apply_faults()
    if faulted is not None:
        return faulted
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return _error(401, "invalid_token", "Missing bearer token")
    token = SandboxToken.by_access_token(header[7:])
    if token is None or token.revoked or token.is_expired():
        return _error(401, "invalid_token", "The access token is invalid or has expired")
    grant = db.session.get(SandboxGrant, token.grant_id)
    if grant is None or grant.revoked_at is not None:
        return _error(401, "invalid_token", "Access to this company was revoked")
    g.company = db.session.get(SandboxCompany, token.company_id)
    return None


@bp.get("/company")
def company():
    return jsonify({"id": g.company.id, "name": g.company.name, "siren": g.company.siren})


def _item_json(item: SandboxItem) -> dict:
    return {
        "id": item.external_id,
        "code": item.code,
        "name": item.name,
        "vat_number": item.vat_number,
        "siren": item.siren,
        "rate": item.rate,
        "status": "active" if item.active else "archived",
        "updated_at": item.updated_at.isoformat(),
        **({"extras": item.extras} if item.extras else {}),
    }


@bp.get("/<kind>")
def list_items(kind: str):
    if kind not in LIST_KINDS:
        return _error(404, "not_found", f"Unknown list {kind!r}")
    limit, after = to_int(request.args.get("limit"), 100), to_int(request.args.get("cursor"), 0)
    if limit is None or after is None or limit < 1:
        return _error(400, "invalid_request", "cursor and limit must be positive integers", field="cursor")
    limit = min(limit, MAX_LIMIT)
    query = (
        select(SandboxItem)
        .where(
            SandboxItem.company_id == g.company.id, SandboxItem.kind == kind, SandboxItem.id > after_id(after)
        )
        .order_by(SandboxItem.id)
        .limit(limit + 1)
    )
    search = (request.args.get("search") or "").strip()
    if search:
        pattern = f"%{search.replace('%', '').replace('_', '')}%"
        query = query.where(
            SandboxItem.name.ilike(pattern)
            | SandboxItem.vat_number.ilike(pattern)
            | SandboxItem.siren.ilike(pattern)
        )
    since = request.args.get("updated_since")
    if since:
        moment = to_moment(since)
        if moment is None:
            return _error(
                400, "invalid_request", "updated_since must be an ISO 8601 date", field="updated_since"
            )
        query = query.where(SandboxItem.updated_at > moment)
    rows = db.session.scalars(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return jsonify(
        {"items": [_item_json(r) for r in rows], "next_cursor": str(rows[-1].id) if more else None}
    )


PARTY_KINDS = {"suppliers": "sup", "customers": "cus"}


@bp.post("/<kind>")
def create_party(kind: str):
    """Create a supplier or a customer; like real software, refuse a second active one of the same name."""
    if kind not in PARTY_KINDS:
        return _error(405, "method_not_allowed", f"Items of {kind!r} cannot be created")
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        return _error(400, "invalid_request", "Idempotency-Key header is required", field="Idempotency-Key")
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return _error(400, "invalid_request", "Body must be a JSON object")
    existing = db.session.scalar(
        select(SandboxItem).where(
            SandboxItem.company_id == g.company.id, SandboxItem.kind == kind, SandboxItem.creation_key == key
        )
    )
    if existing is not None:
        return jsonify(_item_json(existing)), 200
    name = str(payload.get("name") or "").strip()
    if not name:
        return _error(422, "validation_error", "name is required", field="name")
    if len(name) > 300:
        return _error(422, "validation_error", "name is longer than 300 characters", field="name")
    same_name = db.session.scalar(
        select(SandboxItem.id).where(
            SandboxItem.company_id == g.company.id,
            SandboxItem.kind == kind,
            SandboxItem.active.is_(True),
            db.func.lower(SandboxItem.name) == name.lower(),
        )
    )
    if same_name is not None:
        return _error(
            422, "validation_error", f"The name {name!r} is already used by another contact", field="name"
        )
    item = SandboxItem(
        company_id=g.company.id,
        kind=kind,
        external_id=_next_external_id(kind),
        name=name,
        vat_number=(payload.get("vat_number") or None),
        siren=(payload.get("siren") or None),
        creation_key=key,
        updated_at=utcnow(),
    )
    db.session.add(item)
    try:
        db.session.commit()
    except IntegrityError:  # the same key sent twice at once, or the id just taken: the caller retries
        db.session.rollback()
        return _error(409, "conflict", "Concurrent creation, retry the request")
    return jsonify(_item_json(item)), 201


def _next_external_id(kind: str) -> str:
    return f"{PARTY_KINDS[kind]}-n{uuid.uuid4().hex[:10]}"


@bp.post("/invoices")
def create_invoice():
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        return _error(400, "invalid_request", "Idempotency-Key header is required", field="Idempotency-Key")
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return _error(400, "invalid_request", "Body must be a JSON object")
    existing = db.session.scalar(
        select(SandboxInvoice).where(
            SandboxInvoice.company_id == g.company.id, SandboxInvoice.idempotency_key == key
        )
    )
    if existing is not None:
        return jsonify({"id": existing.id, "replayed": True}), 200
    # Refused as real software refuse them: an unknown or archived account, contact or tax rate.
    for field, kind in (("account_id", "accounts"), ("contact_id", None), ("tax_rate_id", "tax_rates")):
        external_id = payload.get(field)
        if not external_id or not isinstance(external_id, str):
            return _error(422, "validation_error", f"{field} is required, as text", field=field)
        query = select(SandboxItem).where(
            SandboxItem.company_id == g.company.id, SandboxItem.external_id == external_id
        )
        if kind:
            query = query.where(SandboxItem.kind == kind)
        item = db.session.scalar(query)
        if item is None:
            return _error(422, "validation_error", f"{field} {external_id} does not exist", field=field)
        if not item.active:
            return _error(422, "validation_error", f"{item.code or item.name} is archived", field=field)
    invoice = SandboxInvoice(company_id=g.company.id, idempotency_key=key, payload=payload)
    db.session.add(invoice)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        existing = db.session.scalar(
            select(SandboxInvoice).where(
                SandboxInvoice.company_id == g.company.id, SandboxInvoice.idempotency_key == key
            )
        )
        return jsonify({"id": existing.id, "replayed": True}), 200
    return jsonify({"id": invoice.id, "replayed": False, "created_at": time.time()}), 201


@bp.get("/invoices")
def find_invoices():
    key = request.args.get("idempotency_key")
    query = (
        select(SandboxInvoice).where(SandboxInvoice.company_id == g.company.id).order_by(SandboxInvoice.id)
    )
    if key:
        query = query.where(SandboxInvoice.idempotency_key == key)
    return jsonify(
        {"items": [{"id": i.id, "idempotency_key": i.idempotency_key} for i in db.session.scalars(query)]}
    )


MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024


@bp.put("/invoices/<int:invoice_id>/attachments/<filename>")
def attach(invoice_id: int, filename: str):
    """Attach a file to an invoice under its name; sending it again replaces it (PUT is idempotent)."""
    invoice = db.session.get(SandboxInvoice, invoice_id)
    if invoice is None or invoice.company_id != g.company.id:
        return _error(404, "not_found", f"Invoice {invoice_id} not found")
    data = request.get_data(cache=False)
    content_type = (request.content_type or "").split(";")[0].strip()
    if content_type != "application/pdf" or not data.startswith(b"%PDF-"):
        return _error(415, "unsupported_media_type", "Attachments must be PDF files", field="attachment")
    if len(data) > MAX_ATTACHMENT_BYTES:
        return _error(413, "too_large", "Attachments are limited to 10 MB", field="attachment")
    attachment = db.session.scalar(
        select(SandboxAttachment).where(
            SandboxAttachment.invoice_id == invoice.id, SandboxAttachment.filename == filename[:200]
        )
    )
    created = attachment is None
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
        return _error(409, "conflict", "Concurrent upload, retry the request")
    return jsonify({"filename": attachment.filename, "size": attachment.size, "sha256": attachment.sha256}), (
        201 if created else 200
    )
