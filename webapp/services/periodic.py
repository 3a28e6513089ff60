"""The work nobody clicks for: nightly list refreshes, tokens kept alive, consents ending, old jobs.

RQ's cron scheduler (`flask --app wsgi scheduler`, webapp.scheduler) enqueues the ticks below. More
than one scheduler may run (one per machine, or a restarted one catching up), so each tick first
claims its period in Redis with SET NX: the second claim of the same night or hour does nothing.
The ticks only enqueue small jobs, one per integration, which any worker on any machine runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import or_, select, update

from webapp.extensions import db
from webapp.models import Integration, IntegrationStatus
from webapp.models.base import utcnow
from webapp.services.events import record_event
from webapp.services.integrations import IntegrationExpired, fresh_tokens, load_tokens
from webapp.services.jobs import JobBackendUnavailable, UserFacingJobError, get_redis, launch_job

log = logging.getLogger(__name__)

# An integration whose tokens were not renewed for this long has its tokens renewed by a job, so a
# refresh token that dies when unused (Xero 60 days, Sage 31 days) never ages out unseen, and an
# access withdrawn at the software shows as Expirée the next day rather than at the next click.
IDLE_AFTER = timedelta(days=1)


def claim_period(name: str, period: str, ttl_seconds: int) -> bool:
    """True for the first caller of (name, period) across every process sharing Redis."""
    return bool(
        get_redis().set(f"raccord:periodic:{name}:{period}", utcnow().isoformat(), nx=True, ex=ttl_seconds)
    )


def _connected() -> list[Integration]:
    return list(
        db.session.scalars(
            select(Integration)
            .where(Integration.status == IntegrationStatus.CONNECTED)
            .order_by(Integration.id)
        )
    )


@dataclass
class TickReport:
    started: int = 0
    skipped: int = 0
    failed: int = 0

    def __str__(self) -> str:
        return (
            ", ".join(
                (
                    _("aucune lancée")
                    if self.started == 0
                    else ngettext("%(num)d lancée", "%(num)d lancées", self.started),
                    _("aucune ignorée")
                    if self.skipped == 0
                    else ngettext("%(num)d ignorée", "%(num)d ignorées", self.skipped),
                    _("aucune en échec")
                    if self.failed == 0
                    else ngettext("%(num)d en échec", "%(num)d en échec", self.failed),
                )
            )
            + "."
        )


# --- every night: the lists, only what changed ------------------------------------------------


def _refresh_changes(integrations: list[Integration]) -> TickReport:
    """One job per integration looks at all its lists for what changed (jobs.lists.refresh_changes):
    a list with no change costs the calls that ask and writes nothing. How many started."""
    report = TickReport()
    for integration in integrations:
        if integration.status is not IntegrationStatus.CONNECTED:
            report.skipped += 1
            continue
        try:
            launch_job(
                "jobs.lists.refresh_changes",
                integration.id,
                kind="list_refresh",
                description=_("Recherche des changements dans les listes"),
                owner=None,
                dossier=integration.dossier,
            )
        except JobBackendUnavailable:
            report.failed += 1
            continue
        report.started += 1
    return report


def nightly_refresh(day: date | None = None) -> TickReport | None:
    """Each connected integration's lists refresh by themselves, asking only for what changed
    where the software can say so. None when this night was already handled by another scheduler."""
    day = day or utcnow().date()
    if not claim_period("nightly-refresh", day.isoformat(), 2 * 86400):
        return None
    report = _refresh_changes(_connected())
    log.info("Nightly refresh of %s: %s", day, report)
    return report


# --- every hour: the lists of the dossiers that asked for it -------------------------------------


def hourly_refresh(hour: str | None = None) -> TickReport | None:
    """The lists of the integrations set to « chaque heure » (software without webhooks: Pennylane,
    Sage, Compta Démo) refresh, changes only. Xero and QuickBooks tell of each change by webhook
    (webapp.services.webhooks). None when this hour was already handled by another scheduler."""
    from webapp.models.integration import SOFTWARE_WITH_WEBHOOKS

    hour = hour or utcnow().strftime("%Y-%m-%dT%H")
    if not claim_period("hourly-refresh", hour, 2 * 3600):
        return None
    hourly = [
        integration
        for integration in _connected()
        if integration.refresh_frequency == "hourly" and integration.software not in SOFTWARE_WITH_WEBHOOKS
    ]
    report = _refresh_changes(hourly)
    log.info("Hourly refresh of %s: %s", hour, report)
    return report


# --- every hour: tokens of idle integrations ----------------------------------------------------


def idle_integrations(now: datetime | None = None) -> list[Integration]:
    cutoff = (now or utcnow()) - IDLE_AFTER
    return list(
        db.session.scalars(
            select(Integration)
            .where(
                Integration.status == IntegrationStatus.CONNECTED,
                or_(
                    Integration.tokens_refreshed_at < cutoff,
                    Integration.tokens_refreshed_at.is_(None) & (Integration.created_at < cutoff),
                ),
            )
            .order_by(Integration.id)
        )
    )


def keep_tokens_alive(hour: str | None = None) -> TickReport | None:
    """Queue a token renewal for every integration idle for a day."""
    hour = hour or utcnow().strftime("%Y-%m-%dT%H")
    if not claim_period("keep-tokens-alive", hour, 2 * 3600):
        return None
    report = TickReport()
    for integration in idle_integrations():
        try:
            launch_job(
                "jobs.periodic.renew_tokens",
                integration.id,
                kind="token_renewal",
                description=_("Renouvellement de l'accès"),
                owner=None,
                dossier=integration.dossier,
            )
            report.started += 1
        except JobBackendUnavailable:
            report.failed += 1
    return report


def renew_tokens(integration_id: int) -> str:
    """Renew one integration's tokens now, under the lock every worker shares (fresh_tokens).

    An access the software refuses marks the integration Expirée with its event (in fresh_tokens);
    a renewal another worker just made is taken as is."""
    integration = db.session.get(Integration, integration_id)
    if integration is None or integration.status is not IntegrationStatus.CONNECTED:
        return _("Intégration non connectée : rien à renouveler.")
    refreshed_at = integration.tokens_refreshed_at
    if refreshed_at is not None and utcnow() - refreshed_at < IDLE_AFTER:
        return _("Accès renouvelé récemment : rien à faire.")
    try:
        fresh_tokens(integration_id, rejected=load_tokens(integration).access_token)
    except IntegrationExpired:
        raise UserFacingJobError(
            _("Le logiciel comptable a refusé le renouvellement de l'accès : l'intégration est expirée.")
        ) from None
    return _("Accès renouvelé.")


# --- every hour: consents that end --------------------------------------------------------------


def consent_notice_days() -> int:
    return int(current_app.config["CONSENT_NOTICE_DAYS"])


def consent_ending_soon(integration: Integration, now: datetime | None = None) -> bool:
    """The access ends within the notice period unless the user gives it again (Se reconnecter)."""
    if integration.status is not IntegrationStatus.CONNECTED or integration.consent_expires_at is None:
        return False
    return integration.consent_expires_at - (now or utcnow()) <= timedelta(days=consent_notice_days())


def announce_consent_endings(now: datetime | None = None) -> int:
    """Write once in each dossier's timeline that its access ends soon; the pages show it until then.

    `consent_announced_for` keeps the end date announced, so a consent given again and ending later
    is announced again when its own end nears."""
    now = now or utcnow()
    limit = now + timedelta(days=consent_notice_days())
    candidates = db.session.scalars(
        select(Integration).where(
            Integration.status == IntegrationStatus.CONNECTED,
            Integration.consent_expires_at.is_not(None),
            Integration.consent_expires_at <= limit,
            or_(
                Integration.consent_announced_for.is_(None),
                Integration.consent_announced_for != Integration.consent_expires_at,
            ),
        )
    ).all()
    count = 0
    for integration in candidates:
        claimed = db.session.execute(
            update(Integration)
            .where(
                Integration.id == integration.id,
                or_(
                    Integration.consent_announced_for.is_(None),
                    Integration.consent_announced_for != integration.consent_expires_at,
                ),
            )
            .values(consent_announced_for=integration.consent_expires_at)
        ).rowcount
        if not claimed:
            continue
        record_event(
            dossier_id=integration.dossier_id,
            integration_id=integration.id,
            kind="integration.consent_ending",
            outcome="ok",
            message=consent_message(integration),
            details={"ends_at": integration.consent_expires_at.isoformat()},
        )
        db.session.commit()
        count += 1
    return count


def consent_message(integration: Integration) -> str:
    from webapp.templating import date_fr

    return _(
        "L'accès à %(software)s prend fin le %(date)s. Cliquez sur « Se reconnecter » avant cette date pour "
        "que les listes et les publications continuent sans interruption.",
        software=integration.software_name,
        date=date_fr(integration.consent_expires_at),
    )
