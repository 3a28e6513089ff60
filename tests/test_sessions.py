"""Sessions that end: logout, password change, deactivation, idle and absolute limits, all checked on
the server whatever cookie is presented; a new session id at login and around 'Voir comme'."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from tests.conftest import csrf_token, login, text_of
from tests.factories import make_dossier, make_organisation, make_user
from webapp.extensions import db
from webapp.models import Dossier, Role, UserSession
from webapp.models.base import utcnow

COOKIE = "raccord_session"
CLAIRE = ("claire@lefevre.test", "bon-mot-de-passe")


@pytest.fixture
def claire(app_ctx):
    org = make_organisation("Cabinet Lefèvre")
    dossier = make_dossier(org, "Boulangerie Martin")
    user = make_user(org, *CLAIRE)
    return user.id, dossier.id


def cookie_of(client) -> str:
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None, "no session cookie"
    return cookie.value


def replay(app, cookie: str, *, agent: str = "Mozilla/5.0 (Windows NT 10.0) Firefox/133.0"):
    """Another browser, elsewhere, presenting a saved cookie."""
    other = app.test_client()
    other.set_cookie(COOKIE, cookie)
    other.environ_base.update({"HTTP_USER_AGENT": agent, "REMOTE_ADDR": "203.0.113.9"})
    return other


def signed_in(client) -> bool:
    return client.get("/dossiers").status_code == 200


def test_a_cookie_saved_before_logout_no_longer_reads_nor_writes(app, client, claire):
    _, dossier_id = claire
    login(client, *CLAIRE)
    token = csrf_token(client, "/dossiers")
    saved = cookie_of(client)  # with the CSRF secret in it: a write would pass the CSRF check
    assert signed_in(replay(app, saved))  # the same cookie works elsewhere while the session is open

    client.post("/logout", data={"csrf_token": token})
    thief = replay(app, saved)
    response = thief.get("/dossiers")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert "Votre session a été fermée. Connectez-vous à nouveau." in text_of(thief.get("/login"))
    write = replay(app, saved).post(
        f"/dossiers/{dossier_id}/parametres", data={"name": "Piraté", "csrf_token": token}
    )
    assert write.status_code == 302 and write.headers["Location"].startswith("/login")
    assert db.session.get(Dossier, dossier_id).name == "Boulangerie Martin"
    assert db.session.scalar(select(func.count()).where(UserSession.ended_at.is_(None))) == 0


def test_only_a_hash_of_the_session_id_is_stored(app, client, claire):
    login(client, *CLAIRE)
    with client.session_transaction() as session:
        sid = session["sid"]
    rows = db.session.scalars(select(UserSession)).all()
    assert len(rows) == 1 and rows[0].token_hash == hashlib.sha256(sid.encode()).hexdigest()
    assert sid not in rows[0].token_hash


def test_login_gives_a_new_session_id_every_time(app, client, claire):
    login(client, *CLAIRE)
    with client.session_transaction() as session:
        first = session["sid"]
    client.post("/logout", data={"csrf_token": csrf_token(client, "/dossiers")})
    login(client, *CLAIRE)
    with client.session_transaction() as session:
        assert session["sid"] != first


def test_idle_for_too_long_then_signed_out_with_the_reason(app, client, claire):
    login(client, *CLAIRE)
    assert signed_in(client)
    db.session.execute(update(UserSession).values(last_seen_at=utcnow() - timedelta(minutes=61)))
    db.session.commit()
    response = client.get("/dossiers", follow_redirects=True)
    assert "Votre session a pris fin après 60 minutes sans activité." in text_of(response)
    assert db.session.scalar(select(UserSession.end_reason)) == "idle"
    assert not signed_in(client)


def test_activity_keeps_a_session_open_but_not_beyond_its_lifetime(app, client, claire):
    login(client, *CLAIRE)
    db.session.execute(update(UserSession).values(last_seen_at=utcnow() - timedelta(minutes=59)))
    db.session.commit()
    assert signed_in(client)  # active 59 minutes ago: still open, and seen now
    seen = db.session.scalar(select(UserSession.last_seen_at))
    assert utcnow() - seen < timedelta(seconds=30)

    db.session.execute(update(UserSession).values(signed_in_at=utcnow() - timedelta(hours=12, minutes=1)))
    db.session.commit()
    response = client.get("/dossiers", follow_redirects=True)
    assert "Votre session a atteint sa durée maximale." in text_of(response)
    assert db.session.scalar(select(UserSession.end_reason)) == "lifetime"


def test_the_profile_lists_open_sessions_and_closes_the_others(app, client, claire):
    laptop = app.test_client()
    laptop.environ_base.update(
        {
            "HTTP_USER_AGENT": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            "REMOTE_ADDR": "198.51.100.7",
        }
    )
    login(laptop, *CLAIRE)
    client.environ_base["HTTP_USER_AGENT"] = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
    )
    login(client, *CLAIRE)
    page = text_of(client.get("/profil"))
    assert "Sessions ouvertes" in page
    assert "Mobile Safari 17 sur iOS" in page and "Cette session" in page
    assert "Chrome 131 sur Windows" in page and "198.51.100.7" in page

    done = client.post(
        "/profil/sessions/fermer-les-autres",
        data={"csrf_token": csrf_token(client, "/profil")},
        follow_redirects=True,
    )
    assert "1 autre session a été fermée." in text_of(done)
    assert not signed_in(laptop) and signed_in(client)
    assert "Chrome 131" not in text_of(client.get("/profil"))
    assert client.post("/profil/sessions/fermer-les-autres").status_code == 400  # CSRF


def test_changing_the_password_needs_the_current_one_and_ends_the_other_sessions(app, client, claire):
    user_id, _ = claire
    other = app.test_client()
    login(other, *CLAIRE)
    login(client, *CLAIRE)
    before = cookie_of(client)

    wrong = client.post(
        "/profil/mot-de-passe",
        data={
            "current_password": "pas-le-bon",
            "new_password": "un-nouveau-mot-de-passe",
            "confirm": "un-nouveau-mot-de-passe",
            "csrf_token": csrf_token(client, "/profil"),
        },
    )
    assert wrong.status_code == 422 and "Le mot de passe actuel n'est pas le bon." in text_of(wrong)
    short = client.post(
        "/profil/mot-de-passe",
        data={
            "current_password": CLAIRE[1],
            "new_password": "court",
            "confirm": "autre",
            "csrf_token": csrf_token(client, "/profil"),
        },
    )
    assert short.status_code == 422
    assert "Le mot de passe doit faire entre 12 et 200 caractères." in text_of(short)
    assert "Les deux mots de passe ne sont pas identiques." in text_of(short)
    assert signed_in(other)  # nothing changed

    done = client.post(
        "/profil/mot-de-passe",
        data={
            "current_password": CLAIRE[1],
            "new_password": "un-nouveau-mot-de-passe",
            "confirm": "un-nouveau-mot-de-passe",
            "csrf_token": csrf_token(client, "/profil"),
        },
        follow_redirects=True,
    )
    assert "Votre mot de passe a été changé. 1 autre session a été fermée." in text_of(done)
    assert signed_in(client)  # this browser stays signed in, under a new session id
    assert cookie_of(client) != before and not signed_in(replay(app, before))
    response = other.get("/dossiers", follow_redirects=True)
    assert "Le mot de passe de ce compte a changé : connectez-vous à nouveau." in text_of(response)
    fresh = app.test_client()
    assert "incorrect" in text_of(login(fresh, *CLAIRE))
    assert login(fresh, CLAIRE[0], "un-nouveau-mot-de-passe").headers["Location"] == "/dossiers"


def test_a_deactivated_account_loses_every_session(app, client, claire, runner):
    login(client, *CLAIRE)
    second = app.test_client()
    login(second, *CLAIRE)
    result = runner.invoke(args=["deactivate-user", CLAIRE[0]])
    assert "Le compte claire@lefevre.test est désactivé ; sessions fermées : 2." in result.output
    assert not signed_in(client) and not signed_in(second)
    assert "incorrect" in text_of(login(app.test_client(), *CLAIRE))


def test_entering_and_leaving_voir_comme_changes_the_session_id(app, client, claire):
    user_id, dossier_id = claire
    make_user(make_organisation("Équipe Raccord"), "support@raccord.example", "support-secret", Role.STAFF)
    login(client, "support@raccord.example", "support-secret")
    before = cookie_of(client)
    page = f"/support/dossiers/{dossier_id}"
    entered = client.post(
        f"{page}/voir-comme", data={"user_id": user_id, "csrf_token": csrf_token(client, page)}
    )
    assert entered.status_code == 302
    inside = cookie_of(client)
    assert inside != before and not signed_in(replay(app, before))
    client.post("/support/quitter-la-vue", data={"csrf_token": csrf_token(client, "/support")})
    after = cookie_of(client)
    assert after != inside and not signed_in(replay(app, inside))
    assert signed_in(client)
    reasons = db.session.scalars(select(UserSession.end_reason).order_by(UserSession.id)).all()
    assert reasons == ["rotated", "rotated", None]
