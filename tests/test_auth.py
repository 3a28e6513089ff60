"""Login and logout: French messages, delay on failure, rate limit, no open redirect, fresh session."""

from __future__ import annotations

import pytest

from tests.conftest import csrf_token, login, unescaped
from tests.factories import make_dossier, make_organisation, make_user
from webapp.extensions import db
from webapp.models import User


@pytest.fixture
def member(app_ctx):
    org = make_organisation("Cabinet Lefèvre")
    make_dossier(org, "Boulangerie Martin")
    return make_user(org, "claire@lefevre.test", "bon-mot-de-passe")


def test_login_page_is_in_french(client):
    page = client.get("/login").get_data(as_text=True)
    assert '<html lang="fr">' in page
    assert "Connexion à Raccord" in page
    assert "Adresse e-mail" in page and "Mot de passe" in page


def test_pages_need_a_login(client):
    response = client.get("/dossiers")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/dossiers")


def test_htmx_requests_without_session_are_sent_to_the_login_page(client):
    response = client.get("/dossiers", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login")


def test_it_logs_in_and_shows_my_dossiers(client, member):
    response = login(client, "Claire@Lefevre.test ", "bon-mot-de-passe")
    assert response.status_code == 302
    assert response.headers["Location"] == "/dossiers"
    page = client.get("/dossiers").get_data(as_text=True)
    assert "Mes dossiers" in page
    assert "Boulangerie Martin" in page
    assert db.session.get(User, member.id).last_login_at is not None


def test_wrong_password_gets_a_french_message_and_a_pause(client, member, app, monkeypatch):
    pauses: list[float] = []
    monkeypatch.setattr("webapp.auth.routes.time.sleep", pauses.append)
    app.config["LOGIN_FAILURE_DELAY"] = 0.7
    response = login(client, "claire@lefevre.test", "mauvais")
    assert response.status_code == 200
    assert "Adresse e-mail ou mot de passe incorrect." in response.get_data(as_text=True)
    assert pauses == [0.7]
    assert client.get("/dossiers").status_code == 302  # still not logged in


def test_unknown_email_gets_the_same_message(client, member):
    response = login(client, "personne@nulle-part.test", "bon-mot-de-passe")
    assert "Adresse e-mail ou mot de passe incorrect." in response.get_data(as_text=True)


def test_empty_fields_are_explained(client, member):
    response = client.post("/login", data={"email": "", "password": "", "csrf_token": csrf_token(client)})
    page = response.get_data(as_text=True)
    assert "Saisissez votre adresse e-mail." in page
    assert "Saisissez votre mot de passe." in page


def test_repeated_failures_are_rate_limited_even_with_the_right_password(client, member):
    for _ in range(5):
        assert login(client, "claire@lefevre.test", "mauvais").status_code == 200
    refused = login(client, "claire@lefevre.test", "bon-mot-de-passe")
    assert refused.status_code == 429
    assert "Trop de tentatives de connexion échouées" in refused.get_data(as_text=True)
    assert client.get("/dossiers").status_code == 302


def test_successful_logins_do_not_count_towards_the_limit(client, member):
    for _ in range(7):
        assert login(client, "claire@lefevre.test", "bon-mot-de-passe").status_code == 302
        client.post("/logout", data={"csrf_token": csrf_token(client, "/dossiers")})


@pytest.mark.parametrize(
    "target",
    ["https://evil.test/", "//evil.test/x", "/\\evil.test", "javascript:alert(1)", "http:/evil.test"],
)
def test_next_never_leaves_the_site(client, member, target):
    response = login(client, "claire@lefevre.test", "bon-mot-de-passe", next_url=target)
    assert response.headers["Location"] == "/dossiers"


def test_next_brings_back_to_the_page_asked_for(client, member):
    response = login(client, "claire@lefevre.test", "bon-mot-de-passe", next_url="/dossiers?q=boul")
    assert response.headers["Location"] == "/dossiers?q=boul"


def test_login_starts_a_fresh_session(client, member):
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session.get("_user_id") == str(member.id)


def test_logout_needs_post_with_csrf(client, member):
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    assert client.get("/logout").status_code == 405
    refused = client.post("/logout")
    assert refused.status_code == 400
    assert client.get("/dossiers").status_code == 200
    response = client.post(
        "/logout", data={"csrf_token": csrf_token(client, "/dossiers")}, follow_redirects=True
    )
    assert "Vous êtes déconnecté de Raccord." in response.get_data(as_text=True)
    assert client.get("/dossiers").status_code == 302


def test_inactive_account_cannot_log_in(client, member):
    member.is_active_account = False
    db.session.commit()
    response = login(client, "claire@lefevre.test", "bon-mot-de-passe")
    assert "Adresse e-mail ou mot de passe incorrect." in response.get_data(as_text=True)


def _from(app, address: str):
    browser = app.test_client()
    browser.environ_base["REMOTE_ADDR"] = address
    return browser


def test_failures_from_elsewhere_stop_the_guesser_not_the_user(app, member):
    attacker = _from(app, "203.0.113.9")
    for _ in range(5):
        assert login(attacker, "claire@lefevre.test", "mauvais").status_code == 200
    assert login(attacker, "claire@lefevre.test", "bon-mot-de-passe").status_code == 429
    claire = _from(app, "198.51.100.7")  # her office, never seen before
    assert login(claire, "claire@lefevre.test", "bon-mot-de-passe").status_code == 302


def test_a_guess_spread_over_many_addresses_meets_the_account_ceiling_but_not_the_users_browser(app, member):
    claire = _from(app, "198.51.100.7")
    assert login(claire, "claire@lefevre.test", "bon-mot-de-passe").status_code == 302  # her browser
    claire.post("/logout", data={"csrf_token": csrf_token(claire, "/dossiers")})
    for index in range(20):  # one failure from each of 20 addresses: no per-address limit is reached
        attacker = _from(app, f"203.0.113.{index + 1}")
        assert login(attacker, "claire@lefevre.test", f"essai-{index}").status_code == 200
    refused = login(_from(app, "203.0.113.99"), "claire@lefevre.test", "bon-mot-de-passe")
    assert refused.status_code == 429
    assert "Trop de tentatives de connexion échouées" in refused.get_data(as_text=True)
    # Claire's browser has logged in to her account before: the ceiling does not apply to it.
    assert login(claire, "claire@lefevre.test", "bon-mot-de-passe").status_code == 302
    # Nor does it to another account of the office.
    assert login(_from(app, "203.0.113.99"), "personne@nulle-part.test", "x").status_code == 200


def test_the_known_browser_cookie_is_signed_and_names_no_address(app, member):
    claire = _from(app, "198.51.100.7")
    response = login(claire, "claire@lefevre.test", "bon-mot-de-passe")
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("raccord_appareil="))
    assert "claire" not in cookie and "lefevre" not in cookie
    assert "Path=/login" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    forged = _from(app, "203.0.113.50")
    forged.set_cookie("raccord_appareil", "eyJmYWtlIjp0cnVlfQ.forged", path="/login")
    for index in range(20):
        login(_from(app, f"203.0.113.{index + 1}"), "claire@lefevre.test", "mauvais")
    assert login(forged, "claire@lefevre.test", "bon-mot-de-passe").status_code == 429


