"""Sandbox controls for tests and support: an HTTP API (JSON) and a small page with the same actions."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from sandbox.api import LIST_KINDS
from sandbox.columns import utcnow
from sandbox.csrf import sandbox_csrf
from sandbox.faults import get_setting, set_setting
from sandbox.models import (
    SandboxAttachment,
    SandboxCompany,
    SandboxGrant,
    SandboxInvoice,
    SandboxItem,
    SandboxToken,
)
from sandbox.oauth import DEFAULT_ACCESS_TTL, DEFAULT_REFRESH_TTL
from sandbox.seed import generate_items
from sandbox.tenancy import has_control_token, signed_in_staff
from sandbox.webhooks import MAX_ANNOUNCED, VENDORS, announce
from webapp.extensions import db

bp = Blueprint("sandbox_controls", __name__, url_prefix="/controls")
api = Blueprint("sandbox_controls_api", __name__, url_prefix="/controls/api")
sandbox_csrf.exempt(api)

MAX_GENERATED = 200_000


class ControlError(ValueError):
    """Bad input to a control; the message says what, in French."""


# --- the actions ------------------------------------------------------------------------


def _int(value: Any, name: str, minimum: int, maximum: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: 1e999 is read as infinity
        raise ControlError(f"{name} doit être un nombre entier.") from None
    if not minimum <= number <= maximum:
        raise ControlError(f"{name} doit être compris entre {minimum} et {maximum}.")
    return number


def _company(company_id: str) -> SandboxCompany:
    company = db.session.get(SandboxCompany, company_id)
    if company is None:
        abort(404)
    return company


def set_lifetimes(access_ttl: Any, refresh_ttl: Any) -> None:
    set_setting("access_ttl", _int(access_ttl, "La durée du jeton d'accès", 1, 86400 * 30))
    set_setting("refresh_ttl", _int(refresh_ttl, "La durée du jeton de rafraîchissement", 1, 86400 * 400))


def set_latency(latency_ms: Any) -> None:
    set_setting("latency_ms", _int(latency_ms, "La latence", 0, 30_000))


def set_webhook_url(vendor: str, url: Any) -> None:
    """Where the dialect of `vendor` sends its webhooks; empty: Raccord's own /webhooks/<vendor>."""
    if url and (not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) > 500):
        raise ControlError("L'adresse des webhooks doit commencer par http:// ou https://.")
    set_setting(f"webhook_url:{vendor}", url or None)


def set_faults(count: Any, status: Any = 503, retry_after: Any = 1, kind: str = "status") -> None:
    if kind not in ("status", "malformed", "drop"):
        raise ControlError("Le type de panne doit être status, malformed ou drop.")
    set_setting(
        "faults",
        {
            "count": _int(count, "Le nombre d'appels", 0, 10_000),
            "status": _int(status, "Le code HTTP", 429, 599),
            "retry_after": _int(retry_after, "Retry-After", 0, 3600),
            "kind": kind,
        },
    )


def expire_grants(company_id: str) -> int:
    """The company's consents end as when a refresh token has aged out: refreshes get invalid_grant."""
    _company(company_id)
    now = utcnow()
    grants = db.session.scalars(
        select(SandboxGrant).where(
            SandboxGrant.company_id == company_id, SandboxGrant.refresh_expired_at.is_(None)
        )
    ).all()
    for grant in grants:
        grant.refresh_expired_at = now
    db.session.execute(
        update(SandboxToken)
        .where(SandboxToken.company_id == company_id)
        .values(issued_at=time.time() - 10**7)
    )
    db.session.commit()
    return len(grants)


def end_consents_in(company_id: str, days: Any) -> int:
    """The company's consents end in `days` days whatever the use (as QuickBooks' five-year maximum):
    the next token answers say so, and refreshes are refused past that day."""
    _company(company_id)
    ends_at = utcnow() + timedelta(days=_int(days, "Nombre de jours", 0, 3650))
    grants = db.session.scalars(
        select(SandboxGrant).where(
            SandboxGrant.company_id == company_id,
            SandboxGrant.revoked_at.is_(None),
            SandboxGrant.refresh_expired_at.is_(None),
        )
    ).all()
    for grant in grants:
        grant.consent_ends_at = ends_at
    db.session.commit()
    return len(grants)


def revoke_grants(company_id: str) -> int:
    """The company's administrator withdrew Raccord's access: every token fails at once."""
    _company(company_id)
    grants = db.session.scalars(
        select(SandboxGrant).where(SandboxGrant.company_id == company_id, SandboxGrant.revoked_at.is_(None))
    ).all()
    for grant in grants:
        grant.revoked_at = utcnow()
    db.session.commit()
    return len(grants)


