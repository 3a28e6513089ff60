"""Changes pushed by the accounting software, applied at once: webhooks, checked, mapped, coalesced.

Which software pushes what (and which does not):

- Xero (https://developer.xero.com/documentation/guides/webhooks/overview/) POSTs
  {"events": [{"resourceUrl", "resourceId", "eventDateUtc", "eventType": "CREATE|UPDATE",
  "eventCategory": "CONTACT|INVOICE|…", "tenantId", "tenantType": "ORGANISATION"}],
  "firstEventSequence", "lastEventSequence", "entropy"}, signed in `x-xero-signature` =
  base64(HMAC-SHA256(raw body, webhooks key)). Before it sends any, it checks the endpoint ('intent to
  receive'): signed payloads with `events: []`, to be answered 200 with an empty body when the
  signature is right and 401 when it is wrong, within 5 seconds. A CONTACT is a supplier or a
  customer: both lists are read again.
- QuickBooks Online (https://developer.intuit.com/app/developer/qbo/docs/develop/webhooks) POSTs
  {"eventNotifications": [{"realmId", "dataChangeEvent": {"entities": [{"name", "id", "operation",
  "lastUpdated"}]}}]}, signed in `intuit-signature` = base64(HMAC-SHA256(raw body, verifier token)),
  to be answered 200 within 3 seconds and processed asynchronously; Intuit retries failures.
  Vendor → suppliers, Customer → customers, Account → accounts and payment methods, TaxCode and
  TaxRate → VAT rates, Class and Department → analytics.
- Pennylane's webhooks (in beta) cover DMS files and invoices, not the suppliers or the ledger
  accounts; Sage Business Cloud Accounting v3.1 has none. Their lists refresh by themselves each
  night (changes only, through Pennylane's changelogs and Sage's updated_or_created_since), or each
  hour where the dossier asks for it (Integration.refresh_frequency, webapp.services.periodic).

A delivery is answered at once: nothing here calls the software. Each list it names is refreshed
(changes only) for every connected integration of that software and company; a burst of deliveries
starts one refresh per list, and a change arriving while that refresh runs marks the list 'dirty' in
Redis, so one more refresh runs when it ends (jobs.lists.refresh_list): no change is ever missed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select

from webapp import metrics
from webapp.extensions import db
from webapp.models import Integration, IntegrationStatus, ListKind, SyncStatus, WebhookDelivery
from webapp.models.base import utcnow

log = logging.getLogger(__name__)

SIGNATURE_HEADERS = {"xero": "x-xero-signature", "quickbooks": "intuit-signature"}
KEY_SETTINGS = {"xero": "XERO_WEBHOOK_KEY", "quickbooks": "QUICKBOOKS_WEBHOOK_VERIFIER_TOKEN"}

XERO_CATEGORIES: dict[str, tuple[ListKind, ...]] = {
    "CONTACT": (ListKind.SUPPLIERS, ListKind.CUSTOMERS),
}
QUICKBOOKS_ENTITIES: dict[str, tuple[ListKind, ...]] = {
    "Vendor": (ListKind.SUPPLIERS,),
    "Customer": (ListKind.CUSTOMERS,),
    "Account": (ListKind.ACCOUNTS, ListKind.PAYMENT_METHODS),
    "TaxCode": (ListKind.TAX_RATES,),
    "TaxRate": (ListKind.TAX_RATES,),
    "Class": (ListKind.TRACKING_CATEGORIES,),
    "Department": (ListKind.TRACKING_CATEGORIES,),
}

#: A list marked dirty is refreshed once more when its running refresh ends; the mark lasts a day.
DIRTY_TTL = 86400
MAX_COMPANIES_KEPT = 50
#: Deliveries whose signature does not hold: nothing in them can be trusted, not even their size.
UNTRUSTED = ("unsigned", "forged")


class Malformed(ValueError):
    """The body is not the vendor's format; the message says what, for the delivery's row."""


@dataclass
class Outcome:
    status: int
    outcome: str
    detail: str = ""
    company_ids: list[str] = field(default_factory=list)
    integration_ids: list[int] = field(default_factory=list)
    lists: list[str] = field(default_factory=list)
    received_at: datetime = field(default_factory=utcnow)


def signing_key(vendor: str) -> str | None:
    """The key a delivery of `vendor` must be signed with: the vendor's app's, or, where the
    software is reached through the sandbox's dialect, the key the dialect and Raccord share."""
    from webapp.connectors.catalogue import software_status

    config = current_app.config
    if software_status(vendor).through_sandbox:
        return config.get("SANDBOX_WEBHOOK_KEY")
    return config.get(KEY_SETTINGS[vendor])


