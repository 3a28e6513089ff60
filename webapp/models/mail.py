"""The outbox: every e-mail Raccord sends, kept until it has left (webapp.services.mail)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import BigId, UTCDateTime, utcnow
from webapp.models.people import User


class MailStatus(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"

    @property
    def label(self) -> str:
        return str(_MAIL_LABELS[self])


_MAIL_LABELS = {
    MailStatus.QUEUED: _l("En attente"),
    MailStatus.SENT: _l("Envoyé"),
    MailStatus.FAILED: _l("Échec"),
}


#: What each `OutgoingMail.kind` is called in the support area; a kind not listed reads « E-mail ».
MAIL_KIND_LABELS = {
    "integration_expired": _l("Intégration expirée"),
    "consent_ending": _l("Fin d'accès proche"),
    "list_failing": _l("Liste en échec"),
    "documents_failed": _l("Factures en échec"),
    "digest": _l("Résumé quotidien"),
    "password_reset": _l("Mot de passe oublié"),
    "invitation": _l("Invitation"),
}


def mail_kind_label(kind: str) -> str:
    return str(MAIL_KIND_LABELS.get(kind, _l("E-mail")))


class OutgoingMail(db.Model):
    """One e-mail to one address. `context` holds what the template needs and nothing secret: a link
    carrying a token is built when the mail is sent, by the template's context builder."""

    __tablename__ = "outgoing_mail"
    __table_args__ = (Index("ix_outgoing_mail_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(60))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), index=True
    )
    # The dossier the mail is about, if any (the support's page of that dossier lists it).
    dossier_id: Mapped[int | None] = mapped_column(ForeignKey("dossier.id", ondelete="SET NULL"), index=True)
    to_address: Mapped[str] = mapped_column(String(320))
    locale: Mapped[str] = mapped_column(String(5), default="fr")
    template: Mapped[str] = mapped_column(String(80))
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[MailStatus] = mapped_column(
        Enum(
            MailStatus, name="mail_status", native_enum=False, values_callable=lambda e: [m.value for m in e]
        ),
        default=MailStatus.QUEUED,
    )
    attempts: Mapped[int] = mapped_column(default=0)
    # The SMTP server's answer or the reason it could not be reached; never a secret.
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User | None] = relationship()

    def __repr__(self) -> str:
        return f"<OutgoingMail {self.id} {self.template} {self.status}>"


class Notification(db.Model):
    """One event told to one person, at most once: (user, dedupe_key) is unique. The mail that told
    it, or none yet while it waits for the person's « résumé quotidien »."""

    __tablename__ = "notification"
    __table_args__ = (
        UniqueConstraint("user_id", "dedupe_key", name="uq_notification_user_id"),
        Index("ix_notification_waiting", "mail_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    dossier_id: Mapped[int | None] = mapped_column(ForeignKey("dossier.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    # What the event is, e.g. 'integration_expired:12:2026-12-08T09:00:00+00:00': the same event
    # seen by two sweeps has the same key.
    dedupe_key: Mapped[str] = mapped_column(String(200))
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    mail_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("outgoing_mail.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    user: Mapped[User] = relationship()
    mail: Mapped[OutgoingMail | None] = relationship()
