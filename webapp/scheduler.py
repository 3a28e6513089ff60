"""RQ's cron scheduler with Raccord's periodic work: `flask --app wsgi scheduler`.

The scheduler only enqueues; workers run. Run one per deployment, or one per machine for safety:
each periodic job claims its night or hour in Redis first (webapp.services.periodic), so two
schedulers never refresh a dossier twice.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask
from rq.cron import CronScheduler

from jobs import mail, notifications, periodic
from webapp.services.jobs import get_redis


def build_scheduler(app: Flask, scheduler_class: type[CronScheduler] = CronScheduler) -> CronScheduler:
    config = app.config
    queue = config["JOB_QUEUE"]
    scheduler = scheduler_class(connection=get_redis(app), logging_level=logging.INFO)
    options = {"job_timeout": config["JOB_TIMEOUT"], "result_ttl": 86400, "failure_ttl": 7 * 86400}
    scheduler.register(periodic.nightly_refresh, queue, cron=config["SCHEDULE_NIGHTLY_REFRESH"], **options)
    scheduler.register(periodic.purge_old_jobs, queue, cron=config["SCHEDULE_PURGE_JOBS"], **options)
    scheduler.register(periodic.hourly_refresh, queue, interval=config["SCHEDULE_HOURLY_SECONDS"], **options)
    scheduler.register(
        periodic.keep_tokens_alive, queue, interval=config["SCHEDULE_HOURLY_SECONDS"], **options
    )
    scheduler.register(
        periodic.announce_consent_endings, queue, interval=config["SCHEDULE_HOURLY_SECONDS"], **options
    )
    scheduler.register(mail.resend_mail, queue, interval=config["SCHEDULE_MAIL_SECONDS"], **options)
    scheduler.register(notifications.sweep, queue, interval=config["SCHEDULE_HOURLY_SECONDS"], **options)
    scheduler.register(notifications.send_digests, queue, cron=config["SCHEDULE_DIGEST"], **options)
    return scheduler


class EmbeddedScheduler(CronScheduler):
    """The same scheduler in a thread of `make run` (signals belong to the main thread)."""

    def _install_signal_handlers(self) -> None:
        pass


def start_embedded_scheduler(app: Flask) -> threading.Thread:
    scheduler = build_scheduler(app, scheduler_class=EmbeddedScheduler)
    thread = threading.Thread(target=scheduler.start, name="raccord-scheduler", daemon=True)
    thread.start()
    return thread