def signature_ok(body: bytes, given: str, key: str) -> bool:
    expected = base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, given.strip().encode())


def changes_in(vendor: str, payload: Any) -> dict[str, set[ListKind]]:
    """company id → the lists the delivery says changed; Malformed when it is not the vendor's format."""
    changes: dict[str, set[ListKind]] = {}
    if vendor == "xero":
        events = payload.get("events") if isinstance(payload, dict) else None
        if not isinstance(events, list):
            raise Malformed("no events list")
        for event in events:
            if not isinstance(event, dict) or not isinstance(event.get("tenantId"), str):
                raise Malformed("an event without tenantId")
            kinds = XERO_CATEGORIES.get(str(event.get("eventCategory")), ())
            changes.setdefault(event["tenantId"][:120], set()).update(kinds)
        return changes
    notifications = payload.get("eventNotifications") if isinstance(payload, dict) else None
    if not isinstance(notifications, list):
        raise Malformed("no eventNotifications list")
    for notification in notifications:
        if not isinstance(notification, dict) or not isinstance(notification.get("realmId"), str):
            raise Malformed("a notification without realmId")
        event = notification.get("dataChangeEvent")
        entities = event.get("entities") if isinstance(event, dict) else None
        if not isinstance(entities, list):
            raise Malformed("a notification without dataChangeEvent.entities")
        kinds = changes.setdefault(notification["realmId"][:120], set())
        for entity in entities:
            if not isinstance(entity, dict):
                raise Malformed("an entity that is not an object")
            kinds.update(QUICKBOOKS_ENTITIES.get(str(entity.get("name")), ()))
    return changes


def receive(vendor: str, body: bytes, given_signature: str | None) -> Outcome:
    """What to answer to one delivery, and its row written (the counter and a log line too)."""
    digest = hashlib.sha256(body).hexdigest()
    outcome = _decide(vendor, body, given_signature, digest)
    if outcome.outcome in UNTRUSTED:
        # Anyone can send these, as fast as they like: counted and logged, never stored.
        db.session.rollback()
        metrics.inc("raccord_webhook_deliveries", vendor=vendor, outcome=outcome.outcome)
        log.warning("Webhook %s: %s (%d) %s", vendor, outcome.outcome, outcome.status, outcome.detail)
        return outcome
    db.session.add(
        WebhookDelivery(
            vendor=vendor,
            received_at=outcome.received_at,
            outcome=outcome.outcome,
            body_sha256=digest,
            company_ids=outcome.company_ids[:MAX_COMPANIES_KEPT],
            integration_ids=outcome.integration_ids,
            lists=outcome.lists,
            detail=outcome.detail[:300],
        )
    )
    db.session.commit()
    metrics.inc("raccord_webhook_deliveries", vendor=vendor, outcome=outcome.outcome)
    log.log(
        logging.INFO if outcome.status < 400 else logging.WARNING,
        "Webhook %s: %s (%d) %s",
        vendor,
        outcome.outcome,
        outcome.status,
        outcome.detail,
    )
    return outcome


def _decide(vendor: str, body: bytes, given: str | None, digest: str) -> Outcome:
    key = signing_key(vendor)
    if not given:
        return Outcome(401, "unsigned", "no signature header")
    if not key:
        return Outcome(401, "forged", "no key configured for this software")
    if not signature_ok(body, given, key):
        return Outcome(401, "forged", "signature does not match")
    try:
        payload = json.loads(body)
        changes = changes_in(vendor, payload)
    except (ValueError, RecursionError) as exc:
        detail = str(exc) if isinstance(exc, Malformed) else "not JSON"
        return Outcome(400, "malformed", detail)
    if not changes:
        return Outcome(200, "intent", "no events")  # Xero's intent to receive
    company_ids = sorted(changes)
    if _seen(digest):
        return Outcome(200, "replayed", "same body accepted before", company_ids=company_ids)
    integrations = list(
        db.session.scalars(
            select(Integration)
            .where(
                Integration.software == vendor,
                Integration.company_id.in_(company_ids),
                Integration.status == IntegrationStatus.CONNECTED,
            )
            .order_by(Integration.id)
        )
    )
    if not integrations:
        return Outcome(200, "unknown_company", "no connected integration", company_ids=company_ids)
    done: list[str] = []
    names: set[str] = set()
    now = utcnow()
    for integration in integrations:
        integration.last_webhook_at = now  # committed with the delivery's row, received at `now`
        for kind in sorted(changes[integration.company_id]):
            done.append(refresh_soon(integration, kind))
            names.add(kind.value)
    detail = ", ".join(
        f"{word} {done.count(word)}" for word in ("queued", "dirty", "not queued") if word in done
    )
    return Outcome(
        200,
        "accepted",
        detail,
        company_ids=company_ids,
        integration_ids=[i.id for i in integrations],
        lists=sorted(names),
        received_at=now,
    )


