"""Authentication of users."""

from __future__ import annotations

from functools import cache

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.extensions import db
from webapp.models import User
from webapp.models.base import utcnow
from webapp.models.people import password_hash_method


@cache
def _unknown_user_hash(method: str) -> str:
    """Checked against when the email is unknown, so both answers take the same time."""
    return generate_password_hash("raccord-unknown-user", method=method)


def authenticate(email: str, password: str) -> User | None:
    user = db.session.scalar(select(User).where(User.email == User.normalise_email(email)))
    if user is None:
        check_password_hash(_unknown_user_hash(password_hash_method()), password)
        return None
    if not user.is_active or not user.check_password(password):
        return None
    user.last_login_at = utcnow()
    db.session.commit()
    return user
