"""Security headers, CSRF on every POST (htmx included), no inline script, no stack trace on a page."""

from __future__ import annotations

import re

import pytest

from tests.conftest import csrf_token, login, unescaped
from tests.factories import make_dossier, make_integration, make_organisation, make_user


@pytest.fixture
def logged_in(client, app_ctx):
    org = make_organisation()
    dossier = make_dossier(org, "Boulangerie Martin")
    integration = make_integration(dossier)
    make_user(org, "claire@lefevre.test", "bon-mot-de-passe")
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    return dossier, integration


def _pages(dossier, integration) -> list[str]:
    return [
        "/login",
        "/dossiers",
        f"/dossiers/{dossier.id}",
        f"/dossiers/{dossier.id}/parametres",
        f"/dossiers/{dossier.id}/parametres/connexions",
        f"/dossiers/{dossier.id}/integrations/{integration.id}",
        f"/dossiers/{dossier.id}/listes/suppliers",
        f"/dossiers/{dossier.id}/regles/fournisseurs",
        f"/dossiers/{dossier.id}/regles/fournisseurs/nouvelle",
        f"/dossiers/{dossier.id}/documents",
        f"/dossiers/{dossier.id}/documents/nouvelle/achat",
        "/page-qui-n-existe-pas",
    ]


def test_every_page_sends_the_security_headers(client, logged_in):
    for path in _pages(*logged_in):
        response = client.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
        assert "frame-ancestors 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert "HX-Request" in response.headers["Vary"], path


def test_pages_have_no_inline_script_or_style(client, logged_in):
    for path in _pages(*logged_in):
        page = client.get(path).get_data(as_text=True)
        for tag in re.findall(r"<script[^>]*>", page):
            assert "src=" in tag, (path, tag)
        assert "<style" not in page and " style=" not in page, path
        assert " onclick=" not in page and "hx-on" not in page, path


def test_private_pages_are_not_cached(client, logged_in):
    dossier, _ = logged_in
    assert client.get(f"/dossiers/{dossier.id}").headers["Cache-Control"] == "no-store"


def test_htmx_script_is_served_from_the_registry_package(client):
    with client.get("/assets/htmx.min.js") as response:
        assert response.status_code == 200
        assert response.mimetype == "text/javascript"
        assert "htmx" in response.get_data(as_text=True)[:200]


def test_post_without_csrf_token_is_refused_in_french_and_changes_nothing(client, logged_in):
    dossier, _ = logged_in
    response = client.post(f"/dossiers/{dossier.id}/parametres", data={"name": "Piraté", "siren": ""})
    assert response.status_code == 400
    assert "La session de sécurité du formulaire a expiré" in response.get_data(as_text=True)
    assert "Boulangerie Martin" in client.get(f"/dossiers/{dossier.id}").get_data(as_text=True)


def test_htmx_post_is_accepted_with_the_token_in_the_header(client, logged_in):
    dossier, _ = logged_in
    token = csrf_token(client, f"/dossiers/{dossier.id}")
    response = client.post(
        f"/dossiers/{dossier.id}/parametres",
        data={"name": "Boulangerie Martin & Fils", "siren": "732829320"},
        headers={"HX-Request": "true", "X-CSRFToken": token},
    )
    assert response.status_code == 302
    assert "Boulangerie Martin &amp; Fils" in client.get(f"/dossiers/{dossier.id}").get_data(as_text=True)


def test_a_forged_token_is_refused(client, logged_in):
    dossier, _ = logged_in
    response = client.post(
        f"/dossiers/{dossier.id}/parametres",
        data={"name": "Piraté", "csrf_token": "forged.token.value"},
    )
    assert response.status_code == 400


def test_every_post_route_is_csrf_protected(app):
    """No view is exempted from CSRF: a new POST route is covered without anyone remembering. The one
    exception is the software's webhooks (no session, no form: the vendor's signature is checked)."""
    from webapp.extensions import csrf

    assert app.config.get("WTF_CSRF_ENABLED", True)
    assert not csrf._exempt_views
    assert {bp.name for bp in csrf._exempt_blueprints} == {"webhooks"}
    assert {rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint.startswith("webhooks.")} == {
        "webhooks.xero",
        "webhooks.quickbooks",
    }


