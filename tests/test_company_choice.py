"""The company the user chose, never another: one consent covering several (Xero's organisations,
Sage's businesses), the company already connected to another dossier of the organisation, and
'Se reconnecter' with a consent that covers more than the dossier's company. Real HTTP, real
consent pages of the sandbox's dialects, real RQ workers."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from sandbox.dialects import tenant_guid
from sandbox.dialects.quickbooks import realm_of
from sandbox.models import SandboxConnection, SandboxItem
from tests.conftest import run_worker_burst, unescaped
from tests.http_user import COMPANY, Browser, token_in
from webapp.extensions import db
from webapp.models import Dossier, Integration, IntegrationStatus, ListItem, ListKind, PendingConsent
from webapp.models.base import utcnow
from webapp.services.integrations import load_tokens

ATELIER = "cmp-atelier-dupont"  # a second company of the same cabinet in the sandbox
ROUSSEAU = "cmp-cabinet-rousseau"
ONLY_AT_ATELIER = "Fournisseur propre à l'Atelier"


def company_id_as(software: str, company: str) -> str:
    """How each software names a sandbox company in Raccord."""
    if software in ("xero", "sage"):
        return tenant_guid(company)
    if software == "quickbooks":
        return realm_of(company)
    if software == "pennylane":
        from sandbox.dialects.pennylane import company_number

        return str(company_number(company))
    return company


def text(response: requests.Response) -> str:
    return unescaped(response.text)


@pytest.fixture
def atelier_supplier(job_app, live) -> None:
    """A supplier that exists only in the Atelier's books, to tell whose lists were read."""
    with job_app.app_context():
        db.session.add(
            SandboxItem(company_id=ATELIER, kind="suppliers", external_id="sup-atelier", name=ONLY_AT_ATELIER)
        )
        db.session.commit()


@pytest.fixture
def second_dossier(job_app, dossier_id) -> int:
    from tests.factories import make_dossier

    with job_app.app_context():
        organisation = db.session.get(Dossier, dossier_id).organisation
        return make_dossier(organisation, "Martin Traiteur").id


def integration_of(job_app, dossier_id: int) -> Integration | None:
    with job_app.app_context():
        integration = db.session.scalar(
            select(Integration).where(
                Integration.dossier_id == dossier_id, Integration.status != IntegrationStatus.DISCONNECTED
            )
        )
        if integration is not None:
            db.session.expunge(integration)
        return integration


def supplier_names(job_app, integration_id: int) -> set[str]:
    with job_app.app_context():
        return set(
            db.session.scalars(
                select(ListItem.name).where(
                    ListItem.integration_id == integration_id, ListItem.kind == ListKind.SUPPLIERS
                )
            )
        )


def choose(browser: Browser, page: requests.Response, company_name: str, **extra: str) -> requests.Response:
    """Tick the company named `company_name` on the choice page and submit."""
    body = text(page)
    start = body.index(company_name)
    value = body[:start].rsplit('value="', 1)[1].split('"', 1)[0]
    return browser.http.post(
        page.url, data={"company_id": value, "csrf_token": token_in(page.text), **extra}, timeout=60
    )


def claims_of(access_token: str) -> dict:
    payload = access_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# --- several companies in one consent -----------------------------------------------------------


@pytest.mark.parametrize(
    ("software", "title"),
    [
        ("xero", "Choisissez l'organisation Xero de ce dossier"),
        ("sage", "Choisissez l'entreprise Sage de ce dossier"),
    ],
)
def test_a_consent_for_several_companies_connects_only_the_one_chosen(
    job_app, live, bookkeeper, dossier_id, atelier_supplier, software, title
):
    page = bookkeeper.connect(dossier_id, software=software, company=[COMPANY, ATELIER])
    assert page.status_code == 200 and "/connexions/choix/" in page.url
    body = text(page)
    assert title in body
    assert "Boulangerie Martin SARL" in body and "Atelier Dupont & Fils SAS" in body
    assert "Vous avez autorisé 2" in body
    assert integration_of(job_app, dossier_id) is None  # nothing connected before the choice

    done = choose(bookkeeper, page, "Atelier Dupont & Fils SAS")
    assert "est connecté à la société « Atelier Dupont & Fils SAS »" in text(done)
    run_worker_burst(job_app)
    integration = integration_of(job_app, dossier_id)
    assert (integration.company_id, integration.company_name) == (
        tenant_guid(ATELIER),
        "Atelier Dupont & Fils SAS",
    )
    with job_app.app_context():
        extra = load_tokens(db.session.get(Integration, integration.id)).extra
        assert extra["tenant_id" if software == "xero" else "business_id"] == tenant_guid(ATELIER)
        assert db.session.scalar(select(PendingConsent.id)) is None  # the waiting consent is gone
    # The lists are the Atelier's: its own supplier is there.
    assert ONLY_AT_ATELIER in supplier_names(job_app, integration.id)


