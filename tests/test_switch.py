"""'Changer de logiciel': the old integration ends only once the new connection has succeeded."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from sandbox.models import SandboxGrant
from tests.conftest import run_worker_burst, unescaped
from tests.http_user import COMPANY, Browser, controls_api, token_in
from tests.xero_helpers import XERO_TENANT
from webapp.extensions import db
from webapp.models import Event, Integration, IntegrationStatus, ListItem, ListKind, Rule

# Every write these flows make keeps the dossiers' lines of 'Mes dossiers' true.
pytestmark = pytest.mark.usefixtures("summaries_stay_true")


def switch(browser: Browser, dossier_id: int, integration_id: int, software: str, *, decision: str = "allow"):
    page = f"/dossiers/{dossier_id}/integrations/{integration_id}/changer"
    start = browser.post_form(f"{page}/{software}", {}, page=page, allow_redirects=False)
    assert start.status_code == 302, start.text
    consent = browser.get(start.headers["Location"])
    assert "Autoriser Raccord" in unescaped(consent.text)
    form = {"decision": decision, "csrf_token": token_in(consent.text), "company_id": COMPANY}
    return browser.http.post(start.headers["Location"], data=form, timeout=60)


def test_the_page_offers_the_other_software_each_with_its_guide(job_app, live, dossier_with_rule):
    browser, dossier_id, integration_id, _ = dossier_with_rule
    menu = unescaped(browser.get(f"/dossiers/{dossier_id}/integrations/{integration_id}").text)
    assert "Changer de logiciel" in menu
    page = unescaped(browser.get(f"/dossiers/{dossier_id}/integrations/{integration_id}/changer").text)
    for name in ("Xero", "QuickBooks Online", "Pennylane", "Sage Business Cloud Comptabilité"):
        assert f"Connecter {name}" in page
    assert "Connecter Compta Démo" not in page  # the current software is not offered
    assert page.count("Guide de démarrage :") == 4
    assert "si vous en autorisez plusieurs, Raccord vous demande ensuite laquelle relier au dossier" in page


def test_switching_to_xero_disconnects_the_old_one_keeps_its_rules_and_loads_the_new_lists(
    job_app, live, dossier_with_rule
):
    browser, dossier_id, integration_id, _ = dossier_with_rule
    done = switch(browser, dossier_id, integration_id, "xero")
    page = unescaped(done.text)
    assert (
        "Xero remplace Compta Démo : le dossier est relié à « Boulangerie Martin SARL » dans Xero, et le "
        "chargement des listes a commencé. Les règles de Compta Démo sont conservées, à transférer." in page
    )
    with job_app.app_context():
        old = db.session.get(Integration, integration_id)
        new = db.session.scalar(select(Integration).where(Integration.software == "xero"))
        assert old.status is IntegrationStatus.DISCONNECTED and old.token_ciphertext is None
        assert new.status is IntegrationStatus.CONNECTED and new.company_id == XERO_TENANT
        grants = db.session.scalars(select(SandboxGrant).order_by(SandboxGrant.id)).all()
        assert grants[0].revoked_at is not None and grants[-1].revoked_at is None  # the old grant only
        (event,) = db.session.scalars(select(Event).where(Event.kind == "integration.switched")).all()
        assert event.details["from"]["software"] == "sandbox" and event.details["to"]["software"] == "xero"
        assert event.actor_id is not None
        assert db.session.scalar(select(func.count()).select_from(Rule)) == 1
        new_id = new.id
    run_worker_burst(job_app)
    with job_app.app_context():
        assert (
            db.session.scalar(
                select(func.count()).where(
                    ListItem.integration_id == new_id, ListItem.kind == ListKind.SUPPLIERS
                )
            )
            == 30
        )
    rules = unescaped(browser.get(f"/dossiers/{dossier_id}/regles/fournisseurs").text)
    assert "À transférer (1)" in rules and "Nouvelle règle" in rules
    history = unescaped(browser.get(f"/dossiers/{dossier_id}/parametres/connexions").text)
    assert "Historique des intégrations" in history and "Compta Démo" in history


def test_a_cancelled_switch_leaves_the_old_integration_as_it_was_and_working(
    job_app, live, dossier_with_rule
):
    browser, dossier_id, integration_id, _ = dossier_with_rule
    with job_app.app_context():
        before = db.session.get(Integration, integration_id).token_ciphertext
    done = switch(browser, dossier_id, integration_id, "xero", decision="deny")
    assert "La connexion a été annulée : rien n'a été modifié." in unescaped(done.text)
    with job_app.app_context():
        old = db.session.get(Integration, integration_id)
        assert old.status is IntegrationStatus.CONNECTED and old.token_ciphertext == before
        assert db.session.scalar(select(func.count()).select_from(Integration)) == 1
    page = f"/dossiers/{dossier_id}/listes/suppliers"
    browser.post_form(f"{page}/recharger", {}, page=page, htmx=True)
    run_worker_burst(job_app)
    assert "Échec du dernier chargement" not in unescaped(browser.get(page).text)
    with job_app.app_context():  # still working: the reload went through with the old tokens
        from webapp.models import ListSync, SyncStatus

        sync = db.session.scalar(
            select(ListSync).where(
                ListSync.integration_id == integration_id, ListSync.kind == ListKind.SUPPLIERS
            )
        )
        assert sync.status is SyncStatus.SUCCEEDED and sync.last_counts["received"] == 30


def test_a_failed_switch_changes_nothing(job_app, live, dossier_with_rule):
    browser, dossier_id, integration_id, _ = dossier_with_rule
    page = f"/dossiers/{dossier_id}/integrations/{integration_id}/changer"
    start = browser.post_form(f"{page}/xero", {}, page=page, allow_redirects=False)
    consent = browser.get(start.headers["Location"])
    # The new software's token endpoint fails for good at the moment of the exchange.
    controls_api.post(
        f"{live.url}/sandbox/controls/api/faults", json={"count": 20, "status": 503}, timeout=10
    )
    done = browser.http.post(
        start.headers["Location"],
        data={"decision": "allow", "csrf_token": token_in(consent.text), "company_id": COMPANY},
        timeout=60,
    )
    controls_api.post(f"{live.url}/sandbox/controls/api/faults", json={"count": 0}, timeout=10)
    assert "La connexion à Xero a échoué" in unescaped(done.text) and "Rien n'a été modifié." in unescaped(
        done.text
    )
    with job_app.app_context():
        assert db.session.get(Integration, integration_id).status is IntegrationStatus.CONNECTED
        assert db.session.scalar(select(func.count()).select_from(Integration)) == 1


def test_the_same_software_is_refused(job_app, live, dossier_with_rule):
    browser, dossier_id, integration_id, _ = dossier_with_rule
    page = f"/dossiers/{dossier_id}/integrations/{integration_id}/changer"
    refused = browser.post_form(f"{page}/sandbox", {}, page=page)
    assert "Ce dossier est déjà relié à Compta Démo : utilisez « Se reconnecter »." in unescaped(refused.text)