def add_item(company_id: str, kind: str, data: dict[str, Any]) -> SandboxItem:
    _company(company_id)
    if kind not in LIST_KINDS:
        raise ControlError("Liste inconnue.")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ControlError("Le nom est obligatoire.")
    name = name.strip()
    item = SandboxItem(
        company_id=company_id,
        kind=kind,
        external_id=data.get("id") or f"{kind[:3]}-x{uuid.uuid4().hex[:10]}",
        code=data.get("code") or None,
        name=name[:300],
        vat_number=data.get("vat_number") or None,
        siren=data.get("siren") or None,
        rate=str(data["rate"]) if data.get("rate") is not None else None,
        active=True,
        extras=data.get("extras") or {},
        updated_at=utcnow(),
    )
    db.session.add(item)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise ControlError("Un élément de cette liste a déjà cet identifiant.") from None
    announce([item], "Create")
    return item


def change_item(company_id: str, external_id: str, data: dict[str, Any]) -> SandboxItem:
    item = db.session.scalar(
        select(SandboxItem).where(
            SandboxItem.company_id == company_id, SandboxItem.external_id == external_id
        )
    )
    if item is None:
        abort(404)
    if data.get("name"):
        item.name = str(data["name"]).strip()[:300]
    if "active" in data:
        item.active = bool(data["active"])
    item.updated_at = utcnow()
    db.session.commit()
    announce([item], "Update")
    return item


def generate(company_id: str, kind: str, count: Any) -> int:
    _company(company_id)
    if kind not in ("suppliers", "customers"):
        raise ControlError("Seules les listes fournisseurs et clients peuvent être générées.")
    made = generate_items(company_id, kind, _int(count, "Le nombre d'éléments", 1, MAX_GENERATED))
    newest = db.session.scalars(
        select(SandboxItem)
        .where(SandboxItem.company_id == company_id, SandboxItem.kind == kind)
        .order_by(SandboxItem.id.desc())
        .limit(min(made, MAX_ANNOUNCED))
    ).all()
    announce(list(newest), "Create")
    return made


def state() -> dict[str, Any]:
    counts = dict(
        db.session.execute(
            select(SandboxItem.company_id, func.count()).group_by(SandboxItem.company_id)
        ).all()
    )
    invoices = dict(
        db.session.execute(
            select(SandboxInvoice.company_id, func.count()).group_by(SandboxInvoice.company_id)
        ).all()
    )
    companies = db.session.scalars(select(SandboxCompany).order_by(SandboxCompany.name)).all()
    return {
        "settings": {
            "access_ttl": get_setting("access_ttl", DEFAULT_ACCESS_TTL),
            "refresh_ttl": get_setting("refresh_ttl", DEFAULT_REFRESH_TTL),
            "latency_ms": get_setting("latency_ms", 0),
            "faults": get_setting("faults", {"count": 0}),
        },
        "companies": [
            {
                "id": c.id,
                "name": c.name,
                "items": counts.get(c.id, 0),
                "invoices": invoices.get(c.id, 0),
            }
            for c in companies
        ],
    }


# --- the JSON API -----------------------------------------------------------------------


@bp.before_request
def staff_only():
    """The page is for Raccord's support staff, signed in to Raccord; to anyone else it does not exist."""
    if not signed_in_staff():
        abort(404)


@api.before_request
def staff_or_token_only():
    """The JSON API: Raccord's staff in their browser, or automation with the configured token."""
    if signed_in_staff() or has_control_token():
        return None
    response = jsonify({"error": "Accès refusé : réservé au support de Raccord ou au jeton de contrôle."})
    response.headers["WWW-Authenticate"] = 'Bearer realm="Compta Démo controls"'
    return response, 401


@api.before_request
def json_only():
    # A cross-site form cannot send application/json without a CORS preflight, which is refused.
    if request.method == "POST" and not request.is_json:
        return jsonify({"error": "Content-Type application/json attendu."}), 415
    return None


@api.errorhandler(ControlError)
def control_error(error: ControlError):
    return jsonify({"error": str(error)}), 400


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ControlError("Le corps doit être un objet JSON.")
    return body


@api.get("/state")
def api_state():
    return jsonify(state())


