"""RQ workers that run jobs inside the app: a forking one for `rq worker`, and an embedded thread."""

from __future__ import annotations

import logging
import os
import threading

from flask import Flask
from rq import Queue, SimpleWorker, Worker
from rq.timeouts import TimerDeathPenalty

log = logging.getLogger(__name__)


class AppWorker(Worker):
    """The production worker: `rq worker -w webapp.worker.AppWorker` or `flask --app wsgi worker`.

    Each job runs in a forked work horse inside a fresh app context, so a crash of one job
    cannot corrupt the next, and the database session is always new.
    """

    app: Flask | None = None

    def __init__(self, *args, app: Flask | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if app is not None:
            self.app = app
        self._app_pid: int | None = None

    def _get_app(self) -> Flask:
        if self.app is None:
            from webapp import create_app

            self.app = create_app()
        return self.app

    def perform_job(self, job, queue, execution):  # type: ignore[override]
        app = self._get_app()
        if self._app_pid != os.getpid():
            # In a freshly forked horse: never reuse the parent's database connections.
            from webapp.extensions import db

            with app.app_context():
                db.engine.dispose(close=False)
            self._app_pid = os.getpid()
        with app.app_context():
            return super().perform_job(job, queue, execution)


class EmbeddedWorker(SimpleWorker):
    """A real RQ worker run in a thread of the web process, for `make run` without Redis.

    Signals belong to the main thread, so the timeout uses a timer and no handlers are installed.
    """

    death_penalty_class = TimerDeathPenalty

    def __init__(self, *args, app: Flask, **kwargs):
        super().__init__(*args, **kwargs)
        self.app = app

    #: How often, in seconds, an idle worker looks whether it was asked to stop.
    stop_check_seconds = 1

    def _install_signal_handlers(self) -> None:
        pass

    def stop(self) -> None:
        self._stop_requested = True

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):  # type: ignore[override]
        # RQ stops an idle worker through a signal; a thread has none, so wait in short slices
        # and look at the stop flag between them. Returning None ends the work loop.
        while not self._stop_requested:
            result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time=self.stop_check_seconds)
            if result is not None:
                return result
        return None

    def perform_job(self, job, queue, execution):  # type: ignore[override]
        with self.app.app_context():
            return super().perform_job(job, queue, execution)


def start_embedded_worker(app: Flask) -> tuple[EmbeddedWorker, threading.Thread]:
    from webapp.services.jobs import get_queue, get_redis

    queue: Queue = get_queue(app)
    worker = EmbeddedWorker([queue], connection=get_redis(app), app=app)
    thread = threading.Thread(
        target=worker.work, kwargs={"logging_level": "WARNING"}, name="raccord-worker", daemon=True
    )
    thread.start()
    return worker, thread
