"""Jobs: a JobRun per job, real Redis, real RQ worker processes, progress, failures, owned status fragment."""

from __future__ import annotations

import pytest
import redis
from rq.job import Job

from tests.conftest import login, plain_spaces, run_worker_burst, text_of
from tests.factories import make_dossier, make_organisation, make_user
from webapp.extensions import db
from webapp.models import JobRun, JobStatus, Role
from webapp.services.jobs import (
    CRASHED_MESSAGE,
    UNEXPECTED_MESSAGE,
    JobBackendUnavailable,
    get_redis,
    launch_job,
)


@pytest.fixture
def people(job_app):
    with job_app.app_context():
        org = make_organisation()
        dossier = make_dossier(org)
        owner = make_user(org, "claire@lefevre.test", "bon-mot-de-passe")
        colleague = make_user(org, "paul@lefevre.test", "autre-mot-de-passe")
        make_user(
            make_organisation("Équipe Raccord"), "support@raccord.example", "support-secret", Role.STAFF
        )
        return owner.id, colleague.id, dossier.id


def _launch(job_app, func: str, *args, owner_id: int, dossier_id: int) -> int:
    from webapp.models import Dossier, User

    with job_app.app_context():
        run = launch_job(
            func,
            *args,
            kind="test",
            description="Tâche d'essai",
            owner=db.session.get(User, owner_id),
            dossier=db.session.get(Dossier, dossier_id),
        )
        return run.id


def _run(job_app, run_id: int) -> JobRun:
    with job_app.app_context():
        run = db.session.get(JobRun, run_id)
        db.session.expunge(run)
        return run


def test_a_job_is_recorded_then_run_by_a_real_worker(job_app, people):
    owner_id, _, dossier_id = people
    run_id = _launch(job_app, "tests.sample_jobs.count_to", 4, owner_id=owner_id, dossier_id=dossier_id)
    queued = _run(job_app, run_id)
    assert (
        queued.status is JobStatus.QUEUED and queued.owner_id == owner_id and queued.dossier_id == dossier_id
    )
    with job_app.app_context():
        assert job_app.config["JOB_QUEUE"] in Job.fetch(queued.rq_job_id, connection=get_redis()).origin

    run_worker_burst(job_app)

    done = _run(job_app, run_id)
    assert done.status is JobStatus.SUCCEEDED
    assert plain_spaces(done.message) == "Compté jusqu'à 4."
    assert done.progress == 100
    assert done.started_at is not None and done.ended_at >= done.started_at
    with job_app.app_context():
        meta = Job.fetch(done.rq_job_id, connection=get_redis()).meta
        assert meta["progress"] == 100 and meta["message"] == "Étape 4 sur 4"


def test_a_user_facing_failure_keeps_its_french_message(job_app, people):
    owner_id, _, dossier_id = people
    run_id = _launch(job_app, "tests.sample_jobs.refuse_politely", owner_id=owner_id, dossier_id=dossier_id)
    run_worker_burst(job_app)
    run = _run(job_app, run_id)
    assert run.status is JobStatus.FAILED
    assert plain_spaces(run.message) == "Le logiciel comptable a refusé la demande : compte 401000 archivé."


def test_an_unexpected_failure_shows_no_internal_detail(job_app, people):
    owner_id, _, dossier_id = people
    run_id = _launch(
        job_app, "tests.sample_jobs.break_unexpectedly", owner_id=owner_id, dossier_id=dossier_id
    )
    run_worker_burst(job_app)
    run = _run(job_app, run_id)
    assert run.status is JobStatus.FAILED
    assert plain_spaces(run.message) == UNEXPECTED_MESSAGE
    assert "secret" not in run.message


