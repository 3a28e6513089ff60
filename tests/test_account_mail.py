"""« Mot de passe oublié ? » and invitations, through real RQ workers and a real SMTP server: the mail
is read as received and its link followed with the test client."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from tests.conftest import csrf_token, login, run_worker_burst, text_of
from tests.factories import make_dossier, make_organisation, make_user
from webapp.extensions import db
from webapp.models import Invitation, OutgoingMail, Role, User
from webapp.models.base import utcnow

BASE = "https://raccord.cabinet.test"
SAME_ANSWER = "Si un compte existe pour cette adresse, un e-mail vient de lui être envoyé."


@pytest.fixture
def cabinet(mail_app):
    with mail_app.app_context():
        org = make_organisation("Cabinet Lefèvre")
        make_user(org, "claire@lefevre.test", "bon-mot-de-passe", Role.ADMIN)
        gone = make_user(org, "ancien@lefevre.test", "ancien-mot-de-passe")
        gone.is_active_account = False
        dossiers = [make_dossier(org, name, None).id for name in ("Boulangerie Martin", "Garage Éric")]
        db.session.commit()
        return org.id, dossiers


def _link(received, path: str) -> str:
    """The link of the mail to `path`, as a path the test client opens; the same in both parts."""
    (url,) = set(re.findall(re.escape(BASE + path) + r"\?token=[A-Za-z0-9_.\-]+", received.text))
    assert url in received.html.replace("&amp;", "&")
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _ask_reset(client, email: str):
    token = csrf_token(client, "/mot-de-passe-oublie")
    return client.post("/mot-de-passe-oublie", data={"csrf_token": token, "email": email})


def test_password_reset_from_the_mail_to_a_new_password(mail_app, smtp_server, cabinet):
    elsewhere = mail_app.test_client()  # a browser signed in before: its session ends
    login(elsewhere, "claire@lefevre.test", "bon-mot-de-passe")
    client = mail_app.test_client()
    assert 'href="/mot-de-passe-oublie"' in client.get("/login").get_data(as_text=True)
    answer = _ask_reset(client, "Claire@Lefevre.test ")
    assert answer.status_code == 200 and SAME_ANSWER in text_of(answer)

    run_worker_burst(mail_app)
    (received,) = smtp_server.wait_for(1)
    assert received.header("To") == "claire@lefevre.test"
    assert "nouveau mot de passe" in received.subject
    assert "valable 30 minutes" in received.text.replace("\u00a0", " ")
    link = _link(received, "/mot-de-passe/nouveau")
    with mail_app.app_context():
        (row,) = db.session.scalars(select(OutgoingMail)).all()
        assert "token" not in str(row.context) and link.split("=", 1)[1] not in str(row.context)

    page = client.get(link)
    assert page.status_code == 200 and "claire@lefevre.test" in text_of(page)
    form_token = csrf_token(client, link)
    token = link.split("=", 1)[1]
    mismatch = client.post(
        "/mot-de-passe/nouveau",
        data={
            "csrf_token": form_token,
            "token": token,
            "new_password": "un-nouveau-secret",
            "confirm": "autre",
        },
    )
    assert mismatch.status_code == 422 and "ne sont pas identiques" in text_of(mismatch)
    short = client.post(
        "/mot-de-passe/nouveau",
        data={"csrf_token": form_token, "token": token, "new_password": "court", "confirm": "court"},
    )
    assert short.status_code == 422 and "entre 12 et 200 caractères" in text_of(short)
    done = client.post(
        "/mot-de-passe/nouveau",
        data={
            "csrf_token": form_token,
            "token": token,
            "new_password": "un-nouveau-secret",
            "confirm": "un-nouveau-secret",
        },
        follow_redirects=True,
    )
    assert "Votre mot de passe est enregistré. Connectez-vous avec le nouveau." in text_of(done)
    assert elsewhere.get("/dossiers").headers["Location"].startswith("/login")
    assert login(client, "claire@lefevre.test", "bon-mot-de-passe").status_code == 200  # refused
    assert login(client, "claire@lefevre.test", "un-nouveau-secret").headers["Location"] == "/dossiers"
    # The link served once: it is dead now.
    used = mail_app.test_client().get(link)
    assert used.status_code == 410
    assert "Ce lien a déjà servi" in text_of(used) and "Demander un nouveau lien" in text_of(used)


def test_an_unknown_or_deactivated_address_gets_the_same_answer_and_no_mail(mail_app, smtp_server, cabinet):
    client = mail_app.test_client()
    pages = [
        text_of(_ask_reset(client, email)) for email in ("personne@nulle-part.test", "ancien@lefevre.test")
    ]
    known = text_of(_ask_reset(client, "claire@lefevre.test"))
    strip = re.compile(r'name="csrf_token"[^>]*>|"X-CSRFToken": "[^"]+"')
    assert all(SAME_ANSWER in page for page in pages)
    assert strip.sub("", pages[0]) == strip.sub("", pages[1]) == strip.sub("", known)
    run_worker_burst(mail_app)
    (received,) = smtp_server.wait_for(1)
    assert received.envelope_to == ["claire@lefevre.test"]
    with mail_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(OutgoingMail)) == 1


def test_an_expired_or_forged_link_says_so_and_offers_a_new_one(mail_app, cabinet, monkeypatch):
    import itsdangerous.timed

    from webapp.services.passwords import reset_token

    class HalfAnHourAgo:
        @staticmethod
        def time() -> float:
            import time

            return time.time() - 31 * 60

    with mail_app.test_request_context():
        claire = db.session.scalar(select(User).where(User.email == "claire@lefevre.test"))
        monkeypatch.setattr(itsdangerous.timed, "time", HalfAnHourAgo)
        old = reset_token(claire)
        monkeypatch.undo()
        fresh = reset_token(claire)
    client = mail_app.test_client()
    expired = client.get(f"/mot-de-passe/nouveau?token={old}")
    assert expired.status_code == 410 and "Ce lien a expiré" in text_of(expired)
    assert 'href="/mot-de-passe-oublie"' in expired.get_data(as_text=True)
    # Nothing can be set through it either.
    token = csrf_token(client, "/mot-de-passe-oublie")
    refused = client.post(
        "/mot-de-passe/nouveau",
        data={
            "csrf_token": token,
            "token": old,
            "new_password": "un-nouveau-secret",
            "confirm": "un-nouveau-secret",
        },
    )
    assert refused.status_code == 410
    for forged in (fresh[:-2] + "xx", "", "abc", "é" * 2000):
        page = client.get("/mot-de-passe/nouveau", query_string={"token": forged})
        assert page.status_code == 404 and "Ce lien n'est pas valable" in text_of(page)
    with mail_app.app_context():
        assert db.session.scalar(select(User).where(User.email == "claire@lefevre.test")).check_password(
            "bon-mot-de-passe"
        )


def test_asking_for_resets_is_rate_limited_and_needs_csrf(mail_app, cabinet):
    client = mail_app.test_client()
    assert client.post("/mot-de-passe-oublie", data={"email": "claire@lefevre.test"}).status_code == 400
    codes = [_ask_reset(client, "claire@lefevre.test").status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    page = _ask_reset(client, "claire@lefevre.test")
    assert "Trop de demandes en peu de temps" in text_of(page)
    empty = _ask_reset(client, "")
    assert empty.status_code == 422 and "Saisissez votre adresse e-mail." in text_of(empty)


# --- invitations -------------------------------------------------------------------------


def _invite(client, email: str, role: str = "member", acces: str = "all"):
    token = csrf_token(client, "/equipe")
    return client.post(
        "/equipe/invitations",
        data={"csrf_token": token, "email": email, "role": role, "acces": acces},
        follow_redirects=True,
    )


def test_an_invited_member_joins_with_only_the_dossiers_chosen(mail_app, smtp_server, cabinet):
    org_id, (bakery, garage) = cabinet
    admin = mail_app.test_client()
    login(admin, "claire@lefevre.test", "bon-mot-de-passe")
    choose = _invite(admin, "Hugo@Lefevre.test", acces="chosen")
    assert "Invitation envoyée à hugo@lefevre.test." in text_of(choose)
    assert "Dossiers de hugo@lefevre.test" in text_of(choose)
    with mail_app.app_context():
        invitation = db.session.scalar(select(Invitation))
        invitation_id = invitation.id
        assert invitation.dossier_ids == [] and invitation.role is Role.MEMBER
    token = csrf_token(admin, "/equipe")
    admin.post(
        f"/equipe/invitations/{invitation_id}/dossiers",
        data={"csrf_token": token, "shown": [bakery, garage], "dossier": [bakery]},
    )
    team = text_of(admin.get("/equipe"))
    assert "Invitations en attente" in team and "hugo@lefevre.test" in team and "1 dossier" in team

    run_worker_burst(mail_app)
    (received,) = smtp_server.wait_for(1)
    assert received.envelope_to == ["hugo@lefevre.test"]
    assert "Cabinet Lefèvre" in received.subject and "Claire Comptable" in received.text
    link = _link(received, "/invitation")

    invitee = mail_app.test_client()
    page = text_of(invitee.get(link))
    assert "Rejoindre « Cabinet Lefèvre »" in page and "hugo@lefevre.test" in page
    form_token = csrf_token(invitee, link)
    token = link.split("=", 1)[1]
    no_name = invitee.post(
        "/invitation",
        data={
            "csrf_token": form_token,
            "token": token,
            "new_password": "mot-de-passe-hugo",
            "confirm": "mot-de-passe-hugo",
        },
    )
    assert no_name.status_code == 422 and "Saisissez votre nom." in text_of(no_name)
    joined = invitee.post(
        "/invitation",
        data={
            "csrf_token": form_token,
            "token": token,
            "full_name": "Hugo Stagiaire",
            "new_password": "mot-de-passe-hugo",
            "confirm": "mot-de-passe-hugo",
        },
    )
    assert joined.headers["Location"] == "/dossiers"
    mine = text_of(invitee.get("/dossiers"))
    assert "Bienvenue dans « Cabinet Lefèvre » !" in mine
    assert "Boulangerie Martin" in mine and "Garage Éric" not in mine
    assert invitee.get(f"/dossiers/{garage}").status_code == 404
    with mail_app.app_context():
        hugo = db.session.scalar(select(User).where(User.email == "hugo@lefevre.test"))
        assert hugo.organisation_id == org_id and hugo.role is Role.MEMBER and hugo.is_restricted
        assert hugo.last_login_at is not None  # signed in by accepting: « Équipe » does not say « Jamais »
        assert db.session.get(Invitation, invitation_id).accepted_at is not None
    # He can log in again later; the link served once.
    again = mail_app.test_client()
    assert login(again, "hugo@lefevre.test", "mot-de-passe-hugo").headers["Location"] == "/dossiers"
    used = again.get(link)
    assert used.status_code == 410 and "Cette invitation a déjà servi" in text_of(used)
    assert "Invitations en attente" not in text_of(admin.get("/equipe"))


def test_a_revoked_resent_or_expired_invitation_link_is_refused(mail_app, smtp_server, cabinet):
    admin = mail_app.test_client()
    login(admin, "claire@lefevre.test", "bon-mot-de-passe")
    _invite(admin, "lea@lefevre.test", role="admin")
    _invite(admin, "paul@lefevre.test")
    with mail_app.app_context():
        lea, paul = (
            db.session.scalar(select(Invitation.id).where(Invitation.email == e))
            for e in ("lea@lefevre.test", "paul@lefevre.test")
        )
    run_worker_burst(mail_app)
    first = {m.envelope_to[0]: m for m in smtp_server.wait_for(2)}
    lea_link, paul_link = (
        _link(first["lea@lefevre.test"], "/invitation"),
        _link(first["paul@lefevre.test"], "/invitation"),
    )
    token = csrf_token(admin, "/equipe")
    # « Renvoyer »: a new mail, and the first link no longer works.
    resent = admin.post(
        f"/equipe/invitations/{lea}/renvoyer", data={"csrf_token": token}, follow_redirects=True
    )
    assert "Invitation renvoyée à lea@lefevre.test" in text_of(resent)
    run_worker_burst(mail_app)
    newest = smtp_server.wait_for(3)[-1]
    assert newest.envelope_to == ["lea@lefevre.test"]
    assert mail_app.test_client().get(lea_link).status_code == 404
    assert "Vous en serez administrateur" in text_of(mail_app.test_client().get(_link(newest, "/invitation")))
    # « Annuler »
    revoked = admin.post(
        f"/equipe/invitations/{paul}/annuler", data={"csrf_token": token}, follow_redirects=True
    )
    assert "L'invitation de paul@lefevre.test est annulée" in text_of(revoked)
    page = mail_app.test_client().get(paul_link)
    assert page.status_code == 410 and "Cette invitation a été annulée" in text_of(page)
    # Expired
    with mail_app.app_context():
        db.session.get(Invitation, lea).expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    expired = mail_app.test_client().get(_link(newest, "/invitation"))
    assert expired.status_code == 410 and "Cette invitation a expiré" in text_of(expired)
    with mail_app.app_context():
        assert not db.session.scalar(
            select(User).where(User.email.in_(["lea@lefevre.test", "paul@lefevre.test"]))
        )


def test_an_address_with_an_account_is_refused_and_only_admins_invite(mail_app, cabinet):
    admin = mail_app.test_client()
    login(admin, "claire@lefevre.test", "bon-mot-de-passe")
    with mail_app.app_context():
        make_user(make_organisation("Cabinet Girard"), "paul@girard.test", "autre-mot-de-passe")
    for email, message in [
        ("paul@girard.test", "Cette adresse a déjà un compte Raccord."),
        ("CLAIRE@lefevre.test", "Cette adresse a déjà un compte Raccord."),
        ("pas-une-adresse", "Saisissez une adresse e-mail valide."),
        ("", "Saisissez une adresse e-mail valide."),
        # What a mail server would refuse is refused here, in French, never a 500.
        ("zoe+<script>@example.com", "Saisissez une adresse e-mail valide."),
        ('"<b>x</b>"@example.com', "Saisissez une adresse e-mail valide."),
        ("zoé@exämple.fr", "Saisissez une adresse e-mail valide."),
        ("paul@localhost", "Saisissez une adresse e-mail valide."),
    ]:
        response = _invite(admin, email)
        assert response.status_code < 500 and message in text_of(response), email
    assert "Choisissez le rôle" in text_of(_invite(admin, "nouveau@lefevre.test", role="staff"))
    _invite(admin, "nouveau@lefevre.test")
    assert "Une invitation attend déjà cette adresse" in text_of(_invite(admin, "nouveau@lefevre.test"))
    with mail_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Invitation)) == 1
        assert db.session.scalar(select(func.count()).select_from(OutgoingMail)) == 1
        invitation_id = db.session.scalar(select(Invitation.id))
    # Without CSRF, nothing.
    assert (
        admin.post("/equipe/invitations", data={"email": "sans@csrf.test", "role": "member"}).status_code
        == 400
    )
    # A member, or another cabinet's admin, cannot invite nor touch the invitation.
    member = mail_app.test_client()
    with mail_app.app_context():
        claire = db.session.scalar(select(User).where(User.email == "claire@lefevre.test"))
        make_user(claire.organisation, "membre@lefevre.test", "mot-de-passe-membre")
        make_user(make_organisation("Cabinet Blanc"), "admin@blanc.test", "mot-de-passe-blanc", Role.ADMIN)
    login(member, "membre@lefevre.test", "mot-de-passe-membre")
    assert _invite_status(member, "/equipe/invitations", {"email": "z@z.test", "role": "admin"}) == 403
    other = mail_app.test_client()
    login(other, "admin@blanc.test", "mot-de-passe-blanc")
    for action in ("renvoyer", "annuler", "dossiers"):
        assert _invite_status(other, f"/equipe/invitations/{invitation_id}/{action}", {}) == 404
    assert other.get(f"/equipe/invitations/{invitation_id}/dossiers").status_code == 404
    # The invitation, once an account exists for its address, is refused clearly.
    with mail_app.app_context():
        invitation = db.session.get(Invitation, invitation_id)
        from webapp.services.invitations import invitation_token

        link = f"/invitation?token={invitation_token(invitation)}"
        make_user(make_organisation("Cabinet Rival"), "nouveau@lefevre.test")
    page = mail_app.test_client().get(link)
    assert page.status_code == 409 and "Cette adresse a déjà un compte Raccord." in text_of(page)
    with mail_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Invitation)) == 1
        assert db.session.scalar(select(func.count()).select_from(OutgoingMail)) == 1


def _invite_status(client, path: str, data: dict) -> int:
    token = csrf_token(client, "/dossiers")
    return client.post(path, data={"csrf_token": token, **data}).status_code
