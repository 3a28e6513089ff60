"""The health of the job queues, read from RQ's own registries and worker records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from rq import Queue, Worker
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)

from webapp.services.jobs import get_redis


@dataclass(frozen=True)
class QueueHealth:
    name: str
    waiting: int
    running: int
    failed: int
    scheduled: int
    deferred: int


@dataclass(frozen=True)
class WorkerHealth:
    name: str
    hostname: str
    pid: int | None
    state: str
    queues: list[str]
    current_job: str | None
    last_heartbeat: datetime | None
    alive: bool


@dataclass(frozen=True)
class Health:
    reachable: bool
    queues: list[QueueHealth]
    workers: list[WorkerHealth]
    error: str = ""


_STATES = {
    "busy": _l("Occupé"),
    "idle": _l("En attente de tâches"),
    "started": _l("Démarré"),
    "suspended": _l("Suspendu"),
}


def worker_state_label(state: str) -> str:
    return str(_STATES.get(state, state))


def queue_health() -> Health:
    connection = get_redis()
    names = [current_app.config["JOB_QUEUE"]]
    try:
        queues = []
        for name in names:
            queue = Queue(name, connection=connection)
            queues.append(
                QueueHealth(
                    name=name,
                    waiting=queue.count,
                    running=StartedJobRegistry(queue=queue).count,
                    failed=FailedJobRegistry(queue=queue).count,
                    scheduled=ScheduledJobRegistry(queue=queue).count,
                    deferred=DeferredJobRegistry(queue=queue).count,
                )
            )
        workers = [_worker(w) for name in names for w in Worker.all(queue=Queue(name, connection=connection))]
    except redis.exceptions.RedisError as exc:
        return Health(False, [], [], error=_("Redis ne répond pas (%(error)s).", error=type(exc).__name__))
    return Health(True, queues, sorted(workers, key=lambda w: w.name))


def _worker(worker: Worker) -> WorkerHealth:
    heartbeat = worker.last_heartbeat
    if heartbeat is not None and heartbeat.tzinfo is None:
        heartbeat = heartbeat.replace(tzinfo=UTC)
    # RQ drops a worker's record when its heartbeat lapses; one still listed but silent for longer
    # than its own timeout is shown as not alive.
    alive = heartbeat is not None and (
        (datetime.now(UTC) - heartbeat).total_seconds() <= (worker.worker_ttl or 420) + 60
    )
    return WorkerHealth(
        name=worker.name,
        hostname=worker.hostname or "",
        pid=worker.pid,
        state=str(worker.get_state()),
        queues=worker.queue_names(),
        current_job=worker.get_current_job_id(),
        last_heartbeat=heartbeat,
        alive=alive,
    )
