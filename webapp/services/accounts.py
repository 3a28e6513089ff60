"""Authentication of users."""

from __future__ import annotations

from sqlalchemy import select
from werkzeug.security import check_password_hash

from webapp.extensions import db
from webapp.models import User
from webapp.models.base import utcnow

# Checked against when the email is unknown, so both answers take the same time.
_UNKNOWN_USER_HASH = (
    "scrypt:32768:8:1$k8ZP4mWGq1bXyY1D$4f3e63f6f0c6f3b4d0bbf7d7a73c1b6a6f0a4fd3f0bd3c1e0d2d27a0df2a5f09"
    "1c8df2de1a9a3d0d55f5fe6b8e6b3f8cf6e5ba1e6d2a6bd8df9e3d5e3b8f8f3b0d"
)


def authenticate(email: str, password: str) -> User | None:
    user = db.session.scalar(select(User).where(User.email == User.normalise_email(email)))
    if user is None:
        check_password_hash(_UNKNOWN_USER_HASH, password)
        return None
    if not user.is_active or not user.check_password(password):
        return None
    user.last_login_at = utcnow()
    db.session.commit()
    return user
