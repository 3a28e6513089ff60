"""When a company's calls for the day are spent, the work waits for the next day instead of failing:
a refresh is scheduled again (its list as it was, a French message saying when), a publication too
(the document 'En cours', never 'Échec'). Real RQ workers, the sandbox over HTTP."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from tests.conftest import run_worker_burst, unescaped
from tests.http_user import toast_of
from tests.test_publishing import click_publish, new_invoice, status_of, upstream_invoices
from webapp import metrics
from webapp.connectors.limits import budget_for
from webapp.extensions import db
from webapp.models import (
    DocumentStatus,
    Integration,
    JobRun,
    JobStatus,
    ListItem,
    ListItemStaging,
    ListKind,
    ListSync,
)
from webapp.models.lists import SyncStatus
from webapp.services.jobs import get_redis

DEFERRED = re.compile(
    r"La limite quotidienne de demandes de Compta Démo pour cette société est atteinte : "
    r"l'actualisation reprendra (aujourd'hui|demain) à \d\d:05\."
)


def with_daily_budget(job_app, daily: int) -> dict[str, str]:
    """The budget the workers (and this process) keep: `daily` calls a day for Compta Démo."""
    job_app.config["VENDOR_LIMITS"] = {"sandbox": {"daily": daily}}
    job_app.config["VENDOR_LIMIT_MARGIN"] = 1.0
    return {"VENDOR_LIMITS": json.dumps(job_app.config["VENDOR_LIMITS"]), "VENDOR_LIMIT_MARGIN": "1"}


def spend_the_day(job_app, integration_id: int, leave: int = 0) -> None:
    """Calls made to the company today, by other work, until `leave` are left."""
    with job_app.app_context():
        budget = budget_of(integration_id)
        while budget.remaining_today() > leave:
            status, _wait, _limit = budget.try_acquire(f"spent-{budget.remaining_today()}")
            assert status == 0
            budget.release(f"spent-{budget.remaining_today() + 1}")


def budget_of(integration_id: int):
    return budget_for("sandbox", db.session.get(Integration, integration_id).company_id)


def suppliers(job_app, integration_id: int) -> set[tuple[str, str, bool]]:
    with job_app.app_context():
        return set(
            db.session.execute(
                select(ListItem.external_id, ListItem.name, ListItem.active).where(
                    ListItem.integration_id == integration_id, ListItem.kind == ListKind.SUPPLIERS
                )
            ).all()
        )


def sync_of(job_app, integration_id: int) -> ListSync:
    with job_app.app_context():
        sync = db.session.scalar(
            select(ListSync).where(
                ListSync.integration_id == integration_id, ListSync.kind == ListKind.SUPPLIERS
            )
        )
        db.session.expunge(sync)
        return sync


def scheduled(job_app) -> list[Job]:
    with job_app.app_context():
        registry = ScheduledJobRegistry(job_app.config["JOB_QUEUE"], connection=get_redis())
        return [Job.fetch(job_id, connection=get_redis()) for job_id in registry.get_job_ids()]


def deferred_count(job_app) -> float:
    with job_app.app_context():
        return metrics._read(metrics.PREFIX + "raccord_budget_deferred").get(("sandbox",), 0.0)


def refreshes_measured(job_app) -> float:
    with job_app.app_context():
        counts = metrics._read(metrics.PREFIX + "raccord_list_refresh_seconds:count")
    return counts.get(("sandbox", "suppliers", "full"), 0.0)


def forget_budget(job_app, integration_id: int) -> None:
    with job_app.app_context():
        budget_for("sandbox", db.session.get(Integration, integration_id).company_id).forget()


def test_a_refresh_that_would_pass_the_days_budget_waits_for_the_next_day(job_app, connected_dossier):
    browser, dossier_id, integration_id = connected_dossier
    before = suppliers(job_app, integration_id)
    assert sync_of(job_app, integration_id).last_counts["calls_full"] >= 1  # what the load cost
    with job_app.app_context():  # as if the last load had taken 3 calls: 2 are left today
        sync = db.session.scalar(
            select(ListSync).where(
                ListSync.integration_id == integration_id, ListSync.kind == ListKind.SUPPLIERS
            )
        )
        sync.last_counts = {**sync.last_counts, "calls_full": 3}
        db.session.commit()
    env = with_daily_budget(job_app, 5)
    spend_the_day(job_app, integration_id, leave=2)
    deferred_before = deferred_count(job_app)

    page = f"/dossiers/{dossier_id}/listes/suppliers"
    browser.post_form(f"{page}/recharger", {}, page=page, htmx=True)
    run_worker_burst(job_app, **env)

    sync = sync_of(job_app, integration_id)
    assert sync.status is SyncStatus.DEFERRED and DEFERRED.fullmatch(unescaped(sync.last_error))
    assert suppliers(job_app, integration_id) == before  # nothing of the list lost
    with job_app.app_context():
        assert budget_of(integration_id).remaining_today() == 2  # not started: nothing spent for nothing
    [job] = scheduled(job_app)
    assert job.func_name == "jobs.lists.refresh_list" and list(job.args) == [
        integration_id,
        "suppliers",
        False,
    ]
    midnight = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    with job_app.app_context():
        at = ScheduledJobRegistry(job_app.config["JOB_QUEUE"], connection=get_redis()).get_scheduled_time(job)
        run = db.session.get(JobRun, sync.job_run_id)
        # The same run waits for its new job: neither failed nor finished.
        assert (
            run.status is JobStatus.QUEUED
            and run.rq_job_id == job.id
            and DEFERRED.fullmatch(unescaped(run.message))
        )
    assert abs((at.replace(tzinfo=UTC) - midnight).total_seconds() - 300) < 5
    assert deferred_count(job_app) == deferred_before + 1

    # The integration page says when the list will be loaded; a second click starts nothing.
    shown = unescaped(browser.get(f"/dossiers/{dossier_id}/integrations/{integration_id}").text)
    assert "Reporté" in shown and DEFERRED.search(shown)
    again = browser.post_form(f"{page}/recharger", {}, page=page, htmx=True)
    assert DEFERRED.fullmatch(toast_of(again))
    with job_app.app_context():
        assert (
            db.session.query(JobRun).filter(JobRun.kind == "list_refresh").count() == 1 + 6
        )  # + the first loads

    # The next day: the scheduled job runs under the same run, and the list is loaded.
    forget_budget(job_app, integration_id)
    with job_app.app_context():
        queue = Queue(job_app.config["JOB_QUEUE"], connection=get_redis())
        ScheduledJobRegistry(queue=queue).remove(job)
        queue.enqueue_job(job)
    loads_before = refreshes_measured(job_app)
    run_worker_burst(job_app, **env)
    sync = sync_of(job_app, integration_id)
    assert sync.status is SyncStatus.SUCCEEDED and sync.last_error == ""
    assert refreshes_measured(job_app) == loads_before + 1  # raccord_list_refresh_seconds
    with job_app.app_context():
        assert db.session.get(JobRun, sync.job_run_id).status is JobStatus.SUCCEEDED


def test_a_refresh_stopped_half_way_by_the_days_budget_keeps_the_list_as_it_was(
    job_app, live, connected_dossier
):
    browser, dossier_id, integration_id = connected_dossier
    before = suppliers(job_app, integration_id)
    # The last load took one call; read 10 by 10 the suppliers need more than the day has left.
    assert sync_of(job_app, integration_id).last_counts["calls_full"] == 1
    env = with_daily_budget(job_app, 1)
    page = f"/dossiers/{dossier_id}/listes/suppliers"
    browser.post_form(f"{page}/recharger", {}, page=page, htmx=True)
    run_worker_burst(job_app, LIST_PAGE_SIZE="10", **env)

    sync = sync_of(job_app, integration_id)
    assert sync.status is SyncStatus.DEFERRED and DEFERRED.fullmatch(unescaped(sync.last_error))
    assert suppliers(job_app, integration_id) == before  # nothing half-merged
    with job_app.app_context():
        assert db.session.query(ListItemStaging).count() == 0
    assert [job.func_name for job in scheduled(job_app)] == ["jobs.lists.refresh_list"]


def test_a_publication_waits_for_the_next_day_and_never_shows_failed(job_app, live, dossier_with_rule):
    browser, dossier_id, integration_id, ids = dossier_with_rule
    document_id = new_invoice(browser, dossier_id, ids)
    env = with_daily_budget(job_app, 3)
    spend_the_day(job_app, integration_id)
    click_publish(browser, dossier_id, document_id)
    run_worker_burst(job_app, **env)

    document = status_of(job_app, document_id)
    assert document.status is DocumentStatus.IN_PROGRESS
    assert re.fullmatch(
        r"La limite quotidienne de demandes de Compta Démo pour cette société est atteinte : "
        r"la publication reprendra (aujourd'hui|demain) à \d\d:05\.",
        unescaped(document.failure_reason),
    )
    assert upstream_invoices(live) == []
    [job] = scheduled(job_app)
    assert job.func_name == "jobs.publishing.publish_document" and list(job.args) == [document_id]
    with job_app.app_context():
        run = db.session.get(JobRun, document.job_run_id)
        assert run.status is JobStatus.QUEUED and run.rq_job_id == job.id
    row = browser.get(f"/dossiers/{dossier_id}/documents/{document_id}/ligne", headers={"HX-Request": "true"})
    text = unescaped(row.text)
    assert "En cours" in text and "la publication reprendra" in text and "Échec" not in text
    assert "hx-get" not in text  # no row polling for a day
