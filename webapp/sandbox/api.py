"""The sandbox's REST API: the connected company, its six lists (keyset-paged), and invoices."""

from __future__ import annotations

import time
from datetime import datetime

from flask import Blueprint, g, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.sandbox.csrf import sandbox_csrf
from webapp.sandbox.faults import apply_faults
from webapp.sandbox.models import SandboxCompany, SandboxGrant, SandboxInvoice, SandboxItem, SandboxToken

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
    token = db.session.scalar(select(SandboxToken).where(SandboxToken.access_token == header[7:]))
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
    try:
        limit = min(int(request.args.get("limit", 100)), MAX_LIMIT)
        after = int(request.args.get("cursor") or 0)
    except ValueError:
        return _error(400, "invalid_request", "cursor and limit must be integers", field="cursor")
    query = (
        select(SandboxItem)
        .where(SandboxItem.company_id == g.company.id, SandboxItem.kind == kind, SandboxItem.id > after)
        .order_by(SandboxItem.id)
        .limit(limit + 1)
    )
    since = request.args.get("updated_since")
    if since:
        try:
            query = query.where(SandboxItem.updated_at > datetime.fromisoformat(since))
        except ValueError:
            return _error(
                400, "invalid_request", "updated_since must be an ISO 8601 date", field="updated_since"
            )
    rows = db.session.scalars(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return jsonify(
        {"items": [_item_json(r) for r in rows], "next_cursor": str(rows[-1].id) if more else None}
    )


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
        if not external_id:
            return _error(422, "validation_error", f"{field} is required", field=field)
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
