"""Background jobs: enqueue by dotted name with an owned JobRun row, report progress, read status."""

from __future__ import annotations

import functools
import importlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

import redis
from flask import Flask, current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from rq import Queue, get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.job import JobStatus as RQStatus
from sqlalchemy import delete, select

from webapp.extensions import db
from webapp.models import Dossier, JobRun, JobStatus, User
from webapp.models.base import utcnow

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# Said when it happens (str() them: the records keep text, never a lazy string).
UNAVAILABLE_MESSAGE = _l(
    "Le service des tâches en arrière-plan est momentanément indisponible. Rien n'a été modifié ; "
    "réessayez dans un instant."
)
CRASHED_MESSAGE = _l("La tâche s'est arrêtée de manière inattendue. Vous pouvez la relancer.")
UNEXPECTED_MESSAGE = _l("Erreur inattendue pendant la tâche. Vous pouvez la relancer.")


class JobBackendUnavailable(RuntimeError):
    """Redis did not answer: the job was not queued."""


class UserFacingJobError(Exception):
    """A failure whose message is safe to show the user, in French."""


class JobDeferred(Exception):  # noqa: N818 (not an error: the job is put off)
    """The job cannot do its work before `at` (an aware datetime): the company's daily budget at its
    software is spent. Raised by the job's work, it is scheduled again for `at` under the same
    JobRun, which stays waiting with `message` (French) instead of ending failed."""

    def __init__(self, at: datetime, message: str):
        super().__init__(message)
        self.at = at
        self.message = message


# --- the backend --------------------------------------------------------------------------


def init_job_backend(app: Flask) -> None:
    """REDIS_URL when set; otherwise an embedded Redis-compatible server living in this process."""
    url = app.config.get("REDIS_URL")
    if url:
        connection = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10)
    else:
        import fakeredis

        connection = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    app.extensions["raccord.redis"] = connection


def get_redis(app: Flask | None = None) -> redis.Redis:
    return (app or current_app).extensions["raccord.redis"]


def get_queue(app: Flask | None = None) -> Queue:
    app = app or current_app
    return Queue(
        app.config["JOB_QUEUE"], connection=get_redis(app), default_timeout=app.config["JOB_TIMEOUT"]
    )


# --- enqueueing ---------------------------------------------------------------------------


def launch_job(
    func: str,
    *args: Any,
    kind: str,
    description: str,
    owner: User | None,
    dossier: Dossier | None,
    retry_of: JobRun | None = None,
    **kwargs: Any,
) -> JobRun:
    """Record a JobRun, then enqueue `func` (a dotted name) with the run's id as `job_run_id`.

    The row is committed first so the worker always finds it. If Redis is down the row ends
    failed, nothing else is changed, and JobBackendUnavailable is raised for the page to explain.
    """
    rq_job_id = str(uuid.uuid4())
    run = JobRun(
        rq_job_id=rq_job_id,
        kind=kind,
        description=description,
        owner_id=owner.id if owner else None,
        dossier_id=dossier.id if dossier else None,
        status=JobStatus.QUEUED,
        func=func,
        args=list(args),
        kwargs=dict(kwargs),
        retry_of_id=retry_of.id if retry_of else None,
    )
    db.session.add(run)
    db.session.commit()
    try:
        get_queue().enqueue(
            func,
            *args,
            job_id=rq_job_id,
            meta={"job_run_id": run.id, "progress": 0, "message": ""},
            result_ttl=86400,
            failure_ttl=7 * 86400,
            **kwargs,
        )
    except redis.exceptions.RedisError as exc:
        log.warning("Could not enqueue %s (%s): %s", func, kind, exc)
        run.status = JobStatus.FAILED
        run.message = str(UNAVAILABLE_MESSAGE)
        run.ended_at = utcnow()
        db.session.commit()
        raise JobBackendUnavailable(str(UNAVAILABLE_MESSAGE)) from exc
    return run


class NotRetryable(Exception):
    """The run cannot be launched again; the message says why, in French."""


def retry_job(run: JobRun, user: User | None) -> JobRun:
    """'Relancer': the same job with the same arguments, as a new run that remembers the failed one.

    The job functions are written to be run again (a publication checks the software before
    sending, a refresh merges, a transfer skips what it already wrote), so a retry never doubles.
    """
    view = job_view(run)
    if view.run.status is not JobStatus.FAILED:
        raise NotRetryable(_("Seule une tâche en échec peut être relancée."))
    if not run.func:
        raise NotRetryable(
            _("Cette tâche date d'avant l'enregistrement des relances : relancez-la depuis sa page.")
        )
    if db.session.scalar(select(JobRun.id).where(JobRun.retry_of_id == run.id).limit(1)) is not None:
        raise NotRetryable(_("Cette tâche a déjà été relancée."))
    dossier = db.session.get(Dossier, run.dossier_id) if run.dossier_id else None
    owner = db.session.get(User, run.owner_id) if run.owner_id else user
    prepare = _BEFORE_RETRY.get(run.func)
    after = None
    if prepare is not None:
        module, _dot, name = prepare.rpartition(".")
        after = getattr(importlib.import_module(module), name)(*run.args, **run.kwargs)
    new_run = launch_job(
        run.func,
        *run.args,
        kind=run.kind,
        description=run.description,
        owner=owner,
        dossier=dossier,
        retry_of=run,
        **run.kwargs,
    )
    if after is not None:
        after(new_run)
    return new_run


# Jobs whose records must be put back in their waiting state before being run again: the
# preparer raises NotRetryable when the record moved on since (a document edited, say), and may
# return what to do with the new run once launched.
_BEFORE_RETRY = {
    "jobs.publishing.publish_document": "webapp.services.publishing.prepare_retry",
}


