"""The support area: staff only, every look written to the timeline, read-only 'Voir comme
l'utilisateur', the timeline and its filters, jobs retried, the queues' health."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from tests.conftest import csrf_token, login, plain_spaces, run_worker_burst, text_of
from tests.factories import make_dossier, make_integration, make_organisation, make_user
from webapp.extensions import db
from webapp.models import (
    Direction,
    Document,
    DocumentStatus,
    Dossier,
    Event,
    Integration,
    IntegrationStatus,
    JobRun,
    JobStatus,
    Role,
)
from webapp.models.base import utcnow
from webapp.services.events import record_event

STAFF = ("support@raccord.example", "support-secret")
MEMBER = ("claire@lefevre.test", "bon-mot-de-passe")


@pytest.fixture
def cabinet(app_ctx):
    """A cabinet with a dossier whose invoice failed, a member, and a support team: ids."""
    org = make_organisation("Cabinet Lefèvre")
    dossier = make_dossier(org, "Boulangerie Martin", "732829320")
    other = make_dossier(make_organisation("Cabinet Girard"), "Garage Girard", "552100554")
    integration = make_integration(dossier, status=IntegrationStatus.EXPIRED)
    member = make_user(org, MEMBER[0], MEMBER[1])
    member.full_name = "Claire Lefèvre"
    staff = make_user(make_organisation("Équipe Raccord"), STAFF[0], STAFF[1], Role.STAFF)
    staff.full_name = "Sam Support"
    document = Document(
        dossier_id=dossier.id,
        integration_id=integration.id,
        direction=Direction.PURCHASE,
        party_name="EDF Entreprises",
        number="F-2026-118",
        issue_date=date(2026, 11, 2),
        amount_ht=Decimal("100.00"),
        amount_tva=Decimal("20.00"),
        amount_ttc=Decimal("120.00"),
        status=DocumentStatus.FAILED,
        failure_reason="Intégration expirée",
        failure_detail='HTTP 400: {"error": "invalid_grant"}',
    )
    db.session.add(document)
    record_event(
        dossier_id=dossier.id,
        integration_id=integration.id,
        kind="integration.connected",
        message="Connexion à Compta Démo (société « Boulangerie Martin SARL »).",
        actor_id=member.id,
    )
    record_event(
        dossier_id=dossier.id,
        integration_id=integration.id,
        kind="document.publish_failed",
        outcome="failed",
        message="Échec de la publication de la facture F-2026-118 : Intégration expirée",
        details={"answer": 'HTTP 400: {"error": "invalid_grant"}'},
    )
    db.session.commit()
    return {"dossier": dossier.id, "other": other.id, "integration": integration.id, "member": member.id}


def support_urls(app, dossier_id: int, job_run_id: int) -> list[tuple[str, str]]:
    """Every URL of the support area, filled in: a new one is checked without being listed here."""
    urls = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("support."):
            continue
        values = {"dossier_id": dossier_id, "job_run_id": job_run_id}
        path = rule.build({k: v for k, v in values.items() if k in rule.arguments}, append_unknown=False)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            urls.append((method, path))
    assert len(urls) >= 7
    return urls


def support_events(dossier_id: int) -> list[Event]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(Event)
            .where(Event.dossier_id == dossier_id, Event.kind.startswith("support."))
            .order_by(Event.id)
        )
    )


def test_a_member_gets_404_on_every_support_url_and_leaves_no_trace(client, cabinet):
    run = JobRun(rq_job_id="x-1", kind="publish", dossier_id=cabinet["dossier"], status=JobStatus.FAILED)
    db.session.add(run)
    db.session.commit()
    login(client, *MEMBER)
    token = csrf_token(client, "/dossiers")
    for method, path in support_urls(client.application, cabinet["dossier"], run.id):
        response = client.open(path, method=method, data={"csrf_token": token, "user_id": cabinet["member"]})
        assert response.status_code == 404, (method, path)
        assert "Page introuvable" in text_of(response)
    assert support_events(cabinet["dossier"]) == []
    assert db.session.scalar(select(func.count()).select_from(Dossier)) == 2
    assert 'href="/support"' not in text_of(client.get("/dossiers"))


def test_anonymous_visitors_are_sent_to_the_login_page(client, cabinet):
    response = client.get(f"/support/dossiers/{cabinet['dossier']}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize(
    "query",
    ["boulangerie", "732 829 320", "lefèvre", "claire@lefevre", "CLAIRE@LEFEVRE.TEST"],
)
def test_staff_find_a_dossier_by_name_siren_organisation_or_user_email(client, cabinet, query):
    login(client, *STAFF)
    page = text_of(client.get("/support", query_string={"q": query}))
    assert "Boulangerie Martin" in page and "Cabinet Lefèvre" in page and MEMBER[0] in page
    assert "Garage Girard" not in page


def test_the_search_answers_a_fragment_to_htmx_and_says_when_nothing_matches(client, cabinet):
    login(client, *STAFF)
    fragment = text_of(
        client.get("/support?q=girard", headers={"HX-Request": "true", "HX-Target": "support-results"})
    )
    assert "<html" not in fragment and "Garage Girard" in fragment
    assert "Aucun dossier ne correspond à « zzz »." in text_of(client.get("/support?q=zzz"))


def test_the_dossier_view_tells_why_an_invoice_failed_and_the_look_is_in_the_timeline(client, cabinet):
    login(client, *STAFF)
    page = text_of(client.get(f"/support/dossiers/{cabinet['dossier']}"))
    assert "F-2026-118" in page and "Intégration expirée" in page and "EDF Entreprises" in page
    assert "Expirée" in page  # the integration's state
    assert "Échec de la publication de la facture F-2026-118" in page  # the timeline
    assert "Connexion à Compta Démo" in page and "Claire Lefèvre" in page  # who did it
    (viewed,) = support_events(cabinet["dossier"])
    assert viewed.kind == "support.viewed" and viewed.actor_id is not None
    assert (
        plain_spaces(viewed.message)
        == "Le support (Sam Support) a consulté le dossier dans l'espace support."
    )

    # Filtering the timeline (htmx) is the same look: no new event, only the failures shown.
    fragment = text_of(
        client.get(
            f"/support/dossiers/{cabinet['dossier']}?resultat=failed",
            headers={"HX-Request": "true", "HX-Target": "timeline"},
        )
    )
    assert "<html" not in fragment
    assert "Échec de la publication" in fragment and "Connexion à Compta Démo" not in fragment
    connection_only = text_of(
        client.get(
            f"/support/dossiers/{cabinet['dossier']}?categorie=connexion",
            headers={"HX-Request": "true", "HX-Target": "timeline"},
        )
    )
    assert "Connexion à Compta Démo" in connection_only and "Échec de la publication" not in connection_only
    assert len(support_events(cabinet["dossier"])) == 1

    # Loaded again a moment later: the same look, said once (and the dossier's pages keep their parts).
    client.get(f"/support/dossiers/{cabinet['dossier']}")
    assert len(support_events(cabinet["dossier"])) == 1
    with client.application.app_context():  # a quarter of an hour later, it is a new look
        db.session.execute(
            update(Event)
            .where(Event.kind == "support.viewed")
            .values(created_at=utcnow() - timedelta(minutes=16))
        )
        db.session.commit()
    client.get(f"/support/dossiers/{cabinet['dossier']}")
    assert len(support_events(cabinet["dossier"])) == 2


def test_the_timeline_pages_back_through_older_events(client, cabinet):
    for n in range(60):
        record_event(
            dossier_id=cabinet["dossier"], kind="lists.refreshed", message=f"Liste chargée n° {n:02d}"
        )
    db.session.commit()
    login(client, *STAFF)
    first = text_of(client.get(f"/support/dossiers/{cabinet['dossier']}?categorie=listes"))
    assert "Liste chargée n° 59" in first and "Liste chargée n° 09" not in first
    assert "Événements plus anciens" in first
    oldest_shown = min(
        e.id
        for e in db.session.scalars(
            select(Event).where(Event.kind == "lists.refreshed").order_by(Event.id.desc()).limit(50)
        )
    )
    older = text_of(
        client.get(
            f"/support/dossiers/{cabinet['dossier']}?categorie=listes&avant={oldest_shown}",
            headers={"HX-Request": "true", "HX-Target": "timeline"},
        )
    )
    assert "Liste chargée n° 09" in older and "Liste chargée n° 59" not in older


def test_the_integration_page_shows_the_user_the_last_events_in_french(client, cabinet):
    login(client, *MEMBER)
    page = text_of(client.get(f"/dossiers/{cabinet['dossier']}/integrations/{cabinet['integration']}"))
    assert "Derniers événements" in page
    assert "Échec de la publication de la facture F-2026-118 : Intégration expirée" in page
    assert "invalid_grant" not in page  # the software's answer is for support


def test_view_as_the_user_is_read_only_with_a_banner_and_written_to_the_timeline(client, cabinet):
    dossier_id = cabinet["dossier"]
    login(client, *STAFF)
    support_page = f"/support/dossiers/{dossier_id}"
    token = csrf_token(client, support_page)
    response = client.post(
        f"{support_page}/voir-comme", data={"csrf_token": token, "user_id": cabinet["member"]}
    )
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/dossiers/{dossier_id}")

    for path in (
        f"/dossiers/{dossier_id}",
        f"/dossiers/{dossier_id}/documents",
        f"/dossiers/{dossier_id}/parametres",
    ):
        page = text_of(client.get(path))
        assert "comme Claire Lefèvre, en lecture seule" in page, path
    # Any POST is refused, in French, and changes nothing: a form, and htmx.
    refused = client.post(
        f"/dossiers/{dossier_id}/parametres", data={"csrf_token": token, "name": "Renommé", "siren": ""}
    )
    assert refused.status_code == 403 and "Lecture seule" in text_of(refused)
    htmx = client.post(
        f"/dossiers/{dossier_id}/integrations/{cabinet['integration']}/actualiser",
        headers={"HX-Request": "true", "X-CSRFToken": token},
    )
    assert htmx.status_code == 403
    assert "Lecture seule" in json.loads(htmx.headers["HX-Trigger"])["raccord:toast"]["message"]
    assert db.session.get(Dossier, dossier_id).name == "Boulangerie Martin"
    # Another cabinet's dossier stays out of reach while viewing this one.
    assert client.get(f"/dossiers/{cabinet['other']}").status_code == 404

    back = client.post("/support/quitter-la-vue", data={"csrf_token": token})
    assert back.headers["Location"].endswith(support_page)
    assert client.get(f"/dossiers/{dossier_id}").status_code == 404
    kinds = [e.kind for e in support_events(dossier_id)]
    assert kinds[:3] == ["support.viewed", "support.view_as", "support.view_as_ended"]
    started = support_events(dossier_id)[1]
    assert "Claire Lefèvre" in started.message and "lecture seule" in started.message


def test_view_as_refuses_someone_outside_the_dossiers_cabinet(client, cabinet):
    login(client, *STAFF)
    page = f"/support/dossiers/{cabinet['dossier']}"
    response = client.post(
        f"{page}/voir-comme",
        data={"csrf_token": csrf_token(client, page), "user_id": 999999},
        follow_redirects=True,
    )
    assert "Choisissez un utilisateur du cabinet de ce dossier." in text_of(response)
    assert client.get(f"/dossiers/{cabinet['dossier']}").status_code == 404
    assert {e.kind for e in support_events(cabinet["dossier"])} == {"support.viewed"}  # looked, nothing else


def test_a_job_killed_with_its_worker_is_shown_failed_and_its_retry_completes(job_app, tmp_path):
    from webapp.services.jobs import launch_job

    with job_app.app_context():
        org = make_organisation("Cabinet Lefèvre")
        dossier = make_dossier(org, "Boulangerie Martin")
        make_user(make_organisation("Équipe Raccord"), STAFF[0], STAFF[1], Role.STAFF)
        run = launch_job(
            "tests.sample_jobs.die_once",
            str(tmp_path / "marker"),
            kind="test",
            description="Tâche d'essai",
            owner=None,
            dossier=dossier,
        )
        run_id, dossier_id = run.id, dossier.id
    run_worker_burst(job_app)

    client = job_app.test_client()
    login(client, *STAFF)
    page = f"/support/dossiers/{dossier_id}"
    text = text_of(client.get(page))
    assert "Tâche d'essai" in text and "Échec" in text and "Relancer" in text
    token = csrf_token(client, page)
    response = client.post(
        f"/support/taches/{run_id}/relancer", data={"csrf_token": token}, follow_redirects=True
    )
    assert "Tâche relancée" in text_of(response)
    again = client.post(
        f"/support/taches/{run_id}/relancer", data={"csrf_token": token}, follow_redirects=True
    )
    assert "Cette tâche a déjà été relancée." in text_of(again)
    run_worker_burst(job_app)
    with job_app.app_context():
        retry = db.session.scalar(select(JobRun).where(JobRun.retry_of_id == run_id))
        assert (
            retry.status is JobStatus.SUCCEEDED
            and plain_spaces(retry.message) == "Terminé à la seconde tentative."
        )
        assert retry.args == [str(tmp_path / "marker")]
        assert db.session.get(JobRun, run_id).status is JobStatus.FAILED


def test_queue_health_shows_waiting_and_failed_jobs_and_live_workers(job_app, worker_for_health):
    from webapp.services.jobs import launch_job

    with job_app.app_context():
        make_user(make_organisation("Équipe Raccord"), STAFF[0], STAFF[1], Role.STAFF)
    client = job_app.test_client()
    login(client, *STAFF)
    page = text_of(client.get("/support/files"))
    assert "Santé des files de tâches" in page
    assert "En attente de tâches" in page or "Occupé" in page  # the worker, alive
    assert "Aucun worker" not in page

    worker_for_health.stop()
    with job_app.app_context():
        launch_job(
            "tests.sample_jobs.count_to",
            1,
            kind="test",
            description="Tâche d'essai",
            owner=None,
            dossier=None,
        )
    page = text_of(client.get("/support/files"))
    waiting = re.search(rf'{job_app.config["JOB_QUEUE"]}</th><td class="num">(\d+)</td>', page)
    assert waiting and waiting.group(1) == "1"
    assert "Aucun worker n'est en marche" in page


@pytest.fixture
def worker_for_health(job_app):
    import time

    from tests.conftest import WorkerProcess
    from webapp.services.jobs import get_redis

    process = WorkerProcess(job_app)
    with job_app.app_context():
        from rq import Worker

        deadline = time.monotonic() + 20
        while not Worker.all(connection=get_redis()) and time.monotonic() < deadline:
            time.sleep(0.2)
    yield process
    process.stop()


def test_the_dossier_view_shows_the_companys_call_budget_at_its_software(app, client, cabinet):
    from webapp.connectors.limits import budget_for

    app.config["VENDOR_LIMITS"] = {"sandbox": {"rates": [[60, 5]], "concurrency": 2, "daily": 8}}
    app.config["VENDOR_LIMIT_MARGIN"] = 1.0
    integration = db.session.get(Integration, cabinet["integration"])
    budget = budget_for("sandbox", integration.company_id)
    for call in range(3):
        assert budget.try_acquire(f"call-{call}")[0] == 0
        if call == 0:
            budget.release("call-0")  # made; the two others are still under way
    budget.penalise(600, "minute")
    login(client, *STAFF)
    page = text_of(client.get(f"/support/dossiers/{cabinet['dossier']}"))
    block = page.split('id="budget"')[1].split("</table>")[0]
    assert "Demandes à Compta Démo pour cette société" in page
    assert re.search(r"Dernière minute</th><td[^>]*>3 sur 5<", block)
    assert re.search(r"En cours</th><td[^>]*>2 sur 2<", block)
    assert re.search(r"Aujourd'hui</th><td[^>]*>3 sur 8<", block)
    assert "En pause (réponse 429)" in block and "(minute)" in block and "Rythme réduit" in block
    assert (
        "Raccord s'en tient à 100 % des limites de débit et des limites quotidiennes de Compta Démo" in page
    )
