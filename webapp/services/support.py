"""The support area's reads and its few acts: find a dossier, look at it, view it as its user.

Every look at a dossier by staff is itself an event of the dossier's timeline.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import session
from flask_babel import gettext as _
from sqlalchemy import and_, func, or_, select

from webapp.extensions import db
from webapp.models import (
    Document,
    DocumentStatus,
    Dossier,
    Event,
    Integration,
    JobRun,
    JobStatus,
    ListSync,
    Organisation,
    PartyKind,
    PaymentRule,
    Rule,
    User,
)
from webapp.models.base import utcnow
from webapp.search import MAX_QUERY_CHARS, matching_all, query_words
from webapp.services.dossiers import VIEW_AS_KEY
from webapp.services.events import record_event
from webapp.services.jobs import JobView, job_view
from webapp.services.sessions import rotate_session

SEARCH_LIMIT = 50

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoundDossier:
    dossier: Dossier
    organisation: Organisation
    integration: Integration | None
    emails: list[str]


def find_dossiers(query: str, limit: int = SEARCH_LIMIT) -> list[FoundDossier]:
    """Dossiers whose name, SIREN, organisation or one of the organisation's users' emails match.

    Every word of the search, in any order, case and accents ignored, must be in the dossier's name
    or SIREN or its organisation's name; an email matches by containing the search as typed."""
    term = query.replace("\x00", "").strip()[:MAX_QUERY_CHARS]  # PostgreSQL takes no NUL in text
    if not term:
        return []
    digits = re.sub(r"\D", "", term)
    by_email = select(User.organisation_id).where(
        func.lower(User.email).contains(term.lower(), autoescape=True)
    )
    conditions = [Dossier.organisation_id.in_(by_email)]
    words = query_words(term)
    if words:
        conditions.append(
            and_(
                *(
                    or_(in_dossier, in_organisation)
                    for in_dossier, in_organisation in zip(
                        matching_all(Dossier.search_text, words),
                        matching_all(Organisation.search_text, words),
                        strict=True,
                    )
                )
            )
        )
    if len(digits) >= 3:
        conditions.append(Dossier.siren.like(f"%{digits}%"))
    rows = db.session.execute(
        select(Dossier, Organisation)
        .join(Organisation, Organisation.id == Dossier.organisation_id)
        .where(or_(*conditions))
        .order_by(Dossier.sort_name, Dossier.id)
        .limit(limit)
    ).all()
    org_ids = {org.id for _user, org in rows}
    emails: dict[int, list[str]] = {}
    if org_ids:
        for org_id, email in db.session.execute(
            select(User.organisation_id, User.email)
            .where(User.organisation_id.in_(org_ids))
            .order_by(User.email)
        ):
            emails.setdefault(org_id, []).append(email)
    return [FoundDossier(d, org, d.current_integration, emails.get(org.id, [])) for d, org in rows]


#: A member of staff looking again at the same thing of a dossier within this time is not said again:
#: the timeline keeps one line per look, not one per page load (each would also make the dossier's
#: pages render afresh for everyone).
SAID_AGAIN_AFTER = timedelta(minutes=15)


def record_access(staff: User, dossier: Dossier, what: str) -> None:
    """A member of staff looked at the dossier: the timeline says who, when and what."""
    message = _("Le support (%(staff)s) a consulté %(what)s.", staff=staff.display_name, what=what)
    already = db.session.scalar(
        select(Event.id)
        .where(
            Event.dossier_id == dossier.id,
            Event.actor_id == staff.id,
            Event.kind == "support.viewed",
            Event.message == message,
            Event.created_at >= utcnow() - SAID_AGAIN_AFTER,
        )
        .limit(1)
    )
    if already is not None:
        return
    record_event(
        dossier_id=dossier.id,
        actor_id=staff.id,
        kind="support.viewed",
        message=message,
        details={"staff_email": staff.email},
    )
    db.session.commit()


# --- a dossier as support sees it -------------------------------------------------------


@dataclass(frozen=True)
class RuleCounts:
    integration: Integration
    suppliers: int
    customers: int
    payment: int


def rule_counts(dossier: Dossier) -> list[RuleCounts]:
    rows = dict(
        ((integration_id, kind), count)
        for integration_id, kind, count in db.session.execute(
            select(Rule.integration_id, Rule.party_kind, func.count())
            .where(Rule.dossier_id == dossier.id)
            .group_by(Rule.integration_id, Rule.party_kind)
        )
    )
    payment = dict(
        db.session.execute(
            select(PaymentRule.integration_id, func.count())
            .where(PaymentRule.dossier_id == dossier.id)
            .group_by(PaymentRule.integration_id)
        ).all()
    )
    return [
        RuleCounts(
            integration,
            rows.get((integration.id, PartyKind.SUPPLIER), 0),
            rows.get((integration.id, PartyKind.CUSTOMER), 0),
            payment.get(integration.id, 0),
        )
        for integration in dossier.integrations
    ]


