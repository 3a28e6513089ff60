"""Organisations (cabinets) and their users."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from flask_babel import lazy_gettext as _l
from flask_login import UserMixin
from sqlalchemy import JSON, BigInteger, Column, Enum, ForeignKey, Integer, String, Table, false
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow
from webapp.search import SEARCH_TEXT_BYTES, combined, keep_search_columns, search_column, searchable

if TYPE_CHECKING:
    from webapp.models.dossier import Dossier


class Role(enum.StrEnum):
    MEMBER = "member"
    #: Runs the cabinet's team (« Équipe »): invites colleagues, changes roles, restricts members.
    ADMIN = "admin"
    STAFF = "staff"

    @property
    def label(self) -> str:
        return str(_ROLE_LABELS[self])


_ROLE_LABELS = {
    Role.ADMIN: _l("Administrateur"),
    Role.MEMBER: _l("Membre"),
    Role.STAFF: _l("Support"),
}


def _organisation_search_text(get) -> str:
    return combined(searchable(get("name")))


class Organisation(db.Model):
    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The normalised name the support's search looks into (webapp.search).
    search_text: Mapped[str] = search_column(_organisation_search_text, SEARCH_TEXT_BYTES)

    users: Mapped[list[User]] = relationship(back_populates="organisation")
    dossiers: Mapped[list[Dossier]] = relationship(back_populates="organisation")


keep_search_columns(Organisation, ("name",), {"search_text": _organisation_search_text})


def password_hash_method() -> str:
    """The app's PASSWORD_HASH_METHOD (webapp.config), its default outside an app."""
    from flask import current_app, has_app_context

    from webapp.config import PASSWORD_HASH_DEFAULT

    return (
        current_app.config.get("PASSWORD_HASH_METHOD", PASSWORD_HASH_DEFAULT)
        if has_app_context()
        else PASSWORD_HASH_DEFAULT
    )


class User(UserMixin, db.Model):
    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    full_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[Role] = mapped_column(
        Enum(Role, name="user_role", native_enum=False, values_callable=lambda e: [m.value for m in e]),
        default=Role.MEMBER,
    )
    is_active_account: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: The interface's language: 'fr' or 'en' (webapp.i18n.LOCALES), chosen on the profile page.
    locale: Mapped[str] = mapped_column(String(5), default="fr", server_default="fr")
    #: A member who sees only the dossiers of `dossier_access` (admins always see them all).
    dossiers_restricted: Mapped[bool] = mapped_column(default=False, server_default=false())
    #: « Notifications par e-mail »: each kind on unless set to false (webapp.services.notifications),
    #: and one « résumé quotidien » a day instead of a mail per event.
    notification_prefs: Mapped[dict[str, bool]] = mapped_column(JSON, default=dict, server_default="{}")
    notification_digest: Mapped[bool] = mapped_column(default=False, server_default=false())

    organisation: Mapped[Organisation] = relationship(back_populates="users")

    @staticmethod
    def normalise_email(email: str) -> str:
        return email.strip().lower()

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password, method=password_hash_method())

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive accounts
        return self.is_active_account

    @property
    def is_staff(self) -> bool:
        return self.role is Role.STAFF

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def is_restricted(self) -> bool:
        """Whether the user sees only the dossiers they were given (a member set so by an admin)."""
        return self.role is Role.MEMBER and self.dossiers_restricted

    @property
    def display_name(self) -> str:
        return self.full_name or self.email


#: The dossiers a restricted member may see and act on (User.dossiers_restricted).
dossier_access = Table(
    "dossier_access",
    db.metadata,
    Column("user_id", ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True),
    Column("dossier_id", ForeignKey("dossier.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class UserSession(db.Model):
    """A signed-in browser: the cookie holds only a random id whose hash is kept here, so a session
    ends for good at logout, when the password changes, when the account is deactivated, or when it
    has been idle or open too long, wherever the cookie is presented."""

    __tablename__ = "user_session"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: When the user typed their password: the absolute lifetime runs from here, across rotations.
    signed_in_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ip_address: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(400), default="")
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(40))

    user: Mapped[User] = relationship()


class Invitation(db.Model):
    """A colleague invited by an admin to join the cabinet. The mail's link carries a signed
    (id, nonce): no token is stored, and a new nonce (« Renvoyer ») kills the links sent before."""

    __tablename__ = "invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320), index=True)
    role: Mapped[Role] = mapped_column(
        Enum(Role, name="invitation_role", native_enum=False, values_callable=lambda e: [m.value for m in e]),
        default=Role.MEMBER,
    )
    #: The dossiers a member is restricted to once they accept; None: all the cabinet's dossiers.
    dossier_ids: Mapped[list[int] | None] = mapped_column(JSON)
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    nonce: Mapped[str] = mapped_column(String(64))
    #: The account the invitation made.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))

    organisation: Mapped[Organisation] = relationship()
    invited_by: Mapped[User | None] = relationship(foreign_keys=[invited_by_id])

    @property
    def pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > utcnow()
