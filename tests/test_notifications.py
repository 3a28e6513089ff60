"""Notifications by e-mail: each event once per person, as each person chooses, to a real SMTP server."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests.conftest import csrf_token, login, run_worker_burst, text_of
from tests.factories import make_dossier, make_integration, make_organisation, make_user
from webapp.extensions import db
from webapp.models import (
    Direction,
    Document,
    DocumentStatus,
    Integration,
    IntegrationStatus,
    ListKind,
    ListSync,
    Notification,
    OutgoingMail,
    SyncStatus,
    User,
)
from webapp.models.base import utcnow
from webapp.services import notifications
from webapp.services.events import record_event

BASE = "https://raccord.cabinet.test"


def plain(text: str) -> str:
    return text.replace("\u00a0", " ").replace("\u202f", " ")


@pytest.fixture
def cabinet(mail_app):
    """Boulangerie Martin connected to Compta Démo; Claire (French) and John (English) may see it,
    Paul left the cabinet (deactivated); another cabinet's Garage Girard, with its own bookkeeper."""
    with mail_app.app_context():
        org = make_organisation("Cabinet Lefèvre")
        dossier = make_dossier(org, "Boulangerie Martin")
        integration = make_integration(dossier)
        make_user(org, "claire@lefevre.test", "bon-mot-de-passe")
        john = make_user(org, "john@lefevre.test")
        john.full_name, john.locale = "John Smith", "en"
        paul = make_user(org, "paul@lefevre.test")
        paul.is_active_account = False
        other = make_organisation("Cabinet Girard")
        make_dossier(other, "Garage Girard")
        make_user(other, "gilles@girard.test")
        db.session.commit()
        return {"dossier": dossier.id, "integration": integration.id}


def _by_recipient(server) -> dict[str, list]:
    received: dict[str, list] = {}
    for message in server.messages:
        received.setdefault(message.header("To"), []).append(message)
    return received


def _sweep(app, **kwargs) -> int:
    with app.app_context():
        return notifications.sweep(**kwargs)


def test_an_expiry_is_told_at_once_to_each_person_of_the_dossier_and_only_once(
    mail_app, smtp_server, cabinet
):
    from webapp.services.integrations import mark_expired

    with mail_app.app_context():
        mark_expired(cabinet["integration"], "invalid_grant")
    run_worker_burst(mail_app)  # the hook's job, then the mails it queued

    smtp_server.wait_for(2)
    received = _by_recipient(smtp_server)
    assert set(received) == {"claire@lefevre.test", "john@lefevre.test"}
    (claire,) = received["claire@lefevre.test"]
    assert plain(claire.subject) == "Boulangerie Martin : l'intégration a expiré"
    assert "L'intégration du dossier « Boulangerie Martin » avec Compta Démo a expiré" in plain(claire.text)
    assert f"{BASE}/dossiers/{cabinet['dossier']}/integrations/{cabinet['integration']}" in claire.text
    assert ">Se reconnecter</a>" in claire.html
    (john,) = received["john@lefevre.test"]
    assert '<html lang="en">' in john.html and ">Reconnect</a>" in john.html

    # The sweep sees the same expiry: nobody is told twice.
    assert _sweep(mail_app) == 0
    assert _sweep(mail_app, now=utcnow() + timedelta(hours=1)) == 0
    run_worker_burst(mail_app)
    assert len(smtp_server.messages) == 2
    with mail_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Notification)) == 2


def test_a_consent_ending_within_the_notice_is_told_once(mail_app, smtp_server, cabinet):
    with mail_app.app_context():
        integration = db.session.get(Integration, cabinet["integration"])
        integration.consent_expires_at = utcnow() + timedelta(days=20)
        db.session.commit()
    assert _sweep(mail_app) == 0  # beyond NOTIFY_CONSENT_DAYS (14)

    with mail_app.app_context():
        integration = db.session.get(Integration, cabinet["integration"])
        integration.consent_expires_at = utcnow() + timedelta(days=10)
        db.session.commit()
        ends = integration.consent_expires_at
    assert _sweep(mail_app) == 2
    assert _sweep(mail_app) == 0
    run_worker_burst(mail_app)

    received = _by_recipient(smtp_server.wait_for(2) and smtp_server)
    (claire,) = received["claire@lefevre.test"]
    assert plain(claire.subject) == "Boulangerie Martin : l'accès au logiciel comptable prend fin bientôt"
    day = ends.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris")).strftime("%d/%m/%Y")
    assert f"prend fin le {day}" in plain(claire.text)
    assert f"{BASE}/dossiers/{cabinet['dossier']}/integrations/{cabinet['integration']}" in claire.html