def test_an_unexpected_error_shows_a_french_page_without_trace(app, client):
    @app.get("/boom")
    def boom():
        raise RuntimeError("internal detail that must not leak")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.get("/boom")
    page = unescaped(response.get_data(as_text=True))
    assert response.status_code == 500
    assert "Une erreur inattendue s'est produite." in page
    assert "internal detail" not in page and "Traceback" not in page


def test_session_cookie_is_http_only_and_same_site(client):
    client.get("/login")
    cookie = client.get_cookie("raccord_session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"


def _session_cookies(response) -> list[str]:
    return [c for c in response.headers.getlist("Set-Cookie") if c.startswith("raccord_session=")]


def test_a_response_that_changes_nothing_sends_no_session_cookie(client, logged_in):
    """Pages, fragments and assets load side by side with the user's clicks. Had each re-sent the
    session it read, one that began before 'Connecter' (or 'Fermer la session') and ended after it
    would put the older session back: the connection's state lost, the logout undone."""
    dossier, integration = logged_in
    client.get("/dossiers")  # the login's message is shown (and so the session changes) once
    quiet = [
        "/static/css/app.css",
        "/static/img/favicon.svg",
        "/assets/htmx.min.js",
        f"/dossiers/{dossier.id}",
        f"/dossiers/{dossier.id}/integrations/{integration.id}",
        f"/dossiers/{dossier.id}/integrations/{integration.id}/listes?suivi=1",
    ]
    for path in quiet:
        response = client.get(path, headers={"HX-Request": "true"} if "suivi" in path else {})
        response.close()  # the assets are files
        assert response.status_code == 200, path
        assert not _session_cookies(response), path

    # A change is still sent: the connection's state, then the logout.
    page = f"/dossiers/{dossier.id}/parametres/connexions"
    started = client.post(
        f"/dossiers/{dossier.id}/connexions/sandbox/connecter", data={"csrf_token": csrf_token(client, page)}
    )
    assert started.status_code == 302
    assert _session_cookies(started)
    out = client.post("/logout", data={"csrf_token": csrf_token(client, page)})
    assert _session_cookies(out)
    assert client.get(f"/dossiers/{dossier.id}").status_code == 302  # logged out, and it stays so


def test_the_sqlite_file_is_readable_by_its_owner_only(tmp_path):
    import stat

    from tests.conftest import make_app

    fresh = tmp_path / "instance" / "raccord.db"
    make_app(f"sqlite:///{fresh}")  # creates the tables in it
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
    older = tmp_path / "older.db"
    older.write_bytes(b"")
    older.chmod(0o644)  # as an earlier start left it
    make_app(f"sqlite:///{older}")
    assert stat.S_IMODE(older.stat().st_mode) == 0o600


def test_forms_may_send_the_browser_only_here_and_to_the_softwares_sign_in(client, logged_in):
    for path in _pages(*logged_in):
        csp = client.get(path).headers["Content-Security-Policy"]
        assert csp.endswith("form-action 'self'"), (path, csp)  # no software configured: nothing else


def test_a_configured_software_adds_its_sign_in_pages_to_form_action(tmp_path):
    from tests.conftest import make_app

    app = make_app(
        f"sqlite:///{tmp_path / 'raccord.db'}",
        XERO_CLIENT_ID="xero-id",
        XERO_CLIENT_SECRET="xero-secret",
        SAGE_CLIENT_ID="sage-id",
        SAGE_CLIENT_SECRET="sage-secret",
    )
    csp = app.test_client().get("/login").headers["Content-Security-Policy"]
    form_action = csp.split("form-action ")[1].split(";")[0].split()
    assert form_action == [
        "'self'",
        "https://login.xero.com",
        "https://*.xero.com",
        "https://www.sageone.com",
        "https://*.sageone.com",
        "https://*.sage.com",
    ]
