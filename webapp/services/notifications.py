"""What Raccord tells people by e-mail: each event once per person, as each person chooses.

The events: an integration expired (told as soon as it happens, by a job queued after the commit
that marks it, and caught again by the sweep); an access ending within NOTIFY_CONSENT_DAYS; a list
failing for 24 hours; invoices in 'Échec' (one mail per dossier and sweep, listing them). The sweep
(`sweep`, every SCHEDULE_HOURLY_SECONDS) finds the time-based ones. Each event has a dedupe key, and
a `notification` row per person and key (unique): two sweeps, or the hook and a sweep, tell it once.

Who: the people who may see the dossier (webapp.services.dossiers.users_who_may_see), each kind on
unless switched off on the profile page; a person who chose the « résumé quotidien » gets one mail a
day (`send_digests`, at SCHEDULE_DIGEST) listing the events since the last one.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.models import (
    Document,
    DocumentStatus,
    Dossier,
    Event,
    Integration,
    IntegrationStatus,
    ListKind,
    ListSync,
    Notification,
    OutgoingMail,
    SyncStatus,
    User,
)
from webapp.models.base import utcnow
from webapp.services.mail import public_url, queue_mail, register_mail_context

log = logging.getLogger(__name__)

#: The kinds, in the order of the profile page, with what its checkbox says.
KINDS = {
    "integration_expired": _l("Une intégration a expiré"),
    "consent_ending": _l("L'accès à un logiciel comptable prend fin bientôt"),
    "list_failing": _l("Une liste ne se charge plus depuis 24 heures"),
    "documents_failed": _l("Des factures sont en échec"),
}
LIST_FAILING_AFTER = timedelta(hours=24)
#: An expiry older than this when the sweep first sees it (the feature just deployed) is not told.
EXPIRED_LOOKBACK = timedelta(days=7)
#: The invoices one mail lists; the others are counted.
DOCUMENTS_LISTED = 20


def wants(user: User, kind: str) -> bool:
    return bool((user.notification_prefs or {}).get(kind, True))


def save_preferences(user: User, kinds: dict[str, bool], digest: bool) -> None:
    user.notification_prefs = {kind: bool(kinds.get(kind, False)) for kind in KINDS}
    user.notification_digest = bool(digest)
    db.session.commit()


# --- telling people -----------------------------------------------------------------------------


def _dossier_context(dossier: Dossier, integration: Integration | None = None) -> dict[str, Any]:
    context: dict[str, Any] = {"dossier_id": dossier.id, "dossier_name": dossier.name}
    if integration is not None:
        context.update(
            integration_id=integration.id,
            software_name=integration.software_name,
            company_name=integration.company_name,
        )
    return context


def notify(
    kind: str, dossier: Dossier, events: list[tuple[str, dict[str, Any]]], mail_context: dict[str, Any]
) -> int:
    """Tell each person who may see the dossier and wants `kind` of the `events` (dedupe key, facts)
    they were not told yet: one notification each, and one mail listing them unless the person
    waits for the digest. How many people were told."""
    from webapp.services.dossiers import users_who_may_see

    keys = [key for key, _facts in events]
    told = 0
    for user in users_who_may_see(dossier):
        if not wants(user, kind):
            continue
        known = set(
            db.session.scalars(
                select(Notification.dedupe_key).where(
                    Notification.user_id == user.id, Notification.dedupe_key.in_(keys)
                )
            )
        )
        fresh = [(key, facts) for key, facts in events if key not in known]
        if not fresh:
            continue
        rows = [
            Notification(
                user_id=user.id,
                dossier_id=dossier.id,
                kind=kind,
                dedupe_key=key,
                context={**mail_context, **facts},  # all a line of the digest needs
            )
            for key, facts in fresh
        ]
        db.session.add_all(rows)
        if not user.notification_digest:
            context = dict(mail_context)
            if kind == "documents_failed":
                context["documents"] = [facts for _key, facts in fresh]
            mail = queue_mail(kind, user, template=kind, context=context, dossier_id=dossier.id)
            for row in rows:
                row.mail_id = mail.id
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()  # told meanwhile by another worker: its rows stand
            continue
        told += 1
    return told


def notify_integration_expired(integration_id: int) -> int:
    integration = db.session.get(Integration, integration_id)
    if integration is None or integration.status is not IntegrationStatus.EXPIRED:
        return 0
    context = {**_dossier_context(integration.dossier, integration), "reason": integration.status_reason}
    key = f"integration_expired:{integration.id}:{integration.status_since.isoformat()}"
    return notify("integration_expired", integration.dossier, [(key, context)], context)


def integration_expired_later(integration_id: int) -> None:
    """Queue the expiry's mails (called once the expiry is committed); the sweep catches it if Redis
    is away."""
    import redis

    from webapp.services.jobs import get_queue

    try:
        get_queue().enqueue(
            "jobs.notifications.integration_expired",
            integration_id,
            result_ttl=86400,
            failure_ttl=7 * 86400,
            description=f"notify expiry of integration {integration_id}",
        )
    except redis.exceptions.RedisError as exc:
        log.warning("Expiry of integration %s will be told by the sweep (Redis: %s)", integration_id, exc)


def _failing_since(sync: ListSync, integration: Integration) -> datetime:
    """When the list started failing: its first failed load after its last good one (the timeline
    says), else its last good load, else the integration's start."""
    after = sync.last_loaded_at or integration.created_at
    failures = db.session.scalars(
        select(Event)
        .where(
            Event.integration_id == integration.id,
            Event.kind == "lists.refresh_failed",
            Event.created_at > after,
        )
        .order_by(Event.created_at)
        .limit(500)
    )
    for event in failures:
        if (event.details or {}).get("list") == sync.kind.value:
            return event.created_at
    return after