def test_a_list_failing_for_24_hours_is_told_once_with_its_last_error(mail_app, smtp_server, cabinet):
    with mail_app.app_context():
        sync = ListSync(
            integration_id=cabinet["integration"],
            kind=ListKind.SUPPLIERS,
            status=SyncStatus.FAILED,
            last_loaded_at=utcnow() - timedelta(days=3),
            last_attempt_at=utcnow() - timedelta(hours=1),
            last_error="Compta Démo ne répond pas (503).",
        )
        db.session.add(sync)
        record_event(
            dossier_id=cabinet["dossier"],
            integration_id=cabinet["integration"],
            kind="lists.refresh_failed",
            outcome="failed",
            message="Échec",
            details={"list": "suppliers"},
        ).created_at = utcnow() - timedelta(hours=2)
        db.session.commit()
    assert _sweep(mail_app) == 0  # failing for two hours only

    with mail_app.app_context():
        event = db.session.scalars(select(notifications.Event)).one()
        event.created_at = utcnow() - timedelta(hours=30)
        db.session.commit()
    assert _sweep(mail_app) == 2
    assert _sweep(mail_app) == 0
    run_worker_burst(mail_app)

    (claire,) = _by_recipient(smtp_server.wait_for(2) and smtp_server)["claire@lefevre.test"]
    assert plain(claire.subject) == "Boulangerie Martin : la liste « Fournisseurs » ne se charge plus"
    assert "Dernière erreur : Compta Démo ne répond pas (503)." in plain(claire.text)
    assert f"{BASE}/dossiers/{cabinet['dossier']}/listes/suppliers" in claire.text


def _failed_document(dossier_id: int, integration_id: int, number: str) -> None:
    db.session.add(
        Document(
            dossier_id=dossier_id,
            integration_id=integration_id,
            direction=Direction.PURCHASE,
            party_name="EDF Entreprises",
            number=number,
            issue_date=date(2026, 11, 2),
            amount_ht=Decimal("100.00"),
            amount_tva=Decimal("20.00"),
            amount_ttc=Decimal("120.00"),
            status=DocumentStatus.FAILED,
            failure_reason="Le compte 606100 est archivé dans Compta Démo.",
        )
    )
    db.session.commit()


def test_failed_invoices_come_in_one_mail_listing_them_and_switched_off_nobody_is_told(
    mail_app, smtp_server, cabinet
):
    with mail_app.app_context():
        for number in ("F-2026-118", "F-2026-119", "F-2026-120"):
            _failed_document(cabinet["dossier"], cabinet["integration"], number)
        john = db.session.scalar(select(User).where(User.email == "john@lefevre.test"))
        notifications.save_preferences(
            john, {kind: kind != "documents_failed" for kind in notifications.KINDS}, False
        )
    assert _sweep(mail_app) == 1  # Claire only: John switched these off
    run_worker_burst(mail_app)
    (first,) = smtp_server.wait_for(1)
    assert first.header("To") == "claire@lefevre.test"
    assert plain(first.subject) == "Boulangerie Martin : 3 factures en échec"
    for number in ("F-2026-118", "F-2026-119", "F-2026-120"):
        assert number in first.text and number in first.html
    assert "120,00 €" in plain(first.text)
    assert "Le compte 606100 est archivé dans Compta Démo." in first.text
    assert f"{BASE}/dossiers/{cabinet['dossier']}/documents?statut=echec" in first.text

    # A second sweep tells nothing; a new failure is told alone.
    assert _sweep(mail_app) == 0
    with mail_app.app_context():
        _failed_document(cabinet["dossier"], cabinet["integration"], "F-2026-121")
    assert _sweep(mail_app) == 1
    run_worker_burst(mail_app)
    second = smtp_server.wait_for(2)[1]
    assert plain(second.subject) == "Boulangerie Martin : 1 facture en échec"
    assert "F-2026-121" in second.text and "F-2026-118" not in second.text
    assert all(message.header("To") == "claire@lefevre.test" for message in smtp_server.messages)


