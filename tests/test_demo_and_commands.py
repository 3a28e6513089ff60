"""Demo data, the production guard, and the commands behind `make run`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from sqlalchemy import func, select

from tests.conftest import ROOT, TEST_SECRET, csrf_token, login, make_app, unescaped
from tests.http_user import Browser
from tests.processes import Spawned
from webapp.extensions import db
from webapp.models import Dossier, JobRun, JobStatus, Organisation, Role, User
from webapp.services.demo import DEMO_MEMBER, DemoRefused, refuse_demo_accounts


def test_seed_demo_creates_the_demo_cabinet_once(app, runner):
    result = runner.invoke(args=["seed-demo"])
    assert "Données de démonstration créées." in result.output
    again = runner.invoke(args=["seed-demo"])
    assert "existent déjà" in again.output
    with app.app_context():
        cabinet = db.session.scalar(select(Organisation).where(Organisation.name == "Cabinet Démo"))
        assert len(cabinet.dossiers) == 3
        assert all(d.siren and len(d.siren) == 9 for d in cabinet.dossiers)
        member = db.session.scalar(select(User).where(User.email == "demo@raccord.test"))
        staff = db.session.scalar(select(User).where(User.email == "support@raccord.test"))
        assert member.role is Role.ADMIN and member.check_password("demo")
        restricted = db.session.scalar(select(User).where(User.email == "lea@raccord.test"))
        assert restricted.is_restricted and restricted.check_password("lea")
        assert staff.role is Role.STAFF and staff.check_password("support")
        assert db.session.scalar(select(func.count()).select_from(Dossier)) == 3


def test_demo_logins_work(app, runner, client):
    runner.invoke(args=["seed-demo"])
    assert login(client, "demo@raccord.test", "demo").headers["Location"] == "/dossiers"
    page = client.get("/dossiers").get_data(as_text=True)
    assert "Boulangerie Martin" in page and "Atelier Dupont" in page
    assert "Équipe" in page  # the demo's admin runs the cabinet's team
    client.post("/logout", data={"csrf_token": csrf_token(client, "/dossiers")})
    assert login(client, "lea@raccord.test", "lea").headers["Location"] == "/dossiers"
    page = client.get("/dossiers").get_data(as_text=True)
    assert "Boulangerie Martin" in page and "Atelier Dupont" not in page


def test_production_refuses_to_start_with_demo_logins(app, runner):
    runner.invoke(args=["seed-demo"])
    with pytest.raises(DemoRefused, match="demo@raccord.test"):
        refuse_demo_accounts(app)


def test_production_refuses_to_seed_the_demo(app, database_url):
    app = make_app(database_url, RACCORD_ENV="production")
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code != 0
    assert "réservé au poste local" in result.output


def test_create_user_command(app, runner):
    result = runner.invoke(
        args=["create-user", "Marie@Cabinet.fr", "--organisation", "Cabinet Blanc"],
        input="un-mot-de-passe-long\nun-mot-de-passe-long\n",
    )
    assert "Utilisateur marie@cabinet.fr créé dans « Cabinet Blanc »." in result.output
    assert "Rôle : administrateur." in result.output  # the first of a new cabinet runs its team
    second = runner.invoke(
        args=["create-user", "paul@cabinet.fr", "--organisation", "Cabinet Blanc"],
        input="un-mot-de-passe-long\nun-mot-de-passe-long\n",
    )
    assert "Rôle : membre." in second.output
    third = runner.invoke(
        args=["create-user", "zoe@cabinet.fr", "--organisation", "Cabinet Blanc", "--role", "admin"],
        input="un-mot-de-passe-long\nun-mot-de-passe-long\n",
    )
    assert "Rôle : administrateur." in third.output
    wrong = runner.invoke(
        args=["create-user", "x@cabinet.fr", "--organisation", "Cabinet Blanc", "--role", "staff"],
        input="un-mot-de-passe-long\nun-mot-de-passe-long\n",
    )
    assert wrong.exit_code != 0
    short = runner.invoke(args=["create-user", "b@c.fr", "--organisation", "X"], input="court\ncourt\n")
    assert "au moins 12 caractères" in short.output
    with app.app_context():
        roles = dict(db.session.execute(select(User.email, User.role)).all())
        assert roles == {
            "marie@cabinet.fr": Role.ADMIN,
            "paul@cabinet.fr": Role.MEMBER,
            "zoe@cabinet.fr": Role.ADMIN,
        }


def test_embedded_backend_runs_jobs_in_a_real_rq_worker_thread(database_url):
    """What `make run` does without Redis: fakeredis in process and an RQ worker in a thread."""
    from webapp.services.jobs import launch_job
    from webapp.worker import start_embedded_worker

    app = make_app(database_url, REDIS_URL=None)
    worker, thread = start_embedded_worker(app)
    try:
        with app.app_context():
            run = launch_job(
                "tests.sample_jobs.count_to", 3, kind="test", description="Essai", owner=None, dossier=None
            )
            run_id = run.id
        deadline = time.monotonic() + 20
        status = JobStatus.QUEUED
        while time.monotonic() < deadline and not status.finished:
            time.sleep(0.1)
            with app.app_context():
                status = db.session.get(JobRun, run_id).status
        with app.app_context():
            run = db.session.get(JobRun, run_id)
            assert (run.status, run.message) == (JobStatus.SUCCEEDED, "Compté jusqu'à 3.")
    finally:
        worker.stop()
        thread.join(timeout=10)
    assert not thread.is_alive()


def walk_the_demo(base: str) -> None:
    """What the README's 'Démarrage rapide' says to try: a dossier already connected to 'Compta Démo'
    with its lists, two supplier rules and three invoices ready to publish (with their PDFs), one
    published from its row; another dossier left to connect."""
    browser = Browser(base)
    browser.login(*DEMO_MEMBER)
    documents = "/dossiers/1/documents"
    deadline = time.monotonic() + 90
    page = ""
    while time.monotonic() < deadline and 'Prêt <span class="count">3</span>' not in page:
        page = browser.get(documents).text
        time.sleep(0.3)
    assert 'Prêt <span class="count">3</span>' in page, page
    text = unescaped(page)
    for number in ("EDF-2026-118734", "MS-26-04127", "MS-26-04219"):
        assert number in text
    document_id = int(page.split('id="document-')[1].split('"')[0])
    pdf = browser.get(f"{documents}/{document_id}/pdf")
    assert pdf.headers["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF-")
    rules = unescaped(browser.get("/dossiers/1/regles/fournisseurs").text)
    assert "EDF Entreprises" in rules and "Moulins Soufflet" in rules
    lists = unescaped(browser.get("/dossiers/1/listes/suppliers").text)
    assert "Würth France" in lists
    assert "Ce dossier n'est relié à aucun logiciel comptable." in unescaped(browser.get("/dossiers/2").text)

    browser.post_form(f"{documents}/{document_id}/publier", {}, page=documents, htmx=True)
    row = ""
    while time.monotonic() < deadline and "Publié" not in row:
        row = unescaped(browser.get(f"{documents}/{document_id}/ligne").text)
        time.sleep(0.3)
    assert "Publié" in row
    browser.close()


def test_serve_local_migrates_seeds_serves_and_stops_on_ctrl_c(tmp_path, unused_port):
    """The command behind `make run`, on an empty instance folder, as a new user would run it."""
    env = dict(os.environ)
    env.update({"RACCORD_INSTANCE_PATH": str(tmp_path), "PORT": str(unused_port), "SECRET_KEY": TEST_SECRET})
    # Unbuffered, and every thread's stack on SIGABRT: if Ctrl-C ever fails to stop it, the failure
    # shows where each thread of the process was.
    env.update({"PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"})
    # Started as a shell's background job or a script starts it: with SIGINT ignored. Ctrl-C must
    # stop it all the same.
    ignoring_ctrl_c = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "os.execv(sys.executable, [sys.executable, '-m', 'flask', '--app', 'wsgi', 'serve-local'])"
    )
    process = Spawned(
        [sys.executable, "-c", ignoring_ctrl_c],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        body = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{unused_port}/login", timeout=2) as response:  # noqa: S310
                    body = response.read().decode()
                break
            except OSError:
                time.sleep(0.3)
        assert "Connexion à Raccord" in body
        assert (tmp_path / "raccord.db").exists()
        walk_the_demo(f"http://127.0.0.1:{unused_port}")
    finally:
        os.kill(process.pid, signal.SIGINT)  # Ctrl-C
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGABRT)
            stacks, _ = process.communicate(timeout=10)
            pytest.fail(f"serve-local still running 30 s after Ctrl-C; its output and threads:\n{stacks}")
        finally:
            process.stop(grace=5)  # stopped whatever happens
    assert f"Raccord est prêt : http://127.0.0.1:{unused_port}/" in output
    assert f"E-mails : écrits en fichiers .eml dans {tmp_path / 'mail'}/" in output
    assert "demo@raccord.test / demo" in output and "support@raccord.test / support" in output
    assert "Raccord arrêté." in output
    assert process.returncode == 0