# --- inside the worker --------------------------------------------------------------------


def report_progress(percent: int, message: str = "") -> None:
    """Progress of the running job, kept in job.meta for the status fragment to read."""
    job = get_current_job()
    if job is None:
        return
    job.meta["progress"] = max(0, min(100, int(percent)))
    job.meta["message"] = message
    job.save_meta()


def set_result_url(path: str) -> None:
    """Where the page shows what the running job made ('Ouvrir'), once it succeeded."""
    job = get_current_job()
    run = _run_for_job(job)
    if run is not None:
        run.result_url = path
        db.session.commit()


def tracked_job(func: Callable[P, R]) -> Callable[P, R]:
    """Wrap an RQ job function so its JobRun always reaches a final state.

    The job runs inside the worker's app context. A UserFacingJobError keeps its French
    message; anything else is logged and shown as an unexpected error. The exception is
    re-raised so RQ records the failure too.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        job = get_current_job()
        run = _run_for_job(job)
        if run is not None:
            run.status = JobStatus.RUNNING
            run.started_at = utcnow()
            db.session.commit()
        outcome_status, outcome_message = JobStatus.FAILED, str(UNEXPECTED_MESSAGE)
        deferred: JobDeferred | None = None
        try:
            result = func(*args, **kwargs)
            outcome_status = JobStatus.SUCCEEDED
            outcome_message = result if isinstance(result, str) else ""
            return result
        except JobDeferred as exc:
            deferred = exc
            return exc.message  # type: ignore[return-value]  # this RQ job ends; its run goes on
        except UserFacingJobError as exc:
            outcome_message = str(exc)
            raise
        except Exception:
            log.exception("Job %s failed", job.id if job else "?")
            raise
        finally:
            if outcome_status is JobStatus.FAILED:
                db.session.rollback()
            waiting = False
            if deferred is not None and job is not None:
                try:
                    _schedule_again(job, deferred)
                    waiting = True  # the run waits, queued for later
                except redis.exceptions.RedisError as exc:
                    log.warning("Could not schedule job %s again: %s", job.id, exc)
                    outcome_message = str(UNAVAILABLE_MESSAGE)
            run = None if waiting else _run_for_job(job)
            if run is not None:
                run.status = outcome_status
                run.message = outcome_message
                run.progress = 100 if outcome_status is JobStatus.SUCCEEDED else run.progress
                run.ended_at = utcnow()
                db.session.commit()

    return wrapper


def _schedule_again(job: Job, deferred: JobDeferred) -> None:
    """The same work, with the same arguments, scheduled for `deferred.at` under the same JobRun."""
    run = _run_for_job(job)
    rq_job_id = str(uuid.uuid4())
    get_queue().enqueue_at(
        deferred.at,
        job.func_name,
        *job.args,
        job_id=rq_job_id,
        meta={"job_run_id": run.id if run else None, "progress": 0, "message": deferred.message},
        result_ttl=86400,
        failure_ttl=7 * 86400,
        **job.kwargs,
    )
    if run is not None:
        run.rq_job_id = rq_job_id
        run.status = JobStatus.QUEUED
        run.message = deferred.message
        db.session.commit()


def _run_for_job(job: Job | None) -> JobRun | None:
    if job is None:
        return None
    return db.session.scalar(select(JobRun).where(JobRun.rq_job_id == job.id))


# --- reading status -----------------------------------------------------------------------


def get_job_run_for(user: User, job_run_id: int) -> JobRun | None:
    """The run if `user` owns it and may still see its dossier (staff may read any); None otherwise."""
    run = db.session.get(JobRun, job_run_id)
    if run is None:
        return None
    if user.is_staff:
        return run
    if run.owner_id != user.id:
        return None
    if run.dossier_id is not None:
        # A member restricted since they started it no longer reads a job of that dossier.
        from webapp.models import Dossier
        from webapp.services.dossiers import may_see

        dossier = db.session.get(Dossier, run.dossier_id)
        if dossier is None or not may_see(user, dossier):
            return None
    return run


@dataclass(frozen=True)
class JobView:
    run: JobRun
    progress: int
    message: str

    @property
    def finished(self) -> bool:
        return self.run.status.finished


def job_view(run: JobRun) -> JobView:
    """The run as the user should see it now, reconciled with RQ.

    A worker killed mid-job never reaches the `finally` of tracked_job; RQ then marks the job
    failed (or forgets it), and this is where the row learns it.
    """
    if run.status.finished:
        return JobView(run, run.progress, run.message)
    try:
        job = Job.fetch(run.rq_job_id, connection=get_redis())
    except NoSuchJobError:
        job = None
    except redis.exceptions.RedisError:
        return JobView(run, run.progress, run.message)
    if job is None or job.get_status(refresh=False) in (RQStatus.FAILED, RQStatus.STOPPED, RQStatus.CANCELED):
        db.session.refresh(run)
        if not run.status.finished:
            run.status = JobStatus.FAILED
            run.message = str(CRASHED_MESSAGE)
            run.ended_at = utcnow()
            db.session.commit()
        return JobView(run, run.progress, run.message)
    meta = job.meta or {}
    return JobView(run, int(meta.get("progress", run.progress) or 0), str(meta.get("message") or ""))


def purge_job_runs(older_than_days: int) -> int:
    """Delete finished JobRun rows older than the given age; returns how many."""
    from datetime import timedelta

    cutoff = utcnow() - timedelta(days=older_than_days)
    result = db.session.execute(
        delete(JobRun).where(
            JobRun.created_at < cutoff, JobRun.status.in_([JobStatus.SUCCEEDED, JobStatus.FAILED])
        )
    )
    db.session.commit()
    return result.rowcount or 0
