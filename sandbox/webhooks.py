"""The webhooks the Xero and QuickBooks dialects send when an item of a company's lists changes.

As the vendors do, only to the app that holds a live consent to the company (Raccord's client: a
grant neither revoked nor expired; for Xero also its connection to the organisation, for QuickBooks
a token with the accounting scope), in the vendor's exact format, signed with the key the app and
the software share, a short while after the change (changes of ~0.5 s go out together), from a
background thread: a delivery that fails never fails the change that caused it.

- Xero (https://developer.xero.com/documentation/guides/webhooks/overview/): POST
  {"events": [{"resourceUrl", "resourceId", "eventDateUtc", "eventType": "CREATE|UPDATE",
  "eventCategory": "CONTACT", "tenantId", "tenantType": "ORGANISATION"}], "firstEventSequence",
  "lastEventSequence", "entropy"}, header x-xero-signature = base64(HMAC-SHA256(body, webhooks key)).
  Xero's webhooks cover contacts (and invoices, credit notes), not accounts or tax rates: only the
  suppliers and customers send one.
- QuickBooks Online (https://developer.intuit.com/app/developer/qbo/docs/develop/webhooks): POST
  {"eventNotifications": [{"realmId", "dataChangeEvent": {"entities": [{"name", "id", "operation",
  "lastUpdated"}]}}]}, header intuit-signature = base64(HMAC-SHA256(body, verifier token)).

Where they go: the sandbox setting `webhook_url:<vendor>` (the controls' API), else the host's
SANDBOX_WEBHOOK_URL + /<vendor>, else this server's own /webhooks/<vendor> (request.host_url: the
sandbox is mounted in the app that receives them).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import logging
import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Any

from flask import current_app, has_request_context, request
from sqlalchemy import select

from sandbox.models import SandboxConnection, SandboxGrant, SandboxItem, SandboxToken
from webapp.extensions import db

log = logging.getLogger(__name__)

VENDORS = ("xero", "quickbooks")
#: Xero's webhooks name contacts; the sandbox's other lists send none in Xero's dialect.
XERO_CATEGORIES = {"suppliers": "CONTACT", "customers": "CONTACT"}
#: The QuickBooks entity each sandbox list is read as (sandbox/dialects/quickbooks.py ENTITY_KINDS).
QUICKBOOKS_ENTITIES = {
    "suppliers": "Vendor",
    "customers": "Customer",
    "accounts": "Account",
    "payment_methods": "Account",
    "tax_rates": "TaxCode",
    "tracking_categories": "Class",
}
QUICKBOOKS_SCOPE = "com.intuit.quickbooks.accounting"
#: At most this many items of one change are announced (a generated list of 200 000).
MAX_ANNOUNCED = 100
#: How long changes wait for others to go out with them, and a delivery's timeout.
BATCH_SECONDS = 0.5
TIMEOUT_SECONDS = 5.0


def signature(body: bytes, key: str) -> str:
    """base64(HMAC-SHA256(body, key)): Xero's x-xero-signature and Intuit's intuit-signature."""
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def announce(items: list[SandboxItem], operation: str) -> None:
    """Tell the apps that hold a live consent to these items' companies that they changed.

    Called in a sandbox request after the commit; reads what it needs now, sends later."""
    try:
        _announce(items[:MAX_ANNOUNCED], operation)
    except Exception:  # never the change's failure
        log.warning("Sandbox webhook: the change could not be announced", exc_info=True)


def _announce(items: list[SandboxItem], operation: str) -> None:
    key = current_app.config.get("WEBHOOK_KEY")
    if not items or not key or not has_request_context():
        return
    companies = {item.company_id for item in items}
    for vendor in VENDORS:
        listening = {c for c in companies if _listens(vendor, c)}
        url = _delivery_url(vendor)
        for item in items:
            if item.company_id not in listening:
                continue
            event = _xero_event(item, operation) if vendor == "xero" else _quickbooks_entity(item, operation)
            if event is not None:
                OUTBOX.add(vendor, url, key, item.company_id, event)


def _delivery_url(vendor: str) -> str:
    from sandbox.faults import get_setting

    configured = get_setting(f"webhook_url:{vendor}")
    if isinstance(configured, str) and configured:
        return configured
    base = current_app.config.get("WEBHOOK_URL")
    if base:
        return f"{base}/{vendor}"
    return f"{request.host_url.rstrip('/')}/webhooks/{vendor}"


def _live_grants(company_id: str) -> list[SandboxGrant]:
    client_id = current_app.config.get("WEBHOOK_CLIENT_ID") or "raccord"
    now = datetime.now(UTC)
    grants = db.session.scalars(
        select(SandboxGrant).where(
            SandboxGrant.client_id == client_id,
            SandboxGrant.revoked_at.is_(None),
            SandboxGrant.refresh_expired_at.is_(None),
        )
    ).all()
    return [
        g
        for g in grants
        if company_id in g.companies and (g.consent_ends_at is None or g.consent_ends_at > now)
    ]


def _listens(vendor: str, company_id: str) -> bool:
    grants = _live_grants(company_id)
    if not grants:
        return False
    if vendor == "xero":
        client_id = grants[0].client_id
        return (
            db.session.scalar(
                select(SandboxConnection.id).where(
                    SandboxConnection.client_id == client_id, SandboxConnection.company_id == company_id
                )
            )
            is not None
        )
    scopes = db.session.scalars(
        select(SandboxToken.scope).where(
            SandboxToken.grant_id.in_([g.id for g in grants]), SandboxToken.revoked.is_(False)
        )
    ).all()
    return any(QUICKBOOKS_SCOPE in (scope or "").split() for scope in scopes)


def _xero_event(item: SandboxItem, operation: str) -> dict[str, Any] | None:
    from sandbox.dialects import tenant_guid

    category = XERO_CATEGORIES.get(item.kind)
    if category is None:
        return None
    root = request.url_root.rstrip("/")  # …/sandbox, where the dialect's API answers
    return {
        "resourceUrl": f"{root}/xero/api.xro/2.0/Contacts/{item.guid}",
        "resourceId": item.guid,
        "eventDateUtc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
        "eventType": "CREATE" if operation == "Create" else "UPDATE",
        "eventCategory": category,
        "tenantId": tenant_guid(item.company_id),
        "tenantType": "ORGANISATION",
    }


def _quickbooks_entity(item: SandboxItem, operation: str) -> dict[str, Any] | None:
    name = QUICKBOOKS_ENTITIES.get(item.kind)
    if name is None:
        return None
    return {
        "name": name,
        "id": str(item.id),
        "operation": operation,
        "lastUpdated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    }


def body_for(vendor: str, pending: list[tuple[str, dict[str, Any]]], sequence: int) -> dict[str, Any]:
    """One delivery in the vendor's format, from (company id, event) pairs."""
    if vendor == "xero":
        return {
            "events": [event for _, event in pending],
            "firstEventSequence": sequence,
            "lastEventSequence": sequence + len(pending) - 1,
            "entropy": secrets.token_hex(10).upper(),
        }
    from sandbox.dialects.quickbooks import realm_of

    by_company: dict[str, list[dict[str, Any]]] = {}
    for company_id, entity in pending:
        by_company.setdefault(company_id, []).append(entity)
    return {
        "eventNotifications": [
            {"realmId": realm_of(company_id), "dataChangeEvent": {"entities": entities}}
            for company_id, entities in by_company.items()
        ]
    }