def test_the_daily_digest_lists_the_days_events_in_one_mail(mail_app, smtp_server, cabinet):
    from webapp.services.integrations import mark_expired

    with mail_app.app_context():
        claire = db.session.scalar(select(User).where(User.email == "claire@lefevre.test"))
        notifications.save_preferences(claire, dict.fromkeys(notifications.KINDS, True), True)
        _failed_document(cabinet["dossier"], cabinet["integration"], "F-2026-118")
        mark_expired(cabinet["integration"], "invalid_grant")
        # Before the hook's job runs, the sweep tells the expiry: each person, of each event, once.
        assert notifications.sweep() == 4
    run_worker_burst(mail_app)  # the hook's job finds everyone told
    smtp_server.wait_for(2)
    assert {m.header("To") for m in smtp_server.messages} == {"john@lefevre.test"}

    with mail_app.app_context():
        assert notifications.send_digests() == 1
        assert notifications.send_digests() == 0
    run_worker_burst(mail_app)
    messages = smtp_server.wait_for(3)
    (digest,) = [m for m in messages if m.header("To") == "claire@lefevre.test"]
    assert plain(digest.subject) == "Raccord : résumé quotidien, 2 événements"
    text = plain(digest.text)
    assert "« Boulangerie Martin » : l'intégration avec Compta Démo a expiré." in text
    assert "« Boulangerie Martin » : la facture F-2026-118 (EDF Entreprises) n'a pas pu être publiée." in text
    assert f"{BASE}/dossiers/{cabinet['dossier']}/integrations/{cabinet['integration']}" in digest.html
    assert f"{BASE}/profil#notifications" in digest.text
    with mail_app.app_context():
        mail = db.session.scalars(select(OutgoingMail).where(OutgoingMail.kind == "digest")).one()
        assert mail.dossier_id is None and mail.to_address == "claire@lefevre.test"


def test_the_profile_page_saves_each_choice_with_csrf(mail_app, cabinet):
    client = mail_app.test_client()
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    page = text_of(client.get("/profil"))
    assert "Notifications par e-mail" in page
    assert page.count('type="checkbox"') == 5 and page.count("checked") == 4  # all on, no digest

    refused = client.post("/profil/notifications", data={"consent_ending": "y", "digest": "y"})
    assert refused.status_code == 400
    token = csrf_token(client, "/profil")
    response = client.post(
        "/profil/notifications",
        data={"csrf_token": token, "consent_ending": "y", "digest": "y"},
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "Vos préférences de notification sont enregistrées." in text_of(response)
    with mail_app.app_context():
        claire = db.session.scalar(select(User).where(User.email == "claire@lefevre.test"))
        assert claire.notification_digest is True
        assert claire.notification_prefs == {
            "integration_expired": False,
            "consent_ending": True,
            "list_failing": False,
            "documents_failed": False,
        }
        assert notifications.wants(claire, "consent_ending")
        assert not notifications.wants(claire, "list_failing")
    assert text_of(client.get("/profil")).count("checked") == 2


def test_an_integration_not_expired_any_more_is_not_told(mail_app, cabinet):
    with mail_app.app_context():
        integration = db.session.get(Integration, cabinet["integration"])
        assert integration.status is IntegrationStatus.CONNECTED
        assert notifications.notify_integration_expired(integration.id) == 0
        assert db.session.scalar(select(func.count()).select_from(OutgoingMail)) == 0


def test_the_scheduler_sweeps_every_hour_and_sends_the_digest_each_morning(mail_app):
    from webapp.scheduler import build_scheduler

    with mail_app.app_context():
        scheduler = build_scheduler(mail_app)
    jobs = {job.func_name: job for job in scheduler.get_jobs()}
    assert jobs["jobs.notifications.sweep"].interval == 3600
    assert jobs["jobs.notifications.send_digests"].cron == "0 7 * * *"
    assert jobs["jobs.mail.resend_mail"].interval == 900
