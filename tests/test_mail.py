"""E-mail: the outbox, sent by real RQ workers to a real SMTP server (aiosmtpd), never lost."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import login, run_worker_burst, text_of
from tests.factories import make_dossier, make_organisation, make_user
from webapp.extensions import db
from webapp.models import MailStatus, OutgoingMail, Role
from webapp.models.base import utcnow
from webapp.services.jobs import get_queue
from webapp.services.mail import deliver, queue_mail, resend_pending

BASE = "https://raccord.cabinet.test"


def _expired_mail(user, dossier, **overrides) -> OutgoingMail:
    return queue_mail(
        "integration_expired",
        user,
        template="integration_expired",
        context={
            "dossier_id": dossier.id,
            "integration_id": 7,
            "dossier_name": dossier.name,
            "software_name": "Compta Démo",
            "reason": "Le logiciel a refusé le jeton de renouvellement.",
        },
        dossier_id=dossier.id,
        **overrides,
    )


@pytest.fixture
def people(mail_app):
    """A cabinet with a dossier and its bookkeeper (French) and a colleague who reads English."""
    with mail_app.app_context():
        org = make_organisation("Cabinet Lefèvre")
        dossier = make_dossier(org, "Boulangerie Martin")
        claire = make_user(org, "claire@lefevre.test")
        john = make_user(org, "john@lefevre.test")
        john.full_name, john.locale = "John Smith", "en"
        db.session.commit()
        return {"dossier": dossier.id, "claire": claire.id, "john": john.id, "org": org.id}


def _get(model, key):
    return db.session.get(model, key)


def test_a_mail_is_written_with_the_transaction_then_sent_by_a_worker_in_french(
    mail_app, smtp_server, people
):
    from webapp.models import Dossier, User

    with mail_app.app_context():
        row = _expired_mail(_get(User, people["claire"]), _get(Dossier, people["dossier"]))
        db.session.commit()
        mail_id = row.id
        assert get_queue().count == 1
        stored = _get(OutgoingMail, mail_id)
        assert (stored.status, stored.attempts, stored.locale) == (MailStatus.QUEUED, 0, "fr")
        # The link is made when the mail is sent: the row keeps the facts, not the addresses.
        assert "http" not in str(stored.context)
    assert smtp_server.messages == []

    run_worker_burst(mail_app)

    (received,) = smtp_server.wait_for(1)
    assert received.header("From") == "Raccord <raccord@localhost>"
    assert received.header("To") == "claire@lefevre.test"
    assert received.envelope_to == ["claire@lefevre.test"]
    assert received.subject.replace("\u00a0", " ") == "Boulangerie Martin : l'intégration a expiré"
    assert received.header("Message-ID") == f"<raccord-mail-{mail_id}@localhost>"
    text, html = received.text.replace("\u00a0", " "), received.html.replace("\u00a0", " ")
    for part in (text, html):
        assert "Bonjour Claire Comptable," in part
        assert "L'intégration du dossier « Boulangerie Martin » avec Compta Démo a expiré" in part
        assert "Le logiciel a refusé le jeton de renouvellement." in part
        assert f"{BASE}/dossiers/{people['dossier']}/integrations/7" in part
        assert f"{BASE}/profil#notifications" in part
    assert '<html lang="fr">' in html and ">Se reconnecter</a>" in html
    assert "<p>" not in text
    with mail_app.app_context():
        sent = _get(OutgoingMail, mail_id)
        assert (sent.status, sent.attempts, sent.last_error) == (MailStatus.SENT, 1, "")
        assert sent.sent_at is not None


def test_a_mail_of_a_transaction_rolled_back_is_neither_kept_nor_queued(mail_app, people):
    from webapp.models import Dossier, User

    with mail_app.app_context():
        _expired_mail(_get(User, people["claire"]), _get(Dossier, people["dossier"]))
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(OutgoingMail)) == 0
        assert get_queue().count == 0


def test_an_smtp_outage_keeps_the_mail_until_the_server_is_back_and_support_sees_it(
    mail_app, smtp_server, people
):
    from webapp.models import Dossier, User

    smtp_server.stop()
    mail_app.config["MAIL_RETRY_DELAYS"] = [3600]  # RQ would try again in an hour
    with mail_app.app_context():
        mail_id = _expired_mail(_get(User, people["claire"]), _get(Dossier, people["dossier"])).id
        db.session.commit()
    run_worker_burst(mail_app)
    with mail_app.app_context():
        row = _get(OutgoingMail, mail_id)
        assert (row.status, row.attempts) == (MailStatus.QUEUED, 1)
        assert f"Serveur SMTP 127.0.0.1:{smtp_server.port} injoignable" in row.last_error.replace(
            "\u00a0", " "
        )

    # Still down: the periodic pass queues it again; RQ's last try marks it failed.
    mail_app.config["MAIL_RETRY_DELAYS"] = [0]
    with mail_app.app_context():
        assert resend_pending(now=utcnow() + timedelta(hours=2)) == 1
    run_worker_burst(mail_app)
    with mail_app.app_context():
        row = _get(OutgoingMail, mail_id)
        assert (row.status, row.attempts) == (MailStatus.FAILED, 3)
        staff = make_user(
            make_organisation("Équipe Raccord"), "sam@raccord.test", "support-secret", Role.STAFF
        )
        assert staff.is_staff

    client = mail_app.test_client()
    login(client, "sam@raccord.test", "support-secret")
    page = text_of(client.get(f"/support/dossiers/{people['dossier']}"))
    assert "E-mails" in page and "Intégration expirée" in page and "claire@lefevre.test" in page
    assert f"Serveur SMTP 127.0.0.1:{smtp_server.port} injoignable" in page
    queues = text_of(client.get("/support/files"))
    assert '<td class="num" id="emails-en-echec">1</td>' in queues

    # The server is back: the next pass sends it, once.
    smtp_server.start()
    with mail_app.app_context():
        assert resend_pending(now=utcnow() + timedelta(hours=4)) == 1
    run_worker_burst(mail_app)
    (received,) = smtp_server.wait_for(1)
    assert received.header("To") == "claire@lefevre.test"
    with mail_app.app_context():
        row = _get(OutgoingMail, mail_id)
        assert (row.status, row.attempts, row.last_error) == (MailStatus.SENT, 4, "")
        # Sent: the next passes leave it alone.
        assert resend_pending(now=utcnow() + timedelta(hours=6)) == 0
    assert len(smtp_server.messages) == 1


def test_a_recipient_refused_is_failed_with_the_servers_answer(mail_app, smtp_server, people):
    from webapp.models import Dossier, User
    from webapp.services.mail import MailNotSent

    smtp_server.handler.refuse = "550 5.1.1 Mailbox unavailable"
    with mail_app.app_context():
        mail_id = _expired_mail(_get(User, people["claire"]), _get(Dossier, people["dossier"])).id
        db.session.commit()
        with pytest.raises(MailNotSent):
            deliver(mail_id, final=True)
        row = _get(OutgoingMail, mail_id)
        assert row.status is MailStatus.FAILED
        assert "550 5.1.1 Mailbox unavailable" in row.last_error
    assert smtp_server.messages == []


def test_a_user_who_reads_english_gets_the_mail_in_english(mail_app, smtp_server, people):
    from webapp.models import Dossier, User

    with mail_app.app_context():
        mail_id = _expired_mail(_get(User, people["john"]), _get(Dossier, people["dossier"])).id
        db.session.commit()
        assert _get(OutgoingMail, mail_id).locale == "en"
        deliver(mail_id, final=True)
    (received,) = smtp_server.wait_for(1)
    # The catalogue's English for the strings it already holds (the new ones are translated when
    # the catalogues are updated).
    assert '<html lang="en">' in received.html
    assert ">Reconnect</a>" in received.html


def test_secrets_are_never_stored_and_a_missing_template_is_refused(mail_app, people):
    from webapp.models import User

    with mail_app.app_context():
        user = _get(User, people["claire"])
        with pytest.raises(ValueError, match="built at send time"):
            queue_mail("password_reset", user, template="integration_expired", context={"reset_token": "abc"})
        with pytest.raises(ValueError, match="does not exist"):
            queue_mail("x", user, template="nothing_like_this", context={})
        with pytest.raises(ValueError, match="recipient"):
            queue_mail("x", None, template="integration_expired", context={})
        assert db.session.scalar(select(func.count()).select_from(OutgoingMail)) == 0


def test_a_context_builder_adds_send_time_values(mail_app, smtp_server, people):
    from webapp.models import Dossier, User
    from webapp.services import mail as mail_service

    seen = []

    def builder(row):
        seen.append(row.id)
        return {"integration_url": mail_service.public_url("auth.profile", _anchor="jeton-du-moment")}

    saved = mail_service._CONTEXT_BUILDERS["integration_expired"]
    mail_service.register_mail_context("integration_expired", builder)
    try:
        with mail_app.app_context():
            mail_id = _expired_mail(_get(User, people["claire"]), _get(Dossier, people["dossier"])).id
            db.session.commit()
            deliver(mail_id, final=True)
    finally:
        mail_service.register_mail_context("integration_expired", saved)
    (received,) = smtp_server.wait_for(1)
    assert seen == [mail_id]
    assert f"{BASE}/profil#jeton-du-moment" in received.text


def test_locally_each_mail_is_an_eml_file_in_the_instance_folder(app, tmp_path):
    from webapp.models import Dossier, User

    app.config.update(MAIL_BACKEND="file", MAIL_FILE_PATH=str(tmp_path / "mail"))
    with app.app_context():
        org = make_organisation("Cabinet Lefèvre")
        dossier = make_dossier(org, "Boulangerie Martin")
        user = make_user(org, "claire@lefevre.test")
        mail_id = _expired_mail(_get(User, user.id), _get(Dossier, dossier.id)).id
        db.session.commit()
        deliver(mail_id, final=True)
        assert _get(OutgoingMail, mail_id).status is MailStatus.SENT
    (path,) = (tmp_path / "mail").glob("*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["To"] == "claire@lefevre.test"
    assert "Boulangerie Martin" in message["Subject"]
    assert message.get_body(preferencelist=("html",)) is not None
