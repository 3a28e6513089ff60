"""The dossier's timeline: one row per action on an integration, never edited."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import BigId, UTCDateTime, utcnow


class Event(db.Model):
    __tablename__ = "event"
    __table_args__ = (Index("ix_event_dossier_created", "dossier_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id"))
    integration_id: Mapped[int | None] = mapped_column(ForeignKey("integration.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    job_run_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("job_run.id"))
    kind: Mapped[str] = mapped_column(String(60))
    outcome: Mapped[str] = mapped_column(String(20), default="ok")  # ok | failed
    message: Mapped[str] = mapped_column(Text)  # French, for the user
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # redacted
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
