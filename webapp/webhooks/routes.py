"""The two endpoints: the body read once, bounded, and answered with no body (Xero asks for an
empty 200, Intuit reads only the status)."""

from __future__ import annotations

from flask import Response, current_app, request

from webapp.services.webhooks import SIGNATURE_HEADERS, Outcome, receive
from webapp.webhooks import bp


def _answer(outcome: Outcome) -> Response:
    response = Response(b"", status=outcome.status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _delivery(vendor: str) -> Response:
    limit = int(current_app.config["WEBHOOK_MAX_BYTES"])
    if request.content_length is not None and request.content_length > limit:
        return _answer(receive_too_large(vendor))
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        return _answer(receive_too_large(vendor))
    return _answer(receive(vendor, body, request.headers.get(SIGNATURE_HEADERS[vendor])))


def receive_too_large(vendor: str) -> Outcome:
    from webapp import metrics
    from webapp.extensions import db
    from webapp.models import WebhookDelivery

    db.session.add(
        WebhookDelivery(vendor=vendor, outcome="malformed", body_sha256="", detail="body too large")
    )
    db.session.commit()
    metrics.inc("raccord_webhook_deliveries", vendor=vendor, outcome="malformed")
    current_app.logger.warning("Webhook %s: malformed (413) body too large", vendor)
    return Outcome(413, "malformed", "body too large")


@bp.post("/xero")
def xero() -> Response:
    return _delivery("xero")


@bp.post("/quickbooks")
def quickbooks() -> Response:
    return _delivery("quickbooks")