def webhook_seen(integration: Integration | None) -> dict | None:
    """The last change the software announced for this company (a signed webhook accepted): when,
    and which lists it named; None when none came."""
    from webapp.models import ListKind
    from webapp.services.webhooks import last_delivery_for

    delivery = last_delivery_for(integration) if integration is not None else None
    if delivery is None:
        return None
    labels = [str(ListKind(value).label) for value in delivery.lists if value in ListKind._value2member_map_]
    return {"received_at": delivery.received_at, "lists": ", ".join(labels)}


def budget_usage(integration: Integration | None) -> dict | None:
    """The company's call budget at its software now (webapp.connectors.limits), or None when Redis
    does not answer: the page shows without it."""
    if integration is None:
        return None
    from webapp.connectors.limits import budget_for

    try:
        budget = budget_for(integration.software, integration.company_id)
        return budget.usage() if budget is not None else None
    except Exception:
        log.warning("Budget of integration %s not read", integration.id, exc_info=True)
        return None


def list_loads(integration: Integration | None) -> list[ListSync]:
    if integration is None:
        return []
    return list(
        db.session.scalars(
            select(ListSync).where(ListSync.integration_id == integration.id).order_by(ListSync.id)
        )
    )


def documents_needing_help(dossier: Dossier, limit: int = 100) -> list[Document]:
    """Documents in failure, and those held for the user, with their reasons; newest first."""
    return list(
        db.session.scalars(
            select(Document)
            .where(
                Document.dossier_id == dossier.id,
                or_(
                    Document.status == DocumentStatus.FAILED,
                    (Document.status == DocumentStatus.TO_REVIEW) & (Document.hold_reason != ""),
                ),
            )
            .order_by(Document.id.desc())
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class SupportJob:
    view: JobView
    retried: bool


#: A job that ended well stays in 'Tâches' this long: one launched from the page and finished before
#: the page came back (a quick reproduction) is still there, with its link.
RECENT_JOBS = timedelta(hours=1)


def dossier_jobs(dossier: Dossier, limit: int = 30) -> list[SupportJob]:
    """The dossier's jobs waiting, running or failed (a run that died is found failed here), and those
    done within the last hour, newest first, with whether a failed one was already launched again."""
    runs = list(
        db.session.scalars(
            select(JobRun)
            .where(
                JobRun.dossier_id == dossier.id,
                or_(
                    JobRun.status.in_([JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.FAILED]),
                    JobRun.created_at >= utcnow() - RECENT_JOBS,
                ),
            )
            .order_by(JobRun.id.desc())
            .limit(limit)
        )
    )
    retried = (
        set(
            db.session.scalars(select(JobRun.retry_of_id).where(JobRun.retry_of_id.in_([r.id for r in runs])))
        )
        if runs
        else set()
    )
    return [SupportJob(job_view(run), run.id in retried) for run in runs]


def reproductions(dossier: Dossier) -> list[Dossier]:
    return list(
        db.session.scalars(
            select(Dossier).where(Dossier.reproduced_from_id == dossier.id).order_by(Dossier.id.desc())
        )
    )


# --- 'Voir comme l'utilisateur' ---------------------------------------------------------


def start_view_as(staff: User, dossier: Dossier, user: User) -> None:
    """From now on staff see the dossier's screens as `user` sees them, read only. The session gets a
    new id: a cookie taken before (or after leaving) carries none of this privilege."""
    rotate_session(staff)
    session[VIEW_AS_KEY] = {
        "dossier_id": dossier.id,
        "dossier_name": dossier.name,
        "user_id": user.id,
        "user_name": user.display_name,
        "started_at": utcnow().isoformat(),
    }
    record_event(
        dossier_id=dossier.id,
        actor_id=staff.id,
        kind="support.view_as",
        message=_(
            "Le support (%(staff)s) consulte le dossier comme %(user)s, en lecture seule.",
            staff=staff.display_name,
            user=user.display_name,
        ),
        details={"staff_email": staff.email, "as_user_email": user.email},
    )
    db.session.commit()


def end_view_as(staff: User) -> int | None:
    """Back to the support area; returns the dossier that was viewed."""
    view_as = session.pop(VIEW_AS_KEY, None)
    if not view_as:
        return None
    rotate_session(staff)
    started = view_as.get("started_at")
    minutes = None
    if started:
        minutes = max(0, round((utcnow() - datetime.fromisoformat(started)).total_seconds() / 60))
    record_event(
        dossier_id=view_as["dossier_id"],
        actor_id=staff.id,
        kind="support.view_as_ended",
        message=_(
            "Fin de la consultation comme %(user)s par le support (%(staff)s).",
            user=view_as.get("user_name") or _("l'utilisateur"),
            staff=staff.display_name,
        ),
        details={"staff_email": staff.email, "minutes": minutes},
    )
    db.session.commit()
    return view_as["dossier_id"]


def organisation_members(dossier: Dossier) -> list[User]:
    """Whom the support may view the dossier as: the cabinet's users who may see it."""
    from webapp.services.dossiers import users_who_may_see

    return users_who_may_see(dossier)
