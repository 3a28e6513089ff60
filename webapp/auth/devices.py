"""Browsers known to an account, for the login limits (OWASP's "device cookies").

Failed logins are limited per account *and* address (5 a minute), per address (30 a minute) and, more
slowly, per account from anywhere (20 an hour). The last one stops a slow guess spread over many
addresses, but on its own it would let an attacker lock a user out from elsewhere: a browser in which
the account has logged in before carries a signed cookie naming it, and is exempt from that limit.
The cookie holds a keyed hash of the account and its password hash, never the address; it is good
for one year, or until the password changes."""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app, request
from flask.wrappers import Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import User

COOKIE_NAME = "raccord_appareil"
MAX_AGE = 365 * 86400
MAX_ACCOUNTS = 5  # accounts remembered by one browser (a shared office computer)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="raccord.login-device")


def account_tag(user: User) -> str:
    """Names the account without its address, and only until its password changes (a copied cookie
    dies with the password it was earned with)."""
    key = current_app.config["SECRET_KEY"].encode()
    message = f"{user.email}\x00{user.password_hash}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def _known_tags() -> list[str]:
    raw = request.cookies.get(COOKIE_NAME)
    if not raw:
        return []
    try:
        tags = _serializer().loads(raw, max_age=MAX_AGE)
    except BadSignature:
        return []
    return [tag for tag in tags if isinstance(tag, str)] if isinstance(tags, list) else []


def known_device() -> bool:
    """Whether this browser has logged in to the account the login form names, since its password
    last changed."""
    tags = _known_tags()
    if not tags:
        return False
    email = User.normalise_email(request.form.get("email") or "")
    user = db.session.scalar(select(User).where(User.email == email)) if email else None
    return user is not None and account_tag(user) in tags


def remember_device(response: Response, user: User) -> None:
    tag = account_tag(user)
    tags = [tag] + [each for each in _known_tags() if each != tag]
    response.set_cookie(
        COOKIE_NAME,
        _serializer().dumps(tags[:MAX_ACCOUNTS]),
        max_age=MAX_AGE,
        path="/login",
        secure=current_app.config.get("SESSION_COOKIE_SECURE", False),
        httponly=True,
        samesite="Lax",
    )
