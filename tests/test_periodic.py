"""The periodic work, run as in production: RQ's cron scheduler enqueues, real workers run."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
import redis
from sqlalchemy import func, select, update

from sandbox.models import SandboxItem, SandboxToken
from tests.conftest import ROOT, plain_spaces, run_worker_burst, unescaped, worker_env
from tests.http_user import COMPANY, controls_api
from tests.processes import Spawned
from webapp.extensions import db
from webapp.models import Event, Integration, IntegrationStatus, JobRun, ListItem, ListKind, ListSync
from webapp.models.base import utcnow
from webapp.scheduler import build_scheduler

# Every write these flows make keeps the dossiers' lines of 'Mes dossiers' true.
pytestmark = pytest.mark.usefixtures("summaries_stay_true")


def _queued_funcs(app) -> list[str]:
    from rq import Queue

    queue = Queue(app.config["JOB_QUEUE"], connection=redis.Redis.from_url(app.config["REDIS_URL"]))
    return [job.func_name for job in queue.get_jobs()]


def _cron_job(scheduler, name: str):
    return next(job for job in scheduler.get_jobs() if job.func_name == f"jobs.periodic.{name}")


def _forget_claims(app) -> None:
    connection = redis.Redis.from_url(app.config["REDIS_URL"])
    for key in connection.scan_iter("raccord:periodic:*"):
        connection.delete(key)


def test_the_scheduler_registers_the_periodic_work(job_app):
    with job_app.app_context():
        scheduler = build_scheduler(job_app)
    jobs = {job.func_name: job for job in scheduler.get_jobs()}
    assert jobs["jobs.periodic.nightly_refresh"].cron == "0 2 * * *"
    assert jobs["jobs.periodic.purge_old_jobs"].cron == "30 3 * * *"
    assert jobs["jobs.periodic.keep_tokens_alive"].interval == 3600
    assert jobs["jobs.periodic.announce_consent_endings"].interval == 3600
    assert {job.queue_name for job in jobs.values()} == {job_app.config["JOB_QUEUE"]}


def _lists_state(dossier_id: int, integration_id: int) -> tuple:
    from webapp.models import DossierSummary

    summary = db.session.get(DossierSummary, dossier_id)
    return (
        sorted(
            db.session.execute(
                select(ListSync.kind, ListSync.status, ListSync.last_loaded_at, ListSync.last_counts).where(
                    ListSync.integration_id == integration_id
                )
            ).all()
        ),
        sorted(
            db.session.execute(
                select(ListItem.id, ListItem.name, ListItem.updated_at).where(
                    ListItem.integration_id == integration_id
                )
            ).all()
        ),
        db.session.scalar(select(func.max(Event.id)).where(Event.dossier_id == dossier_id)),
        (summary.last_loaded_at, summary.lists_running, summary.lists_failed),
    )


def test_each_night_lists_refresh_by_themselves_once_even_with_two_schedulers(
    job_app, live, connected_dossier, caplog
):
    _, dossier_id, integration_id = connected_dossier
    _forget_claims(job_app)
    with job_app.app_context():  # the company's lists last changed two days ago…
        db.session.execute(
            update(SandboxItem)
            .where(SandboxItem.company_id == COMPANY)
            .values(updated_at=utcnow() - timedelta(days=2))
        )
        db.session.execute(
            update(ListSync)
            .where(ListSync.integration_id == integration_id)
            .values(last_loaded_at=utcnow() - timedelta(days=1))
        )
        db.session.commit()
    controls = f"{live.url}/sandbox/controls/api"  # …but for one supplier renamed today
    renamed = controls_api.post(
        f"{controls}/companies/{COMPANY}/items/sup-000001", json={"name": "EDF Pro"}, timeout=10
    )
    assert renamed.status_code == 200
    renamed_at = utcnow()
    with job_app.app_context():
        before = db.session.scalar(
            select(func.count()).select_from(JobRun).where(JobRun.kind == "list_refresh")
        )
        first, second = build_scheduler(job_app), build_scheduler(job_app)
        _cron_job(first, "nightly_refresh").enqueue(first.connection)
        _cron_job(second, "nightly_refresh").enqueue(second.connection)
    assert _queued_funcs(job_app).count("jobs.periodic.nightly_refresh") == 2

    run_worker_burst(job_app)

    with job_app.app_context():
        runs = db.session.scalars(
            select(JobRun).where(JobRun.kind == "list_refresh").order_by(JobRun.id).offset(before)
        ).all()
        assert len(runs) == 1  # one for the integration's six lists, and one night, not two
        (run,) = runs
        assert run.owner_id is None and run.status.value == "succeeded"
        assert plain_spaces(run.description) == "Recherche des changements dans les listes"
        # Only what changed was asked for: the renamed supplier, not the whole list.
        assert plain_spaces(run.message) == (
            "Fournisseurs : 1 élément lu, aucun ajouté, 1 modifié, aucun rendu inactif. "
            "5 listes sans changement."
        )
        # Only the list that changed says so in the dossier (its pages wake for it) and is dated anew.
        refreshed = db.session.scalars(
            select(Event).where(Event.dossier_id == dossier_id, Event.kind == "lists.refreshed")
        ).all()
        assert [event.details["list"] for event in refreshed[-1:]] == ["suppliers"]
        assert not any(event.created_at > renamed_at for event in refreshed[:-1])
        loaded = dict(
            db.session.execute(
                select(ListSync.kind, ListSync.last_loaded_at).where(
                    ListSync.integration_id == integration_id
                )
            ).all()
        )
        assert loaded.pop(ListKind.SUPPLIERS) > renamed_at
        assert all(moment < renamed_at for moment in loaded.values())
        state = _lists_state(dossier_id, integration_id)

    # The next night nothing changed: six calls (one per list, changes only), one job, nothing written.
    _forget_claims(job_app)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="werkzeug"), job_app.app_context():
        scheduler = build_scheduler(job_app)
        _cron_job(scheduler, "nightly_refresh").enqueue(scheduler.connection)
        run_worker_burst(job_app)
    asked = [r.getMessage() for r in caplog.records if "/sandbox/api/v1/" in r.getMessage()]
    assert len(asked) == len(ListKind) and all("updated_since=" in line for line in asked), asked
    with job_app.app_context():
        run = db.session.scalars(
            select(JobRun).where(JobRun.kind == "list_refresh").order_by(JobRun.id)
        ).all()[-1]
        assert plain_spaces(run.message) == "Aucun changement dans les listes."
        assert _lists_state(dossier_id, integration_id) == state  # lists, rows, events, 'Mes dossiers'
        name = db.session.scalar(
            select(ListItem.name).where(
                ListItem.integration_id == integration_id, ListItem.external_id == "sup-000001"
            )
        )
        assert name == "EDF Pro"


def test_tokens_of_an_idle_integration_are_renewed_and_a_withdrawn_access_shows_expired(
    job_app, live, connected_dossier
):
    browser, dossier_id, integration_id = connected_dossier
    _forget_claims(job_app)
    with job_app.app_context():
        integration = db.session.get(Integration, integration_id)
        integration.tokens_refreshed_at = utcnow() - timedelta(days=2)
        db.session.commit()
        live_refresh_tokens = set(
            db.session.scalars(select(SandboxToken.refresh_token_hash).where(SandboxToken.revoked.is_(False)))
        )
        scheduler = build_scheduler(job_app)
        scheduler.enqueue_jobs()  # the hourly ticks run at once on start
    run_worker_burst(job_app)

    with job_app.app_context():
        integration = db.session.get(Integration, integration_id)
        assert integration.status is IntegrationStatus.CONNECTED
        assert utcnow() - integration.tokens_refreshed_at < timedelta(minutes=5)
        # The software saw a refresh: the refresh token held before is spent.
        spent = db.session.scalars(
            select(SandboxToken.refresh_token_hash).where(
                SandboxToken.refresh_token_hash.in_(live_refresh_tokens)
            )
        ).all()
        assert spent and all(
            db.session.scalar(select(SandboxToken.revoked).where(SandboxToken.refresh_token_hash == token))
            for token in spent
        )
        renewal = db.session.scalars(select(JobRun).where(JobRun.kind == "token_renewal")).one()
        assert plain_spaces(renewal.message) == "Accès renouvelé."

    # A second tick within the day renews nothing (the integration is no longer idle).
    _forget_claims(job_app)
    with job_app.app_context():
        build_scheduler(job_app).enqueue_jobs()
    run_worker_burst(job_app)
    with job_app.app_context():
        assert db.session.scalar(select(func.count()).where(JobRun.kind == "token_renewal")) == 1

    # The company withdrew the access at the software: the next renewal says so in the dossier.
    revoked = controls_api.post(
        f"{live.url}/sandbox/controls/api/companies/{COMPANY}/revoke", json={}, timeout=10
    )
    assert revoked.json() == {"grants": 1}
    _forget_claims(job_app)
    with job_app.app_context():
        integration = db.session.get(Integration, integration_id)
        integration.tokens_refreshed_at = utcnow() - timedelta(days=2)
        db.session.commit()
        build_scheduler(job_app).enqueue_jobs()
    run_worker_burst(job_app)
    with job_app.app_context():
        assert db.session.get(Integration, integration_id).status is IntegrationStatus.EXPIRED
        assert (
            db.session.scalar(
                select(func.count()).where(
                    Event.integration_id == integration_id, Event.kind == "integration.expired"
                )
            )
            == 1
        )
    page = unescaped(browser.get(f"/dossiers/{dossier_id}/integrations/{integration_id}").text)
    assert "Expirée" in page and "Se reconnecter" in page


def test_a_consent_that_ends_soon_is_announced_once_then_on_the_page_until_reconnected(
    job_app, live, connected_dossier
):
    browser, dossier_id, integration_id = connected_dossier
    _forget_claims(job_app)
    controls = f"{live.url}/sandbox/controls/api"
    answer = controls_api.post(f"{controls}/companies/{COMPANY}/consent", json={"days": 20}, timeout=10)
    assert answer.status_code == 200 and answer.json() == {"grants": 1}
    with job_app.app_context():
        integration = db.session.get(Integration, integration_id)
        assert integration.consent_expires_at is None or (
            integration.consent_expires_at - utcnow() > timedelta(days=30)
        )
        integration.tokens_refreshed_at = utcnow() - timedelta(days=2)
        db.session.commit()
        build_scheduler(job_app).enqueue_jobs()
    run_worker_burst(job_app)  # the renewal learns the end of the consent from the software
    _forget_claims(job_app)
    with job_app.app_context():
        build_scheduler(job_app).enqueue_jobs()
    run_worker_burst(job_app)  # the announcement

    with job_app.app_context():
        integration = db.session.get(Integration, integration_id)
        left = integration.consent_expires_at - utcnow()
        assert timedelta(days=19) < left <= timedelta(days=20)
        ends = integration.consent_expires_at
        events = db.session.scalars(
            select(Event).where(
                Event.integration_id == integration_id, Event.kind == "integration.consent_ending"
            )
        ).all()
        assert len(events) == 1
        from webapp.templating import date_fr

        with job_app.test_request_context():
            day = date_fr(ends)
        assert plain_spaces(events[0].message).startswith(f"L'accès à Compta Démo prend fin le {day}.")

    for path in (
        f"/dossiers/{dossier_id}/integrations/{integration_id}",
        f"/dossiers/{dossier_id}/documents",
    ):
        page = unescaped(browser.get(path).text)
        assert f"L'accès à Compta Démo prend fin le {day}." in page, path

    # Another hour: nothing more is written.
    _forget_claims(job_app)
    with job_app.app_context():
        build_scheduler(job_app).enqueue_jobs()
    run_worker_burst(job_app)
    with job_app.app_context():
        assert db.session.scalar(select(func.count()).where(Event.kind == "integration.consent_ending")) == 1


def test_the_scheduler_command_enqueues_and_stops_cleanly(job_app):
    process = Spawned(
        [sys.executable, "-m", "flask", "--app", "wsgi", "scheduler"],
        cwd=ROOT,
        env=worker_env(job_app),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            funcs = _queued_funcs(job_app)
            if {"jobs.periodic.keep_tokens_alive", "jobs.periodic.announce_consent_endings"} <= set(funcs):
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"nothing enqueued: {_queued_funcs(job_app)}")
        assert "jobs.periodic.nightly_refresh" not in funcs  # that one waits for the night
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=20)
        finally:
            process.stop(grace=5)
    assert process.returncode == 0, output
