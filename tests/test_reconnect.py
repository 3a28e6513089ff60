"""'Intégration expirée' and 'Se reconnecter', over HTTP with the sandbox's consent page and real workers."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from tests.conftest import run_worker_burst, unescaped
from tests.http_user import COMPANY, Browser, controls_api, token_in
from webapp.extensions import db
from webapp.models import Dossier, Event, Integration, IntegrationStatus, ListItem, ListSync

# Every write these flows make keeps the dossiers' lines of 'Mes dossiers' true.
pytestmark = pytest.mark.usefixtures("summaries_stay_true")


@pytest.fixture
def setup(connected_dossier):
    return connected_dossier


def snapshot(job_app, dossier_id: int, integration_id: int) -> dict:
    """Everything a reconnection must leave as it was."""
    with job_app.app_context():
        dossier = db.session.get(Dossier, dossier_id)
        integration = db.session.get(Integration, integration_id)
        items = db.session.execute(
            select(
                ListItem.kind,
                ListItem.external_id,
                ListItem.name,
                ListItem.active,
                ListItem.visible,
                ListItem.updated_at,
            )
            .where(ListItem.integration_id == integration_id)
            .order_by(ListItem.id)
        ).all()
        syncs = db.session.execute(
            select(ListSync.kind, ListSync.item_count, ListSync.last_loaded_at)
            .where(ListSync.integration_id == integration_id)
            .order_by(ListSync.id)
        ).all()
        return {
            "dossier": (dossier.name, dossier.siren),
            "company": (integration.software, integration.company_id, integration.company_name),
            "items": [tuple(r) for r in items],
            "syncs": [tuple(r) for r in syncs],
        }


def expire(job_app, live, browser: Browser, dossier_id: int, integration_id: int) -> None:
    controls_api.post(f"{live.url}/sandbox/controls/api/companies/{COMPANY}/expire", json={}, timeout=10)
    page = f"/dossiers/{dossier_id}/listes/accounts"
    browser.post_form(f"{page}/recharger", {}, page=page, htmx=True)
    run_worker_burst(job_app)
    with job_app.app_context():
        assert db.session.get(Integration, integration_id).status is IntegrationStatus.EXPIRED


def reconnect(
    browser: Browser, dossier_id: int, integration_id: int, *, company: str = COMPANY, decision: str = "allow"
) -> requests.Response:
    page = f"/dossiers/{dossier_id}/integrations/{integration_id}"
    start = browser.post_form(f"{page}/reconnecter", {}, page=page, allow_redirects=False)
    assert start.status_code == 302
    consent = browser.get(start.headers["Location"])
    form = {"decision": decision, "csrf_token": token_in(consent.text), "company_id": company}
    return browser.http.post(start.headers["Location"], data=form, timeout=60)


def test_an_expired_integration_shows_a_banner_on_every_dossier_screen(job_app, live, setup):
    browser, dossier_id, integration_id = setup
    expire(job_app, live, browser, dossier_id, integration_id)
    for path in (
        f"/dossiers/{dossier_id}",
        f"/dossiers/{dossier_id}/listes/suppliers",
        f"/dossiers/{dossier_id}/parametres",
        f"/dossiers/{dossier_id}/integrations/{integration_id}",
    ):
        page = unescaped(browser.get(path).text)
        assert "L'intégration avec Compta Démo a expiré." in page, path
        assert (
            f'href="/dossiers/{dossier_id}/integrations/{integration_id}#se-reconnecter">Se reconnecter</a>'
            in page
        )
    with job_app.app_context():
        event = db.session.scalar(select(Event).where(Event.kind == "integration.expired"))
        assert event.outcome == "failed"


def test_se_reconnecter_restores_the_connection_and_changes_nothing_else(job_app, live, setup):
    browser, dossier_id, integration_id = setup
    expire(job_app, live, browser, dossier_id, integration_id)
    before = snapshot(job_app, dossier_id, integration_id)
    with job_app.app_context():
        old_ciphertext = db.session.get(Integration, integration_id).token_ciphertext

    response = reconnect(browser, dossier_id, integration_id)
    page = unescaped(response.text)
    assert response.url.endswith(f"/dossiers/{dossier_id}/integrations/{integration_id}")
    assert "L'intégration avec Compta Démo est de nouveau connectée." in page
    # The expiry stays in the page's last events, but no longer in the status nor the banner.
    status_part = page.split("Derniers événements")[0]
    assert "Connectée" in status_part and "a expiré" not in status_part

    assert snapshot(job_app, dossier_id, integration_id) == before
    with job_app.app_context():
        integration = db.session.get(Integration, integration_id)
        assert integration.status is IntegrationStatus.CONNECTED
        assert integration.token_ciphertext != old_ciphertext
        event = db.session.scalar(select(Event).where(Event.kind == "integration.reconnected"))
        assert event.details == {"previous_status": "expired"}

    # The lists load again with the new tokens.
    page = f"/dossiers/{dossier_id}/listes/accounts"
    browser.post_form(f"{page}/recharger", {}, page=page, htmx=True)
    run_worker_burst(job_app)
    with job_app.app_context():
        sync = db.session.scalar(
            select(ListSync).where(ListSync.integration_id == integration_id, ListSync.kind == "accounts")
        )
        assert sync.status.value == "succeeded"


def test_reconnecting_to_another_company_changes_nothing_and_says_which_company(job_app, live, setup):
    browser, dossier_id, integration_id = setup
    expire(job_app, live, browser, dossier_id, integration_id)
    before = snapshot(job_app, dossier_id, integration_id)
    response = reconnect(browser, dossier_id, integration_id, company="cmp-atelier-dupont")
    page = unescaped(response.text)
    # The explanation is on the page, in its notice (a toast would go away before it is read).
    notice = page.split('id="reconnexion-refusee"', 1)[1].split("</div>", 1)[0]
    assert "La reconnexion a été refusée." in notice
    assert (
        "Vous avez choisi la société « Atelier Dupont & Fils SAS », mais ce dossier est relié à la société "
        "« Boulangerie Martin SARL ». Rien n'a été modifié" in notice
    )
    # Shown once: a later visit of the page no longer shows it.
    again = unescaped(browser.get(f"/dossiers/{dossier_id}/integrations/{integration_id}").text)
    assert 'id="reconnexion-refusee"' not in again and "La reconnexion a été refusée." not in again
    assert snapshot(job_app, dossier_id, integration_id) == before
    with job_app.app_context():
        assert db.session.get(Integration, integration_id).status is IntegrationStatus.EXPIRED
        # The access just granted to the other company was given back.
        from sandbox.models import SandboxGrant

        other = db.session.scalar(select(SandboxGrant).where(SandboxGrant.company_id == "cmp-atelier-dupont"))
        assert other.revoked_at is not None


def test_a_cancelled_reconnection_changes_nothing(job_app, live, setup):
    browser, dossier_id, integration_id = setup
    expire(job_app, live, browser, dossier_id, integration_id)
    before = snapshot(job_app, dossier_id, integration_id)
    response = reconnect(browser, dossier_id, integration_id, decision="deny")
    assert "La connexion a été annulée : rien n'a été modifié." in unescaped(response.text)
    assert snapshot(job_app, dossier_id, integration_id) == before
    with job_app.app_context():
        assert db.session.get(Integration, integration_id).status is IntegrationStatus.EXPIRED


def test_se_reconnecter_also_renews_a_valid_connection(job_app, live, setup):
    browser, dossier_id, integration_id = setup
    before = snapshot(job_app, dossier_id, integration_id)
    with job_app.app_context():
        since = db.session.get(Integration, integration_id).status_since
    response = reconnect(browser, dossier_id, integration_id)
    assert "L'intégration avec Compta Démo est de nouveau connectée." in unescaped(response.text)
    assert snapshot(job_app, dossier_id, integration_id) == before
    with job_app.app_context():
        integration = db.session.get(Integration, integration_id)
        assert integration.status is IntegrationStatus.CONNECTED and integration.status_since == since


def test_what_changed_while_the_access_was_cut_arrives_right_after_reconnecting(job_app, live, setup):
    """No webhook comes while the access is cut: 'Se reconnecter' asks for the changes at once."""
    browser, dossier_id, integration_id = setup
    expire(job_app, live, browser, dossier_id, integration_id)
    controls_api.post(
        f"{live.url}/sandbox/controls/api/companies/{COMPANY}/suppliers",
        json={"name": "Fournisseur d'après la coupure"},
        timeout=10,
    ).raise_for_status()

    reconnect(browser, dossier_id, integration_id)
    run_worker_burst(job_app)  # no click: the refreshes queued by the reconnection
    with job_app.app_context():
        assert db.session.scalar(
            select(ListItem.active).where(
                ListItem.integration_id == integration_id, ListItem.name == "Fournisseur d'après la coupure"
            )
        )
        syncs = db.session.scalars(select(ListSync).where(ListSync.integration_id == integration_id)).all()
        assert all(s.status.value == "succeeded" for s in syncs)
        # Changes only: nothing the software still has was made inactive.
        assert all(s.last_counts.get("deactivated") == 0 for s in syncs)
