"""'Compta Démo' keeps tenants apart: each company is one organisation's, its consent page offers only
those of the signed-in user's organisation, and its controls are for Raccord's staff (or the
configured token) only. The package itself imports nothing of Raccord but the database session."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from sandbox.models import SandboxAuthCode, SandboxCompany, SandboxGrant
from tests.conftest import ROOT, SANDBOX_CONTROL_TOKEN, login, text_of, unescaped
from tests.factories import make_dossier, make_integration, make_organisation, make_user
from tests.http_user import COMPANY, Browser, controls_api, token_in
from webapp.extensions import db
from webapp.models import Role
from webapp.sandbox_host import owner_key, seed_sandbox_for

OTHER = ("paul@autre-cabinet.test", "autre-mot-de-passe")


def test_the_sandbox_imports_nothing_of_raccord_but_the_database_session():
    allowed = {"webapp.extensions"}
    for path in (ROOT / "sandbox").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name == "webapp" or name.startswith("webapp."):
                    assert name in allowed, f"{path.relative_to(ROOT)} imports {name}"
                    if isinstance(node, ast.ImportFrom):
                        assert [a.name for a in node.names] == ["db"], f"{path.relative_to(ROOT)}"


@pytest.fixture
def other_cabinet(job_app):
    """A second cabinet, with a dossier and a bookkeeper, and no sandbox company of its own."""
    with job_app.app_context():
        org = make_organisation("Cabinet Autre")
        dossier = make_dossier(org, "Garage du Centre")
        make_user(org, *OTHER)
        return dossier.id


def _consent_page(browser: Browser, dossier_id: int) -> tuple[str, str]:
    start = browser.post_form(
        f"/dossiers/{dossier_id}/connexions/sandbox/connecter",
        {},
        page=f"/dossiers/{dossier_id}/parametres/connexions",
        allow_redirects=False,
    )
    authorize_url = start.headers["Location"]
    return authorize_url, unescaped(browser.get(authorize_url).text)


def test_the_consent_page_offers_only_the_companies_of_my_organisation(job_app, live, bookkeeper, dossier_id):
    _, page = _consent_page(bookkeeper, dossier_id)
    assert "Boulangerie Martin SARL" in page and "Atelier Dupont" in page
    with job_app.app_context():
        db.session.add(
            SandboxCompany(id="cmp-autre", name="Société d'un autre cabinet", owner="raccord-org-999")
        )
        db.session.commit()
    _, page = _consent_page(bookkeeper, dossier_id)
    assert "Société d'un autre cabinet" not in page


def test_another_cabinet_is_offered_none_and_cannot_take_one(job_app, live, dossier_id, other_cabinet):
    stranger = Browser(live.url)
    stranger.login(*OTHER)
    authorize_url, page = _consent_page(stranger, other_cabinet)
    assert "Aucune société de Compta Démo n'appartient à votre cabinet" in page
    assert "Boulangerie Martin SARL" not in page and ">Autoriser</button>" not in page
    # Posting another cabinet's company by its id changes nothing.
    taken = stranger.http.post(
        authorize_url,
        data={"decision": "allow", "company_id": COMPANY, "csrf_token": token_in(page)},
        allow_redirects=False,
        timeout=30,
    )
    assert taken.status_code == 400
    with job_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SandboxAuthCode)) == 0
        assert db.session.scalar(select(func.count()).select_from(SandboxGrant)) == 0


def test_nobody_signed_in_is_offered_no_company(job_app, live, bookkeeper, dossier_id):
    authorize_url, _ = _consent_page(bookkeeper, dossier_id)
    page = unescaped(requests.get(authorize_url, timeout=30).text)  # no Raccord session
    assert "Aucune société de Compta Démo n'appartient à votre cabinet" in page
    assert "Boulangerie Martin SARL" not in page


def test_the_controls_are_for_staff_or_the_configured_token(job_app, live, bookkeeper, dossier_id):
    base = f"{live.url}/sandbox/controls"
    # Anonymous: no page, no state, no faults, no invoices.
    assert requests.get(base, timeout=10).status_code == 404
    for method, path in (("get", "/api/state"), ("get", f"/api/companies/{COMPANY}/invoices")):
        answer = getattr(requests, method)(base + path, timeout=10)
        assert answer.status_code == 401 and "réservé au support" in answer.json()["error"]
    refused = requests.post(f"{base}/api/faults", json={"count": 50, "status": 503}, timeout=10)
    assert refused.status_code == 401
    wrong = requests.get(f"{base}/api/state", headers={"Authorization": "Bearer pas-le-bon"}, timeout=10)
    assert wrong.status_code == 401
    # A bookkeeper signed in to Raccord is not staff: the same.
    assert bookkeeper.get("/sandbox/controls").status_code == 404
    assert bookkeeper.get("/sandbox/controls/api/state").status_code == 401
    # The token: the API answers, and nothing of the refused calls was applied.
    state = controls_api.get(f"{base}/api/state").json()
    assert state["settings"]["faults"]["count"] == 0
    assert SANDBOX_CONTROL_TOKEN not in str(state)
    # Staff signed in to Raccord: the page and the API.
    with job_app.app_context():
        make_user(make_organisation("Équipe Raccord"), "sam@raccord.example", "support-secret", Role.STAFF)
    staff = Browser(live.url)
    staff.login("sam@raccord.example", "support-secret")
    page = staff.get("/sandbox/controls")
    assert page.status_code == 200 and "Contrôles du bac à sable" in unescaped(page.text)
    assert staff.get("/sandbox/controls/api/state").status_code == 200
    # The page's actions need its CSRF token.
    assert (
        staff.http.post(
            f"{base}/action", data={"action": "latency", "latency_ms": "5"}, timeout=10
        ).status_code
        == 400
    )
    done = staff.post_form(
        "/sandbox/controls/action", {"action": "latency", "latency_ms": "5"}, page="/sandbox/controls"
    )
    assert "Latence enregistrée." in unescaped(done.text)


def test_a_reproduction_belongs_to_the_support_team_only(job_app):
    from webapp.services.reproduce import reproduce

    with job_app.app_context():
        cabinet = make_organisation("Cabinet Lefèvre")
        dossier = make_dossier(cabinet, "Boulangerie Martin")
        team = make_organisation("Équipe Raccord")
        staff = make_user(team, "sam@raccord.example", "support-secret", Role.STAFF)
        seed_sandbox_for(cabinet.id)
        make_integration(dossier)
        result = reproduce(dossier.id, staff.id)
        owner = db.session.scalar(
            select(SandboxCompany.owner).where(SandboxCompany.id == result.sandbox_company_id)
        )
        assert owner == owner_key(team.id) != owner_key(cabinet.id)


def test_the_sandbox_pages_send_their_own_security_headers(app, client):
    with app.app_context():
        make_user(make_organisation("Équipe Raccord"), "sam@raccord.example", "support-secret", Role.STAFF)
    login(client, "sam@raccord.example", "support-secret")
    response = client.get("/sandbox/controls")
    assert response.status_code == 200 and "Contrôles du bac à sable" in text_of(response)
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    assert 'href="/sandbox/static/sandbox.css"' in text_of(response)
    with client.get("/sandbox/static/sandbox.css") as stylesheet:
        assert stylesheet.status_code == 200 and stylesheet.mimetype == "text/css"


def test_the_package_lives_beside_raccord():
    assert (ROOT / "sandbox" / "__init__.py").exists() and not (ROOT / "webapp" / "sandbox").exists()
    assert (ROOT / "sandbox" / "migrations" / "versions").is_dir()
    assert Path(ROOT / "sandbox" / "templates" / "consent.html").exists()
