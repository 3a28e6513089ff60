"""JobRun: the owned, durable record of one background job, keyed by its RQ job id."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Enum, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import BigId, UTCDateTime, utcnow


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def label(self) -> str:
        return str(_JOB_LABELS[self])

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED)


_JOB_LABELS = {
    JobStatus.QUEUED: _l("En attente"),
    JobStatus.RUNNING: _l("En cours"),
    JobStatus.SUCCEEDED: _l("Terminé"),
    JobStatus.FAILED: _l("Échec"),
}


class JobRun(db.Model):
    __tablename__ = "job_run"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rq_job_id: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(60))
    description: Mapped[str] = mapped_column(String(200), default="")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), index=True)
    dossier_id: Mapped[int | None] = mapped_column(ForeignKey("dossier.id"), index=True)
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, name="job_status", native_enum=False, values_callable=lambda e: [m.value for m in e]),
        default=JobStatus.QUEUED,
    )
    progress: Mapped[int] = mapped_column(default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # What was queued, so a failed run can be launched again ('Relancer').
    func: Mapped[str] = mapped_column(String(200), default="")
    args: Mapped[list[Any]] = mapped_column(JSON, default=list)
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    retry_of_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("job_run.id", ondelete="SET NULL"))
    # Where to look at what the job made (a path inside the app), once it succeeded.
    result_url: Mapped[str | None] = mapped_column(String(300))