def test_xero_takes_the_organisations_of_this_consent_never_the_newest_connection(
    job_app, live, bookkeeper, dossier_id, second_dossier, issued_tokens, atelier_supplier
):
    # The cabinet's Xero user first connects the Atelier to another dossier…
    bookkeeper.connect(second_dossier, software="xero", company=[ATELIER])
    first = integration_of(job_app, second_dossier)
    assert first.company_id == tenant_guid(ATELIER)
    # … and the Atelier's connection is the newest one (re-consented at the same moment elsewhere).
    with job_app.app_context():
        atelier = db.session.scalar(select(SandboxConnection).where(SandboxConnection.company_id == ATELIER))
        atelier.updated_at = utcnow() + timedelta(minutes=5)
        db.session.commit()
    # Then only the Boulangerie is authorised for this dossier: the newest connection is not this
    # consent's, so there is nothing to choose and the Boulangerie is connected.
    done = bookkeeper.connect(dossier_id, software="xero", company=[COMPANY])
    assert "est connecté à la société « Boulangerie Martin SARL »" in text(done)
    assert integration_of(job_app, dossier_id).company_id == tenant_guid(COMPANY)

    # As Xero's: the access token is a JWT naming the consent, whose connections carry that id.
    access = [t for t in issued_tokens if t.count(".") == 2][-1]
    claims = claims_of(access)
    assert {"authentication_event_id", "xero_userid", "exp", "nbf", "client_id", "sub", "jti"} <= set(claims)
    assert claims["exp"] - claims["nbf"] == 30 * 60
    connections = requests.get(
        f"{live.url}/sandbox/xero/connections", headers={"Authorization": f"Bearer {access}"}, timeout=10
    ).json()
    by_tenant = {c["tenantId"]: c for c in connections}
    assert set(by_tenant) == {tenant_guid(COMPANY), tenant_guid(ATELIER)}
    assert by_tenant[tenant_guid(COMPANY)]["authEventId"] == claims["authentication_event_id"]
    assert by_tenant[tenant_guid(ATELIER)]["authEventId"] != claims["authentication_event_id"]


def test_xero_keeps_one_connection_per_organisation_and_updates_it_on_a_new_consent(
    job_app, live, bookkeeper, dossier_id, second_dossier, issued_tokens
):
    bookkeeper.connect(dossier_id, software="xero", company=[COMPANY])
    with job_app.app_context():
        before = db.session.scalar(select(SandboxConnection).where(SandboxConnection.company_id == COMPANY))
        before.updated_at = before.created_at = utcnow() - timedelta(hours=1)  # made an hour ago
        db.session.commit()
        event, updated, connection_id = before.auth_event_id, before.updated_at, before.id
    page = bookkeeper.connect(second_dossier, software="xero", company=[COMPANY, ROUSSEAU])
    assert "Choisissez l'organisation Xero de ce dossier" in text(page)
    with job_app.app_context():
        rows = db.session.scalars(
            select(SandboxConnection).where(SandboxConnection.company_id.in_([COMPANY, ROUSSEAU]))
        ).all()
        assert len(rows) == 2  # one per organisation, not one per consent
        again = next(r for r in rows if r.company_id == COMPANY)
        assert again.id == connection_id and again.auth_event_id != event and again.updated_at > updated
        assert next(r for r in rows if r.company_id == ROUSSEAU).auth_event_id == again.auth_event_id


# --- a company already connected to another dossier ---------------------------------------------


