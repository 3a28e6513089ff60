"""« Mot de passe oublié ? »: a signed link, valid 30 minutes, that dies once the password changes.

No token is stored: the link is signed with the app's secret (salt "password-reset") when the mail
is sent, and carries a fingerprint of the current password hash, so setting a new password (through
this link or any other way) kills every link sent before.
"""

from __future__ import annotations

import hashlib
import logging
from enum import StrEnum

import redis
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import OutgoingMail, User
from webapp.services.mail import public_url, queue_mail, register_mail_context
from webapp.services.sessions import EndReason, end_user_sessions

log = logging.getLogger(__name__)

RESET_SALT = "password-reset"  # noqa: S105 - a salt's name, not a password
RESET_MINUTES = 30


class LinkState(StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    USED = "used"
    INVALID = "invalid"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=RESET_SALT)


def _fingerprint(user: User) -> str:
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:24]


def reset_token(user: User) -> str:
    return _serializer().dumps({"u": user.id, "p": _fingerprint(user)})


def _reset_context(row: OutgoingMail) -> dict:
    """Built when the mail is sent: the link with its token never reaches the outbox."""
    user = db.session.get(User, row.user_id) if row.user_id else None
    if user is None:
        return {"reset_url": public_url("auth.forgot_password"), "minutes": RESET_MINUTES}
    return {"reset_url": public_url("auth.reset_password", token=reset_token(user)), "minutes": RESET_MINUTES}


register_mail_context("password_reset", _reset_context)


def send_reset_mail(email: str) -> bool:
    """The reset mail to the active account of `email`, if there is one (False otherwise)."""
    user = db.session.scalar(select(User).where(User.email == User.normalise_email(email)))
    if user is None or not user.is_active_account:
        return False
    queue_mail("password_reset", user, template="password_reset", context={})
    db.session.commit()
    return True


def request_reset(email: str) -> None:
    """Asked from the page: the same work whether the account exists or not (the lookup runs in a job,
    so the answer's timing says nothing); inline when the job queue is away."""
    from webapp.services.jobs import get_queue

    try:
        get_queue().enqueue("jobs.accounts.send_password_reset", email, result_ttl=0, failure_ttl=86400)
    except redis.exceptions.RedisError:
        log.warning("Password reset: job queue unreachable, mail written inline")
        send_reset_mail(email)


def user_for_reset(token: str) -> tuple[User | None, LinkState]:
    try:
        data = _serializer().loads(token, max_age=RESET_MINUTES * 60)
    except SignatureExpired:
        return None, LinkState.EXPIRED
    except BadSignature:
        return None, LinkState.INVALID
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        return None, LinkState.INVALID
    user = db.session.get(User, data["u"])
    if user is None or not user.is_active_account:
        return None, LinkState.INVALID
    if data.get("p") != _fingerprint(user):
        return None, LinkState.USED
    return user, LinkState.VALID


def reset_password(user: User, password: str) -> int:
    """The new password; every session of the user ends (how many)."""
    user.set_password(password)
    ended = end_user_sessions(user.id, EndReason.PASSWORD_CHANGED)
    db.session.commit()
    return ended