def sweep(now: datetime | None = None) -> int:
    """The time-based events (and expiries the hook missed); how many people were told."""
    now = now or utcnow()
    told = 0
    expired = db.session.scalars(
        select(Integration.id).where(
            Integration.status == IntegrationStatus.EXPIRED,
            Integration.status_since >= now - EXPIRED_LOOKBACK,
        )
    ).all()
    for integration_id in expired:
        told += notify_integration_expired(integration_id)

    days = int(current_app.config["NOTIFY_CONSENT_DAYS"])
    ending = db.session.scalars(
        select(Integration).where(
            Integration.status == IntegrationStatus.CONNECTED,
            Integration.consent_expires_at.is_not(None),
            Integration.consent_expires_at > now,
            Integration.consent_expires_at <= now + timedelta(days=days),
        )
    ).all()
    for integration in ending:
        context = {
            **_dossier_context(integration.dossier, integration),
            "ends_at": integration.consent_expires_at.isoformat(),
        }
        key = f"consent_ending:{integration.id}:{integration.consent_expires_at.isoformat()}"
        told += notify("consent_ending", integration.dossier, [(key, context)], context)

    failing = db.session.execute(
        select(ListSync, Integration)
        .join(Integration, Integration.id == ListSync.integration_id)
        .where(ListSync.status == SyncStatus.FAILED, Integration.status == IntegrationStatus.CONNECTED)
    ).all()
    for sync, integration in failing:
        since = _failing_since(sync, integration)
        if now - since < LIST_FAILING_AFTER:
            continue
        context = {
            **_dossier_context(integration.dossier, integration),
            "list": sync.kind.value,
            "since": since.isoformat(),
            "error": sync.last_error,
        }
        last_good = sync.last_loaded_at.isoformat() if sync.last_loaded_at else "never"
        key = f"list_failing:{sync.id}:{last_good}"
        told += notify("list_failing", integration.dossier, [(key, context)], context)

    failed = db.session.scalars(
        select(Document)
        .where(Document.status == DocumentStatus.FAILED)
        .order_by(Document.dossier_id, Document.id)
    ).all()
    by_dossier: dict[int, list[Document]] = {}
    for document in failed:
        by_dossier.setdefault(document.dossier_id, []).append(document)
    for dossier_id, documents in by_dossier.items():
        dossier = db.session.get(Dossier, dossier_id)
        events = [
            (
                f"document_failed:{document.id}:{document.job_run_id or 0}",
                {
                    "document_id": document.id,
                    "number": document.number,
                    "party": document.party_display,
                    "amount": str(document.amount_ttc),
                    "currency": document.currency,
                    "reason": document.failure_reason,
                },
            )
            for document in documents
        ]
        told += notify("documents_failed", dossier, events, _dossier_context(dossier))
    return told