def test_a_job_killed_mid_way_is_shown_failed_with_a_retry_hint(job_app, people):
    owner_id, _, dossier_id = people
    run_id = _launch(job_app, "tests.sample_jobs.die_hard", owner_id=owner_id, dossier_id=dossier_id)
    run_worker_burst(job_app)
    assert _run(job_app, run_id).status is JobStatus.RUNNING  # its own cleanup never ran

    client = job_app.test_client()
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    page = text_of(client.get(f"/jobs/{run_id}"))
    assert "Échec" in page and str(CRASHED_MESSAGE) in page
    assert "hx-get" not in page
    assert _run(job_app, run_id).status is JobStatus.FAILED


def test_status_fragment_polls_only_while_the_job_runs(job_app, people):
    owner_id, _, dossier_id = people
    run_id = _launch(job_app, "tests.sample_jobs.count_to", 2, owner_id=owner_id, dossier_id=dossier_id)
    client = job_app.test_client()
    login(client, "claire@lefevre.test", "bon-mot-de-passe")

    waiting = client.get(f"/jobs/{run_id}", headers={"HX-Request": "true"})
    fragment = text_of(waiting)
    assert "<html" not in fragment
    assert "En attente" in fragment and "Tâche d'essai" in fragment
    assert f'hx-get="/jobs/{run_id}"' in fragment and 'hx-swap="outerHTML"' in fragment

    run_worker_burst(job_app)
    finished = text_of(client.get(f"/jobs/{run_id}", headers={"HX-Request": "true"}))
    assert "Terminé" in finished and "Compté jusqu'à 2." in finished
    assert "hx-get" not in finished and "hx-trigger" not in finished


def test_status_fragment_is_only_for_its_owner_and_staff(job_app, people):
    owner_id, _, dossier_id = people
    run_id = _launch(job_app, "tests.sample_jobs.count_to", 1, owner_id=owner_id, dossier_id=dossier_id)
    colleague = job_app.test_client()
    login(colleague, "paul@lefevre.test", "autre-mot-de-passe")
    assert colleague.get(f"/jobs/{run_id}").status_code == 404
    assert colleague.get("/jobs/999999").status_code == 404
    staff = job_app.test_client()
    login(staff, "support@raccord.example", "support-secret")
    assert staff.get(f"/jobs/{run_id}").status_code == 200
    anonymous = job_app.test_client()
    assert anonymous.get(f"/jobs/{run_id}").status_code == 302


def test_redis_down_leaves_a_failed_record_and_a_french_error(job_app, people, monkeypatch):
    owner_id, _, dossier_id = people

    def refuse(*_args, **_kwargs):
        raise redis.exceptions.ConnectionError("connection refused")

    monkeypatch.setattr("rq.queue.Queue.enqueue", refuse)
    with pytest.raises(JobBackendUnavailable, match="momentanément indisponible"):
        _launch(job_app, "tests.sample_jobs.count_to", 1, owner_id=owner_id, dossier_id=dossier_id)
    with job_app.app_context():
        (run,) = db.session.scalars(db.select(JobRun)).all()
        assert run.status is JobStatus.FAILED
        assert "Rien n'a été modifié" in run.message


def test_old_finished_job_records_are_purged_by_a_job(job_app, people):
    from datetime import timedelta

    from webapp.models.base import utcnow

    owner_id, _, dossier_id = people
    with job_app.app_context():
        old = JobRun(
            rq_job_id="old-one",
            kind="test",
            status=JobStatus.SUCCEEDED,
            created_at=utcnow() - timedelta(days=40),
        )
        stuck = JobRun(
            rq_job_id="old-running",
            kind="test",
            status=JobStatus.RUNNING,
            created_at=utcnow() - timedelta(days=40),
        )
        db.session.add_all([old, stuck])
        db.session.commit()
    run_id = _launch(job_app, "jobs.maintenance.purge_job_runs", 30, owner_id=owner_id, dossier_id=dossier_id)
    run_worker_burst(job_app)
    assert _run(job_app, run_id).message == "1 trace de tâche supprimée."
    with job_app.app_context():
        left = set(db.session.scalars(db.select(JobRun.rq_job_id)).all())
    assert "old-one" not in left and "old-running" in left