def _seen(digest: str) -> bool:
    since = utcnow() - timedelta(hours=current_app.config["WEBHOOK_REPLAY_HOURS"])
    return (
        db.session.scalar(
            select(WebhookDelivery.id).where(
                WebhookDelivery.body_sha256 == digest,
                WebhookDelivery.received_at >= since,
                WebhookDelivery.outcome == "accepted",
            )
        )
        is not None
    )


# --- coalescing: one refresh per list at a time, and one more if a change came meanwhile ---------


def dirty_key(integration_id: int, kind: ListKind) -> str:
    return f"raccord:list-dirty:{integration_id}:{kind.value}"


def refresh_soon(integration: Integration, kind: ListKind) -> str:
    """A changes-only refresh of one list: queued ('queued'), or, one being queued or running
    already, the list marked dirty so that one more runs when it ends ('dirty')."""
    from webapp.services.jobs import get_redis
    from webapp.services.lists import _release_if_stale, start_refresh, sync_for

    try:
        sync = sync_for(integration, kind)
        _release_if_stale(sync)
        if sync.status is SyncStatus.RUNNING:
            get_redis().set(dirty_key(integration.id, kind), "1", ex=DIRTY_TTL)
            db.session.commit()  # a fresh read: the refresh may have ended meanwhile
            db.session.refresh(sync)
            if sync.status is SyncStatus.RUNNING:
                return "dirty"
        start_refresh(integration, kind, None, changes_only=True)
        return "queued"
    except Exception as exc:
        # The job service or Redis down (UserFacingJobError, JobBackendUnavailable, the dirty mark not
        # set): the night's refresh reads these changes (since the last load).
        log.warning("Webhook refresh of %s/%s not queued: %s", integration.id, kind.value, type(exc).__name__)
        db.session.rollback()
        return "not queued"


def after_refresh(integration_id: int, kind: ListKind, *, succeeded: bool) -> bool:
    """When a refresh ends (jobs.lists.refresh_list): if a change came while it ran, one more
    changes-only refresh. A failed refresh drops the mark: the next one reads every change since the
    last successful load anyway. True when one more was started."""
    from webapp.services.jobs import JobBackendUnavailable, UserFacingJobError, get_redis
    from webapp.services.lists import start_refresh

    try:
        was_dirty = bool(get_redis().delete(dirty_key(integration_id, kind)))
    except Exception:
        log.warning("Could not read the dirty mark of %s/%s", integration_id, kind.value)
        return False
    if not (was_dirty and succeeded):
        return False
    integration = db.session.get(Integration, integration_id)
    if integration is None or integration.status is not IntegrationStatus.CONNECTED:
        return False
    try:
        start_refresh(integration, kind, None, changes_only=True)
    except (UserFacingJobError, JobBackendUnavailable):
        db.session.rollback()
        return False
    return True


def last_delivery_for(integration: Integration) -> WebhookDelivery | None:
    """The last delivery that named this integration (support): found from the integration's own
    `last_webhook_at`, however many deliveries other companies had since."""
    if integration.last_webhook_at is None:
        return None
    rows = db.session.scalars(
        select(WebhookDelivery)
        .where(
            WebhookDelivery.vendor == integration.software,
            WebhookDelivery.outcome == "accepted",
            WebhookDelivery.received_at <= integration.last_webhook_at,
        )
        .order_by(WebhookDelivery.received_at.desc())
        .limit(50)
    )
    return next((row for row in rows if integration.id in (row.integration_ids or [])), None)


def purge_deliveries(older_than_days: int) -> int:
    """Forget the deliveries older than the given age (the nightly purge of old job traces)."""
    from sqlalchemy import delete

    cutoff = utcnow() - timedelta(days=older_than_days)
    result = db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.received_at < cutoff))
    db.session.commit()
    return result.rowcount or 0