SIGNATURE_HEADERS = {"xero": "x-xero-signature", "quickbooks": "intuit-signature"}


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """Send one delivery; its HTTP status. Tests replace this to watch what is sent."""
    import requests

    return requests.post(url, data=body, headers=headers, timeout=TIMEOUT_SECONDS).status_code


class Outbox:
    """Changes waiting to go out, per (vendor, address, key): the first one starts a timer, and what
    arrives before it rings goes out in the same delivery."""

    def __init__(self, delay: float = BATCH_SECONDS):
        self.delay = delay
        self.lock = threading.Lock()
        self.pending: dict[tuple[str, str, str], list[tuple[str, dict[str, Any]]]] = {}
        self.timers: dict[tuple[str, str, str], threading.Timer] = {}
        self.sequence = itertools.count(int(time.time()))

    def add(self, vendor: str, url: str, key: str, company_id: str, event: dict[str, Any]) -> None:
        slot = (vendor, url, key)
        with self.lock:
            self.pending.setdefault(slot, []).append((company_id, event))
            if slot not in self.timers:
                timer = threading.Timer(self.delay, self.send, args=(slot,))
                timer.daemon = True
                timer.name = f"sandbox-webhook-{vendor}"
                self.timers[slot] = timer
                timer.start()

    def send(self, slot: tuple[str, str, str]) -> None:
        with self.lock:
            pending = self.pending.pop(slot, [])
            self.timers.pop(slot, None)
            first = next(self.sequence)
            for _ in pending[1:]:
                next(self.sequence)
        if not pending:
            return
        vendor, url, key = slot
        body = json.dumps(body_for(vendor, pending, first)).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADERS[vendor]: signature(body, key)}
        try:
            status = post(url, body, headers)
            if status >= 400:
                log.warning("Sandbox webhook to %s answered %s", vendor, status)
        except Exception as exc:  # the receiving end is down: vendors retry; the sandbox says so
            log.warning("Sandbox webhook to %s not delivered: %s", vendor, type(exc).__name__)

    def flush(self) -> None:
        """Send everything waiting now (tests)."""
        with self.lock:
            slots = list(self.timers)
            for slot in slots:
                self.timers[slot].cancel()
        for slot in slots:
            self.send(slot)


OUTBOX = Outbox()