@pytest.mark.parametrize("software", ["sandbox", "xero", "sage", "quickbooks", "pennylane"])
def test_a_company_connected_to_another_dossier_asks_for_confirmation(
    job_app, live, bookkeeper, dossier_id, second_dossier, software
):
    bookkeeper.connect(dossier_id, software=software)
    first = integration_of(job_app, dossier_id)
    assert first is not None and first.company_id == company_id_as(software, COMPANY)

    # The consent covered that company only: the page asks to confirm it, naming the other dossier.
    page = bookkeeper.connect(second_dossier, software=software)
    assert "/connexions/choix/" in page.url
    assert "« Boulangerie Martin SARL » est déjà reliée au dossier « Boulangerie Martin »" in text(page)
    assert "Confirmez" in text(page) and integration_of(job_app, second_dossier) is None

    # Sent without the confirmation (an old form, a replayed request): asked again, nothing connected.
    company = company_id_as(software, COMPANY)
    warned = bookkeeper.http.post(
        page.url, data={"company_id": company, "csrf_token": token_in(page.text)}, timeout=30
    )
    assert "« Boulangerie Martin SARL » est déjà reliée au dossier « Boulangerie Martin »" in text(warned)
    assert integration_of(job_app, second_dossier) is None

    # 'Annuler' connects nothing and forgets the consent.
    cancel = bookkeeper.http.post(
        warned.url + "/annuler", data={"csrf_token": token_in(warned.text)}, timeout=30
    )
    assert "La connexion a été annulée : rien n'a été modifié." in text(cancel)
    assert integration_of(job_app, second_dossier) is None
    with job_app.app_context():
        assert db.session.scalar(select(PendingConsent.id)) is None

    # Confirmed knowingly, it is connected; the first dossier keeps its connection.
    page = bookkeeper.connect(second_dossier, software=software)
    done = bookkeeper.http.post(
        page.url,
        data={"company_id": company, "confirm": company, "csrf_token": token_in(page.text)},
        timeout=60,
    )
    assert "Boulangerie Martin SARL" in text(done) and "est connecté" in text(done)
    assert integration_of(job_app, second_dossier).company_id == company
    assert integration_of(job_app, dossier_id).status is IntegrationStatus.CONNECTED


def test_a_company_of_another_cabinet_is_not_named(job_app, live, bookkeeper, dossier_id):
    """Another organisation's dossier on the same company is none of this cabinet's business."""
    from tests.factories import make_dossier, make_integration, make_organisation

    with job_app.app_context():
        other = make_dossier(make_organisation("Cabinet Voisin"), "Dossier du voisin")
        integration = make_integration(other, software="sandbox")
        integration.company_id = COMPANY
        db.session.commit()
    done = bookkeeper.connect(dossier_id)
    assert "est connecté à la société « Boulangerie Martin SARL »" in text(done)
    assert "Dossier du voisin" not in text(done)


# --- the waiting consent --------------------------------------------------------------------------


def test_the_choice_belongs_to_its_user_and_dossier_and_expires(
    job_app, live, bookkeeper, dossier_id, second_dossier
):
    page = bookkeeper.connect(dossier_id, software="xero", company=[COMPANY, ATELIER])
    key = page.url.rsplit("/", 1)[1]
    # Another dossier's address with this key: not found there.
    elsewhere = bookkeeper.get(f"/dossiers/{second_dossier}/connexions/choix/{key}")
    assert "Ce choix de société n'est plus valable" in text(elsewhere)
    # Another user of the same cabinet: not theirs.
    from tests.factories import make_user

    with job_app.app_context():
        make_user(db.session.get(Dossier, dossier_id).organisation, "paul@lefevre.test", "autre-mot-de-passe")
    colleague = Browser(live.url)
    colleague.login("paul@lefevre.test", "autre-mot-de-passe")
    assert "Ce choix de société n'est plus valable" in text(colleague.get(page.url))
    # Bad input: a company the consent did not cover changes nothing.
    refused = bookkeeper.http.post(
        page.url, data={"company_id": tenant_guid(ROUSSEAU), "csrf_token": token_in(page.text)}, timeout=30
    )
    assert refused.status_code == 400 and "Choisissez une des sociétés proposées." in text(refused)
    assert integration_of(job_app, dossier_id) is None
    # After 15 minutes the choice is gone, and its tokens with it.
    with job_app.app_context():
        pending = db.session.scalar(select(PendingConsent))
        assert "access_token" not in pending.token_ciphertext  # encrypted
        pending.created_at = utcnow() - timedelta(minutes=16)
        db.session.commit()
    late = bookkeeper.http.post(
        page.url, data={"company_id": tenant_guid(COMPANY), "csrf_token": token_in(page.text)}, timeout=30
    )
    assert "Ce choix de société n'est plus valable" in text(late)
    assert integration_of(job_app, dossier_id) is None