def test_guesses_sent_all_at_once_are_counted_all_at_once(app, member):
    """Each attempt takes its place before the password is checked: 20 wrong passwords sent together
    from one address get 5 checked answers and 15 refusals, not 20 checks."""
    import threading

    import requests

    from tests.conftest import LiveServer
    from tests.http_user import token_in

    app.config["LOGIN_FAILURE_DELAY"] = 0.5  # the time between a check and its outcome, widened
    server = LiveServer(app).start()
    try:
        browsers = []
        for _ in range(20):
            http = requests.Session()
            browsers.append((http, token_in(http.get(f"{server.url}/login", timeout=30).text)))
        start, statuses = threading.Barrier(len(browsers)), []

        def guess(http, token):
            start.wait()
            form = {"email": "claire@lefevre.test", "password": "mauvais", "csrf_token": token}
            statuses.append(http.post(f"{server.url}/login", data=form, timeout=60).status_code)
            http.close()

        threads = [threading.Thread(target=guess, args=browser) for browser in browsers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        server.stop()
    assert sorted(statuses) == [200] * 5 + [429] * 15


def test_the_current_password_cannot_be_guessed_from_a_session(client, member):
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    token = csrf_token(client, "/profil")
    for _ in range(5):
        form = {"current_password": "essai", "new_password": "nouveau-mot-de-passe-long", "csrf_token": token}
        form["confirm"] = form["new_password"]
        assert client.post("/profil/mot-de-passe", data=form).status_code == 422
    refused = client.post("/profil/mot-de-passe", data={**form, "current_password": "bon-mot-de-passe"})
    assert refused.status_code == 429
    assert "Trop d'essais du mot de passe actuel." in unescaped(refused.get_data(as_text=True))
    db.session.expire_all()
    assert db.session.get(User, member.id).check_password("bon-mot-de-passe")


def test_a_password_change_retires_the_browsers_known_to_the_account(app, member):
    claire = _from(app, "198.51.100.7")
    assert login(claire, "claire@lefevre.test", "bon-mot-de-passe").status_code == 302
    claire.post("/logout", data={"csrf_token": csrf_token(claire, "/dossiers")})
    user = db.session.get(User, member.id)
    user.set_password("un-autre-mot-de-passe")  # changed elsewhere (on another browser, by an admin)
    db.session.commit()
    for index in range(20):
        login(_from(app, f"203.0.113.{index + 1}"), "claire@lefevre.test", f"essai-{index}")
    refused = login(claire, "claire@lefevre.test", "un-autre-mot-de-passe")
    assert refused.status_code == 429  # the cookie was earned with the old password
    assert "Ce compte est protégé pendant une heure au plus" in refused.get_data(as_text=True)