@api.post("/settings")
def api_settings():
    body = _body()
    if "access_ttl" in body or "refresh_ttl" in body:
        set_lifetimes(
            body.get("access_ttl", get_setting("access_ttl", DEFAULT_ACCESS_TTL)),
            body.get("refresh_ttl", get_setting("refresh_ttl", DEFAULT_REFRESH_TTL)),
        )
    if "latency_ms" in body:
        set_latency(body["latency_ms"])
    for vendor in VENDORS:
        if f"webhook_url:{vendor}" in body:
            set_webhook_url(vendor, body[f"webhook_url:{vendor}"])
    return jsonify(state()["settings"])


@api.post("/faults")
def api_faults():
    body = _body()
    set_faults(
        body.get("count", 1), body.get("status", 503), body.get("retry_after", 1), body.get("kind", "status")
    )
    return jsonify(state()["settings"])


@api.post("/companies/<company_id>/expire")
def api_expire(company_id: str):
    return jsonify({"grants": expire_grants(company_id)})


@api.post("/companies/<company_id>/consent")
def api_consent(company_id: str):
    return jsonify({"grants": end_consents_in(company_id, _body().get("days", 30))})


@api.post("/companies/<company_id>/revoke")
def api_revoke(company_id: str):
    return jsonify({"grants": revoke_grants(company_id)})


@api.post("/companies/<company_id>/<kind>")
def api_add_item(company_id: str, kind: str):
    item = add_item(company_id, kind, _body())
    return jsonify({"id": item.external_id, "name": item.name}), 201


@api.post("/companies/<company_id>/<kind>/generate")
def api_generate(company_id: str, kind: str):
    return jsonify({"created": generate(company_id, kind, _body().get("count"))}), 201


@api.post("/companies/<company_id>/items/<external_id>")
def api_change_item(company_id: str, external_id: str):
    item = change_item(company_id, external_id, _body())
    return jsonify({"id": item.external_id, "name": item.name, "active": item.active})


@api.get("/companies/<company_id>/invoices")
def api_invoices(company_id: str):
    _company(company_id)
    rows = db.session.scalars(
        select(SandboxInvoice).where(SandboxInvoice.company_id == company_id).order_by(SandboxInvoice.id)
    ).all()
    attachments: dict[int, list[dict]] = {}
    for a in db.session.scalars(
        select(SandboxAttachment)
        .where(SandboxAttachment.invoice_id.in_([r.id for r in rows]))
        .order_by(SandboxAttachment.id)
    ):
        attachments.setdefault(a.invoice_id, []).append(
            {"filename": a.filename, "size": a.size, "sha256": a.sha256, "content_type": a.content_type}
        )
    return jsonify(
        {
            "items": [
                {
                    "id": r.id,
                    "idempotency_key": r.idempotency_key,
                    "payload": r.payload,
                    "attachments": attachments.get(r.id, []),
                }
                for r in rows
            ]
        }
    )


# --- the page ---------------------------------------------------------------------------


@bp.get("")
def page():
    return render_template("controls.html", state=state(), kinds=LIST_KINDS)


@bp.post("/action")
def page_action():
    form = request.form
    action = form.get("action")
    company_id = form.get("company_id", "")
    try:
        if action == "lifetimes":
            set_lifetimes(form.get("access_ttl"), form.get("refresh_ttl"))
            message = "Durées des jetons enregistrées."
        elif action == "latency":
            set_latency(form.get("latency_ms"))
            message = "Latence enregistrée."
        elif action == "faults":
            set_faults(form.get("count"), form.get("status"), form.get("retry_after") or 1)
            message = "Pannes programmées."
        elif action == "expire":
            message = f"{expire_grants(company_id)} autorisation(s) expirée(s)."
        elif action == "consent":
            count = end_consents_in(company_id, form.get("days"))
            message = f"{count} autorisation(s) prendront fin dans {form.get('days')} jour(s)."
        elif action == "revoke":
            message = f"{revoke_grants(company_id)} autorisation(s) révoquée(s)."
        elif action == "add":
            item = add_item(
                company_id, form.get("kind", ""), {"name": form.get("name"), "code": form.get("code")}
            )
            message = f"« {item.name} » ajouté."
        elif action == "archive":
            item = change_item(company_id, form.get("external_id", ""), {"active": False})
            message = f"« {item.name} » archivé."
        elif action == "generate":
            message = f"{generate(company_id, form.get('kind', ''), form.get('count'))} élément(s) générés."
        else:
            raise ControlError("Action inconnue.")
        flash(message, "success")
    except ControlError as error:
        flash(str(error), "error")
    return redirect(url_for("sandbox_controls.page"))