# --- 'Se reconnecter' -----------------------------------------------------------------------------


def reconnect(
    browser: Browser, dossier_id: int, integration_id: int, companies: list[str]
) -> requests.Response:
    page = f"/dossiers/{dossier_id}/parametres/integrations/{integration_id}"
    start = browser.post_form(
        f"/dossiers/{dossier_id}/integrations/{integration_id}/reconnecter",
        {},
        page=page,
        allow_redirects=False,
    )
    consent = browser.get(start.headers["Location"])
    return browser.http.post(
        start.headers["Location"],
        data={"decision": "allow", "company_id": companies, "csrf_token": token_in(consent.text)},
        timeout=60,
    )


@pytest.mark.parametrize("software", ["xero", "sage"])
def test_reconnecting_takes_the_dossiers_own_company_from_a_wider_consent(
    job_app, live, bookkeeper, dossier_id, software
):
    bookkeeper.connect(dossier_id, software=software, company=[COMPANY])
    integration = integration_of(job_app, dossier_id)
    # The dossier's company among others: reconnected to it, no question asked.
    done = reconnect(bookkeeper, dossier_id, integration.id, [ATELIER, COMPANY])
    assert "est de nouveau connectée" in text(done)
    with job_app.app_context():
        tokens = load_tokens(db.session.get(Integration, integration.id))
        assert tokens.extra["tenant_id" if software == "xero" else "business_id"] == tenant_guid(COMPANY)
    # Another company only: refused, nothing changes.
    refused = reconnect(bookkeeper, dossier_id, integration.id, [ATELIER])
    assert "mais ce dossier est relié à la société « Boulangerie Martin SARL »" in text(refused)
    assert integration_of(job_app, dossier_id).company_id == tenant_guid(COMPANY)


# --- the sandbox's Xero identity ------------------------------------------------------------------


def test_xero_accepts_the_replaced_refresh_token_for_30_minutes_and_the_others_do_not(
    job_app, live, bookkeeper, dossier_id, issued_tokens
):
    from sandbox.models import SandboxToken, token_hash

    bookkeeper.connect(dossier_id, software="xero", company=[COMPANY])
    integration = integration_of(job_app, dossier_id)
    with job_app.app_context():
        tokens = load_tokens(db.session.get(Integration, integration.id))
        client = job_app.config["SANDBOX_CLIENT_ID"], job_app.config["SANDBOX_CLIENT_SECRET"]
    url = f"{live.url}/sandbox/xero/identity/connect/token"

    def refresh(token: str) -> requests.Response:
        return requests.post(
            url, data={"grant_type": "refresh_token", "refresh_token": token}, auth=client, timeout=10
        )

    first = refresh(tokens.refresh_token)
    assert first.status_code == 200
    again = refresh(tokens.refresh_token)  # the answer was lost: the same token once more
    assert again.status_code == 200 and again.json()["refresh_token"] != first.json()["refresh_token"]
    # Only one chain lives on: what the lost answer gave is ended.
    assert refresh(first.json()["refresh_token"]).json()["error"] == "invalid_grant"
    lost = requests.get(
        f"{live.url}/sandbox/xero/connections",
        headers={"Authorization": f"Bearer {first.json()['access_token']}"},
        timeout=10,
    )
    assert lost.status_code == 401
    assert (
        claims_of(again.json()["access_token"])["authentication_event_id"]
        == claims_of(first.json()["access_token"])["authentication_event_id"]
    )
    # 30 minutes later, no more.
    with job_app.app_context():
        row = db.session.scalar(
            select(SandboxToken).where(SandboxToken.refresh_token_hash == token_hash(tokens.refresh_token))
        )
        row.rotated_at = time.time() - 30 * 60 - 1
        db.session.commit()
    late = refresh(tokens.refresh_token)
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"


def test_compta_demo_refuses_a_replaced_refresh_token_at_once(job_app, live, bookkeeper, dossier_id):
    bookkeeper.connect(dossier_id)
    integration = integration_of(job_app, dossier_id)
    with job_app.app_context():
        tokens = load_tokens(db.session.get(Integration, integration.id))
    client = job_app.config["SANDBOX_CLIENT_ID"], job_app.config["SANDBOX_CLIENT_SECRET"]
    data = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
    url = f"{live.url}/sandbox/oauth/token"
    assert requests.post(url, data=data, auth=client, timeout=10).status_code == 200
    again = requests.post(url, data=data, auth=client, timeout=10)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


