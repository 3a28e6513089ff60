"""Two workers refreshing the same integration's tokens at the same moment, a hundred times.

Refresh tokens rotate at the software (the sandbox, like Xero and QuickBooks, kills the old one on
use): without the shared lock, the second refresh of a round would send a spent token and get
invalid_grant, and the integration would be lost."""

from __future__ import annotations

import time
import uuid

import redis
from rq import Queue
from rq.job import Job, JobStatus
from sqlalchemy import func, select

from sandbox.models import SandboxToken
from tests.conftest import WorkerProcess
from webapp.extensions import db
from webapp.models import Event, Integration, IntegrationStatus

ROUNDS = 100


def test_two_workers_refreshing_at_once_never_lose_the_integration(job_app, live, connected_dossier):
    _, _, integration_id = connected_dossier
    connection = redis.Redis.from_url(job_app.config["REDIS_URL"])
    queue = Queue(job_app.config["JOB_QUEUE"], connection=connection)
    with job_app.app_context():
        tokens_before = db.session.scalar(select(func.count()).select_from(SandboxToken))

    workers = [WorkerProcess(job_app), WorkerProcess(job_app)]
    try:
        jobs: list[Job] = []
        for round_no in range(ROUNDS):
            barrier = f"raccord-test-barrier:{uuid.uuid4().hex}:{round_no}"
            pair = [
                queue.enqueue("tests.sample_jobs.refresh_together", integration_id, barrier, job_timeout=60)
                for _ in range(2)
            ]
            jobs.extend(pair)
            deadline = time.monotonic() + 60
            while not all(
                job.get_status(refresh=True) in (JobStatus.FINISHED, JobStatus.FAILED) for job in pair
            ):
                assert time.monotonic() < deadline, f"round {round_no} did not finish"
                time.sleep(0.02)
    finally:
        for worker in workers:
            worker.stop()

    failed = [job for job in jobs if job.get_status(refresh=True) != JobStatus.FINISHED]
    assert not failed, failed[0].latest_result().exc_string
    with job_app.app_context():
        integration = db.session.get(Integration, integration_id)
        assert integration.status is IntegrationStatus.CONNECTED
        assert not db.session.scalar(
            select(func.count()).where(
                Event.integration_id == integration_id, Event.kind == "integration.expired"
            )
        )
        # Exactly one refresh reached the software per round: the other worker took its result.
        assert db.session.scalar(select(func.count()).select_from(SandboxToken)) == tokens_before + ROUNDS
        # And both workers of a round used the same fresh access token.
    for index in range(0, len(jobs), 2):
        first, second = jobs[index].return_value(), jobs[index + 1].return_value()
        assert first == second
