"""Server-side sessions: what makes a signed-in browser signed in, and what ends it.

The signed cookie carries a random session id; only its SHA-256 is stored (a copy of the table
gives nobody a session). Each request looks the row up: ended, idle for SESSION_IDLE_MINUTES, or
older than PERMANENT_SESSION_LIFETIME since the password was typed, and the browser is signed out,
wherever the cookie comes from. Logout ends the row; a password change or a deactivated account ends
every row of the user; the id changes at login and when staff enter or leave 'Voir comme
l'utilisateur' (the earlier cookie is dead from then on).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from flask import current_app, g, request, session
from flask_babel import gettext as _
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import joinedload

from webapp.extensions import db
from webapp.models import User, UserSession
from webapp.models.base import utcnow
from webapp.pool import read_alone

SESSION_KEY = "sid"
#: A row's last_seen_at is written at most this often: the idle timeout is exact to a minute,
#: and a page that polls does not write on every poll.
TOUCH_EVERY = timedelta(seconds=60)
#: Requests a page makes by itself, not the user: they never count as activity (an open tab asking
#: whether its dossier changed would otherwise keep its session alive for ever).
PASSIVE_ENDPOINTS = frozenset({"dossiers.changes"})


class EndReason:
    LOGOUT = "logout"
    IDLE = "idle"
    LIFETIME = "lifetime"
    ROTATED = "rotated"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - a reason, not a password
    CLOSED_ELSEWHERE = "closed_elsewhere"
    DEACTIVATED = "deactivated"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _client() -> tuple[str, str]:
    address = (request.remote_addr or "")[:64]
    agent = (request.headers.get("User-Agent") or "")[:400]
    return address, agent


def idle_limit() -> timedelta:
    return timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"])


def lifetime_limit() -> timedelta:
    lifetime = current_app.config["PERMANENT_SESSION_LIFETIME"]
    return lifetime if isinstance(lifetime, timedelta) else timedelta(seconds=lifetime)


def open_session(user: User, *, signed_in_at: datetime | None = None) -> UserSession:
    """A new session for `user` in this browser; its id goes into the cookie, its hash into the table."""
    token = secrets.token_urlsafe(32)
    address, agent = _client()
    now = utcnow()
    row = UserSession(
        user_id=user.id,
        token_hash=_hash(token),
        signed_in_at=signed_in_at or now,
        created_at=now,
        last_seen_at=now,
        ip_address=address,
        user_agent=agent,
    )
    db.session.add(row)
    db.session.flush()
    session[SESSION_KEY] = token
    g.user_session = row
    return row


def _end(row: UserSession, reason: str) -> None:
    if row.ended_at is None:
        row.ended_at = utcnow()
        row.end_reason = reason


# Asked on every request: built once (making the statement costs as much as running it).
# Its user in the same query: every page asks for both (load_user then finds it in the session).
_SESSION_BY_TOKEN = (
    select(UserSession)
    .where(UserSession.token_hash == bindparam("token_hash"))
    .options(joinedload(UserSession.user))
)


@cache
def _session_and_dossier():
    """_SESSION_BY_TOKEN, and the dossier a page is about with what its pages need to serve their
    kept parts (webapp.services.dossiers._dossier_with_state finds it in `g`)."""
    from webapp.fragments import state_columns
    from webapp.models import Dossier, DossierSummary

    return (
        select(UserSession, Dossier, *state_columns())
        .select_from(UserSession)
        .outerjoin(Dossier, Dossier.id == bindparam("dossier_id"))
        .outerjoin(DossierSummary, DossierSummary.dossier_id == Dossier.id)
        .where(UserSession.token_hash == bindparam("token_hash"))
        .options(joinedload(UserSession.user))
    )


def current_session() -> UserSession | None:
    """The live session this request's cookie names, or None (and the row ended if it just expired)."""
    if "user_session" in g:
        return g.user_session
    g.user_session = None
    token = session.get(SESSION_KEY)
    if not isinstance(token, str) or not token:
        return None
    dossier_id = g.get("dossier_id")
    if isinstance(dossier_id, int):
        # A dossier's page: the dossier and its state come in the same query, for get_dossier_for
        # (one round trip fewer on every page of a dossier; its access is checked there as ever).
        found = read_alone(_session_and_dossier(), {"token_hash": _hash(token), "dossier_id": dossier_id})
        row = found.UserSession if found is not None else None
        if found is not None:
            g._prefetched_dossier = (dossier_id, found)
    else:
        found = read_alone(_SESSION_BY_TOKEN, {"token_hash": _hash(token)})
        row = found[0] if found is not None else None
    if row is None or row.ended_at is not None:
        g.session_ended = row.end_reason if row is not None else EndReason.LOGOUT
        return None
    now = utcnow()
    expired = None
    if now - row.signed_in_at >= lifetime_limit():
        expired = EndReason.LIFETIME
    elif now - row.last_seen_at >= idle_limit():
        expired = EndReason.IDLE
    if expired:
        _end(row, expired)
        db.session.commit()
        g.session_ended = expired
        return None
    if now - row.last_seen_at >= TOUCH_EVERY and request.endpoint not in PASSIVE_ENDPOINTS:
        address, _agent = _client()
        db.session.execute(
            update(UserSession)
            .where(UserSession.id == row.id)
            .values(last_seen_at=now, ip_address=address)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        row = db.session.get(UserSession, row.id)
    g.user_session = row
    return row


def end_current_session(reason: str = EndReason.LOGOUT) -> None:
    row = current_session()
    if row is not None:
        _end(row, reason)
        db.session.commit()
    session.pop(SESSION_KEY, None)
    g.user_session = None


def rotate_session(user: User) -> UserSession:
    """A new id for the same signed-in session (privilege change): the previous cookie stops working.
    The absolute lifetime still runs from the login."""
    row = current_session()
    signed_in_at = row.signed_in_at if row is not None else None
    if row is not None:
        _end(row, EndReason.ROTATED)
    new = open_session(user, signed_in_at=signed_in_at)
    db.session.commit()
    return new


def end_user_sessions(user_id: int, reason: str, *, keep: UserSession | None = None) -> int:
    """End every open session of the user (but `keep`); how many were ended."""
    query = update(UserSession).where(UserSession.user_id == user_id, UserSession.ended_at.is_(None))
    if keep is not None:
        query = query.where(UserSession.id != keep.id)
    result = db.session.execute(
        query.values(ended_at=utcnow(), end_reason=reason).execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def ended_message() -> str | None:
    """Why this request's cookie no longer signs anyone in, in French (None if it never did)."""
    reason = g.get("session_ended")
    if reason is None:
        return None
    if reason == EndReason.IDLE:
        minutes = current_app.config["SESSION_IDLE_MINUTES"]
        return _(
            "Votre session a pris fin après %(minutes)d minutes sans activité. Connectez-vous à nouveau.",
            minutes=minutes,
        )
    if reason == EndReason.LIFETIME:
        return _("Votre session a atteint sa durée maximale. Connectez-vous à nouveau.")
    if reason == EndReason.PASSWORD_CHANGED:
        return _("Le mot de passe de ce compte a changé : connectez-vous à nouveau.")
    return _("Votre session a été fermée. Connectez-vous à nouveau.")


@dataclass(frozen=True)
class OpenSession:
    id: int
    browser: str
    ip_address: str
    signed_in_at: datetime
    last_seen_at: datetime
    current: bool


def describe_browser(user_agent: str) -> str:
    """'Chrome 131 sur Windows', from the User-Agent, as the ua-parser project reads it."""
    from ua_parser import parse

    if not user_agent:
        return _("Navigateur inconnu")
    parsed = parse(user_agent)
    browser = parsed.user_agent
    system = parsed.os
    known = bool(browser and browser.family != "Other")
    name = browser.family if known else _("Navigateur inconnu")
    if known and browser.major:
        name = f"{name} {browser.major}"
    if system and system.family and system.family != "Other":
        name = _("%(browser)s sur %(system)s", browser=name, system=system.family)
    return name


def open_sessions(user: User) -> list[OpenSession]:
    """The user's sessions still open (neither ended nor expired), the current one first."""
    now = utcnow()
    current = current_session()
    rows = db.session.scalars(
        select(UserSession)
        .where(
            UserSession.user_id == user.id,
            UserSession.ended_at.is_(None),
            UserSession.signed_in_at > now - lifetime_limit(),
            UserSession.last_seen_at > now - idle_limit(),
        )
        .order_by(UserSession.last_seen_at.desc())
    )
    sessions = [
        OpenSession(
            id=row.id,
            browser=describe_browser(row.user_agent),
            ip_address=row.ip_address or "inconnue",
            signed_in_at=row.signed_in_at,
            last_seen_at=row.last_seen_at,
            current=current is not None and row.id == current.id,
        )
        for row in rows
    ]
    return sorted(sessions, key=lambda each: not each.current)