def send_digests() -> int:
    """Each person's notifications not yet mailed, in one « résumé quotidien »; how many mails."""
    user_ids = db.session.scalars(
        select(Notification.user_id).where(Notification.mail_id.is_(None)).distinct()
    ).all()
    sent = 0
    for user_id in user_ids:
        user = db.session.get(User, user_id)
        waiting = db.session.scalars(
            select(Notification)
            .where(Notification.user_id == user_id, Notification.mail_id.is_(None))
            .order_by(Notification.created_at, Notification.id)
        ).all()
        if user is None or not user.is_active_account or not waiting:
            continue
        items = [{"kind": row.kind, **(row.context or {})} for row in waiting]
        mail = queue_mail("digest", user, template="digest", context={"items": items})
        for row in waiting:
            row.mail_id = mail.id
        db.session.commit()
        sent += 1
    return sent


def notifications_for(mail: OutgoingMail) -> list[Notification]:
    return list(db.session.scalars(select(Notification).where(Notification.mail_id == mail.id)))


# --- the mails' send-time values ------------------------------------------------------------------


def _links(kind: str, context: dict[str, Any]) -> dict[str, Any]:
    """Absolute links and labels in the reader's language, made when the mail is sent."""
    dossier_id = context.get("dossier_id")
    values: dict[str, Any] = {}
    if not dossier_id:
        return values
    values["dossier_url"] = public_url("dossiers.show", dossier_id=dossier_id)
    if context.get("integration_id"):
        values["integration_url"] = public_url(
            "settings.integration", dossier_id=dossier_id, integration_id=context["integration_id"]
        )
    if kind == "list_failing" and context.get("list") in ListKind._value2member_map_:
        values["list_label"] = ListKind(context["list"]).label
        values["list_url"] = public_url("lists.show", dossier_id=dossier_id, kind=context["list"])
    if kind == "documents_failed":
        values["documents_url"] = public_url("documents.index", dossier_id=dossier_id, statut="echec")
    for name in ("ends_at", "since"):
        if context.get(name):
            values[f"{name}_date"] = datetime.fromisoformat(context[name])
    return values


def _single(row: OutgoingMail) -> dict[str, Any]:
    values = _links(row.kind, row.context or {})
    documents = (row.context or {}).get("documents")
    if documents is not None:
        values["shown"] = [_with_amount(facts) for facts in documents[:DOCUMENTS_LISTED]]
        values["more"] = max(0, len(documents) - DOCUMENTS_LISTED)
    return values


def _with_amount(facts: dict[str, Any]) -> dict[str, Any]:
    try:
        amount = Decimal(str(facts.get("amount")))
    except ArithmeticError:
        amount = None
    return {**facts, "amount": amount}


def _digest(row: OutgoingMail) -> dict[str, Any]:
    items = [{**item, **_links(item.get("kind", ""), item)} for item in (row.context or {}).get("items", [])]
    return {"items": items, "count": len(items)}


def init_app() -> None:
    """Register the context builders of the notification mails (called by create_app, so that web
    processes and workers alike know them)."""
    for kind in KINDS:
        register_mail_context(kind, _single)
    register_mail_context("digest", _digest)