# --- what changes between the consent and the choice --------------------------------------------


def switch_to_xero(browser: Browser, dossier_id: int, integration_id: int, companies: list[str]):
    page = f"/dossiers/{dossier_id}/integrations/{integration_id}/changer"
    start = browser.post_form(f"{page}/xero", {}, page=page, allow_redirects=False)
    consent = browser.get(start.headers["Location"])
    return browser.http.post(
        start.headers["Location"],
        data={"decision": "allow", "company_id": companies, "csrf_token": token_in(consent.text)},
        timeout=60,
    )


def test_an_organisation_disconnected_at_xero_before_the_choice_changes_nothing(
    job_app, live, bookkeeper, dossier_id
):
    """'Changer de logiciel': until the new connection has succeeded, the current one stays."""
    bookkeeper.connect(dossier_id)
    current = integration_of(job_app, dossier_id)
    page = switch_to_xero(bookkeeper, dossier_id, current.id, [COMPANY, ATELIER])
    body = text(page)
    assert "Choisissez l'organisation Xero de ce dossier" in body
    assert "le dossier passera de Compta Démo à Xero une fois votre choix confirmé" in body
    # Meanwhile, the user disconnects the Atelier from Raccord in Xero.
    with job_app.app_context():
        db.session.delete(
            db.session.scalar(select(SandboxConnection).where(SandboxConnection.company_id == ATELIER))
        )
        db.session.commit()
    done = choose(bookkeeper, page, "Atelier Dupont & Fils SAS")
    assert done.status_code == 200
    assert (
        "« Atelier Dupont & Fils SAS » n'est plus autorisée dans Xero : rien n'a été modifié. "
        "Recommencez la connexion." in text(done)
    )
    still = integration_of(job_app, dossier_id)
    assert (still.id, still.software, still.status) == (current.id, "sandbox", IntegrationStatus.CONNECTED)


def test_a_choice_page_left_open_is_refused_once_the_dossier_changed(job_app, live, bookkeeper, dossier_id):
    bookkeeper.connect(dossier_id)
    current = integration_of(job_app, dossier_id)
    first = switch_to_xero(bookkeeper, dossier_id, current.id, [COMPANY, ATELIER])
    second = switch_to_xero(bookkeeper, dossier_id, current.id, [COMPANY, ATELIER])
    choose(bookkeeper, second, "Boulangerie Martin SARL")
    now = integration_of(job_app, dossier_id)
    assert now.software == "xero"
    # The first page, opened again: refused at once, and the user lands on the dossier's connections.
    again = bookkeeper.get(first.url)
    assert "Le logiciel du dossier a changé entre-temps : rien n'a été modifié." in text(again)
    assert again.url.endswith(f"/dossiers/{dossier_id}/parametres/connexions")
    assert integration_of(job_app, dossier_id).id == now.id


def test_reconnecting_with_only_other_organisations_names_them_all(job_app, live, bookkeeper, dossier_id):
    bookkeeper.connect(dossier_id, software="xero", company=[COMPANY])
    integration = integration_of(job_app, dossier_id)
    refused = reconnect(bookkeeper, dossier_id, integration.id, [ATELIER, ROUSSEAU])
    assert (
        "Vous avez choisi les sociétés « Atelier Dupont & Fils SAS » et « Cabinet Médical Rousseau », "
        "mais ce dossier est relié à la société « Boulangerie Martin SARL »." in text(refused)
    )


def test_xero_refuses_an_auth_event_that_is_not_a_guid(job_app, live, bookkeeper, dossier_id, issued_tokens):
    bookkeeper.connect(dossier_id, software="xero", company=[COMPANY])
    access = [t for t in issued_tokens if t.count(".") == 2][-1]
    answer = requests.get(
        f"{live.url}/sandbox/xero/connections",
        params={"authEventId": "zzz"},
        headers={"Authorization": f"Bearer {access}"},
        timeout=10,
    )
    assert answer.status_code == 400 and answer.json()["Detail"] == "authEventId must be a GUID"
