"""'Gérer' → 'Déconnecter': grant revoked, tokens deleted, Déconnectée, rules kept or deleted as chosen."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from sandbox.models import SandboxGrant
from tests.conftest import run_worker_burst, unescaped
from tests.http_user import COMPANY, connected
from tests.test_publishing import click_publish, new_invoice, status_of
from webapp.extensions import db
from webapp.models import Document, DocumentStatus, Event, Integration, IntegrationStatus, ListItem, Rule

# Every write these flows make keeps the dossiers' lines of 'Mes dossiers' true.
pytestmark = pytest.mark.usefixtures("summaries_stay_true")


def integration_page(dossier_id: int, integration_id: int) -> str:
    return f"/dossiers/{dossier_id}/integrations/{integration_id}"


def test_the_dialog_offers_to_keep_the_rules_by_default(job_app, live, dossier_with_rule):
    browser, dossier_id, integration_id, _ = dossier_with_rule
    page = unescaped(browser.get(integration_page(dossier_id, integration_id)).text)
    assert "Déconnecter" in page
    dialog = unescaped(
        browser.get(
            f"{integration_page(dossier_id, integration_id)}/deconnecter", headers={"HX-Request": "true"}
        ).text
    )
    assert dialog.startswith('<dialog id="disconnect-dialog"') and "aria-labelledby" in dialog
    assert (
        '<input type="radio" name="regles" value="conserver" checked> '
        "Conserver les règles actuelles tout en déconnectant l'intégration" in dialog
    )
    assert "Supprimer les règles" in dialog and "Règles (1)" in dialog
    # Without htmx (no script), the same choice on a page of its own.
    page = unescaped(browser.get(f"{integration_page(dossier_id, integration_id)}/deconnecter").text)
    assert "<!doctype html>" in page.lower() and "Conserver les règles actuelles" in page


def test_disconnecting_keeps_the_rules_revokes_and_refuses_publishing_and_refreshing(
    job_app, live, dossier_with_rule
):
    browser, dossier_id, integration_id, ids = dossier_with_rule
    document_id = new_invoice(browser, dossier_id, ids)
    url = integration_page(dossier_id, integration_id)
    done = browser.post_form(f"{url}/deconnecter", {"regles": "conserver"}, page=url)
    page = unescaped(done.text)
    assert "L'intégration avec Compta Démo est déconnectée. Les règles sont conservées." in page
    assert "Historique des intégrations" in page and "Déconnectée" in page
    assert page.count(">Connecter</button>") >= 1  # the dossier can connect again

    with job_app.app_context():
        integration = db.session.get(Integration, integration_id)
        assert integration.status is IntegrationStatus.DISCONNECTED and integration.token_ciphertext is None
        grant = db.session.scalar(select(SandboxGrant).where(SandboxGrant.company_id == COMPANY))
        assert grant.revoked_at is not None  # revoked at the software
        assert db.session.scalar(select(func.count()).select_from(Rule)) == 1
        event = db.session.scalar(select(Event).where(Event.kind == "integration.disconnected"))
        assert event.details == {"revoked": True, "keep_rules": True, "rules_deleted": 0}

    rules = unescaped(browser.get(f"/dossiers/{dossier_id}/regles/fournisseurs").text)
    assert "À transférer (1)" in rules and "EDF Entreprises" in rules
    lists = unescaped(browser.get(f"/dossiers/{dossier_id}/listes/suppliers").text)
    assert (
        "Cette liste vient de l'intégration déconnectée avec Compta Démo" in lists
        and "EDF Entreprises" in lists
    )
    reload = browser.post_form(
        f"/dossiers/{dossier_id}/listes/suppliers/recharger",
        {},
        page=f"/dossiers/{dossier_id}/listes/suppliers",
        htmx=True,
    )
    assert reload.status_code == 404  # nothing connected: no reload to start

    response = click_publish(browser, dossier_id, document_id)
    assert "Intégration déconnectée : connectez un logiciel comptable pour publier" in unescaped(
        response.text
    )
    assert status_of(job_app, document_id).status is DocumentStatus.FAILED
    documents = unescaped(browser.get(f"/dossiers/{dossier_id}/documents").text)
    assert "codées sur les listes de l'intégration déconnectée avec Compta Démo" in documents


def test_disconnecting_can_delete_the_rules_and_the_documents_keep_their_coding(
    job_app, live, dossier_with_rule
):
    browser, dossier_id, integration_id, ids = dossier_with_rule
    document_id = new_invoice(browser, dossier_id, ids)
    url = integration_page(dossier_id, integration_id)
    done = browser.post_form(f"{url}/deconnecter", {"regles": "supprimer"}, page=url)
    assert "1 règle supprimée." in unescaped(done.text)
    with job_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Rule)) == 0
        document = db.session.get(Document, document_id)
        assert document.rule_id is None and document.account_id == ids["energy"]


def test_a_missing_choice_changes_nothing(job_app, live, dossier_with_rule):
    browser, dossier_id, integration_id, _ = dossier_with_rule
    url = integration_page(dossier_id, integration_id)
    refused = browser.post_form(f"{url}/deconnecter", {}, page=url)
    assert "Choisissez de conserver ou de supprimer les règles actuelles." in unescaped(refused.text)
    with job_app.app_context():
        assert db.session.get(Integration, integration_id).status is IntegrationStatus.CONNECTED


def test_after_disconnecting_the_dossier_connects_again_and_the_kept_rules_wait(
    job_app, live, dossier_with_rule
):
    browser, dossier_id, integration_id, _ = dossier_with_rule
    url = integration_page(dossier_id, integration_id)
    browser.post_form(f"{url}/deconnecter", {"regles": "conserver"}, page=url)
    new_id = connected(job_app, browser, dossier_id)
    assert new_id != integration_id
    with job_app.app_context():
        assert db.session.get(Integration, new_id).status is IntegrationStatus.CONNECTED
        assert db.session.scalar(select(func.count()).where(ListItem.integration_id == new_id)) > 0
    rules = unescaped(browser.get(f"/dossiers/{dossier_id}/regles/fournisseurs").text)
    assert "À transférer (1)" in rules and "Nouvelle règle" in rules
    history = unescaped(browser.get(f"/dossiers/{dossier_id}/parametres/connexions").text)
    assert "Historique des intégrations" in history and "Gérer" in history


def test_a_refresh_queued_before_disconnecting_stops_in_french(job_app, live, dossier_with_rule):
    browser, dossier_id, integration_id, ids = dossier_with_rule
    page = f"/dossiers/{dossier_id}/listes/accounts"
    browser.post_form(f"{page}/recharger", {}, page=page, htmx=True)  # queued, not yet run
    url = integration_page(dossier_id, integration_id)
    browser.post_form(f"{url}/deconnecter", {"regles": "conserver"}, page=url)
    run_worker_burst(job_app)
    state = unescaped(browser.get(page).text)
    assert "Chargement en cours" not in state
    assert "L'intégration avec Compta Démo est déconnectée : connectez un logiciel comptable" in state
    with job_app.app_context():
        assert db.session.get(Integration, integration_id).status is IntegrationStatus.DISCONNECTED
