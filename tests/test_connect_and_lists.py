"""Over HTTP: connecting to 'Compta Démo' through its consent page, and loading lists in real RQ workers."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from sandbox.models import SandboxToken, token_hash
from sandbox.seed import ACCOUNTS, CUSTOMERS, PAYMENT_METHODS, SUPPLIERS, TAX_RATES, TRACKING
from tests.conftest import plain_spaces, run_worker_burst, unescaped
from tests.factories import make_organisation, make_user
from tests.http_user import COMPANY, Browser, connected, controls_api, toast_of
from webapp.extensions import db
from webapp.models import Event, Integration, IntegrationStatus, JobRun, ListItem, ListKind, ListSync
from webapp.models.lists import SyncStatus

# Every write these flows make keeps the dossiers' lines of 'Mes dossiers' true.
pytestmark = pytest.mark.usefixtures("summaries_stay_true")

EXPECTED_SIZES = {
    ListKind.ACCOUNTS: len(ACCOUNTS),
    ListKind.SUPPLIERS: len(SUPPLIERS),
    ListKind.CUSTOMERS: len(CUSTOMERS),
    ListKind.TAX_RATES: len(TAX_RATES),
    ListKind.TRACKING_CATEGORIES: len(TRACKING),
    ListKind.PAYMENT_METHODS: len(PAYMENT_METHODS),
}


def sizes(job_app, integration_id: int) -> dict[ListKind, int]:
    with job_app.app_context():
        rows = db.session.execute(
            select(ListItem.kind, func.count())
            .where(ListItem.integration_id == integration_id, ListItem.active.is_(True))
            .group_by(ListItem.kind)
        ).all()
    return dict(rows)


def test_connecting_stores_encrypted_tokens_and_loads_every_list(
    job_app, live, bookkeeper, dossier_id, issued_tokens
):
    response = bookkeeper.connect(dossier_id)
    page = unescaped(response.text)
    assert re.search(r"/dossiers/\d+/integrations/\d+$", response.url)
    assert "Compta Démo est connecté à la société « Boulangerie Martin SARL »." in page
    assert "Chargement en cours" in page

    with job_app.app_context():
        integration = db.session.scalar(select(Integration).where(Integration.dossier_id == dossier_id))
        assert integration.status is IntegrationStatus.CONNECTED
        assert (integration.company_id, integration.company_name) == (COMPANY, "Boulangerie Martin SARL")
        issued = db.session.scalar(select(SandboxToken).where(SandboxToken.company_id == COMPANY))
        assert len(issued_tokens) == 2  # an access token and a refresh token
        # The software keeps only their hashes; Raccord keeps them encrypted; the page shows neither.
        assert {issued.access_token_hash, issued.refresh_token_hash} == set(map(token_hash, issued_tokens))
        for secret in issued_tokens:
            assert secret not in integration.token_ciphertext
            assert secret not in page
        assert db.session.scalar(select(func.count()).select_from(JobRun)) == 6
        event = db.session.scalar(select(Event).where(Event.kind == "integration.connected"))
        assert plain_spaces(event.message) == "Connexion à Compta Démo (société « Boulangerie Martin SARL »)."
        integration_id = integration.id

    run_worker_burst(job_app)
    assert sizes(job_app, integration_id) == EXPECTED_SIZES
    with job_app.app_context():
        syncs = db.session.scalars(select(ListSync).where(ListSync.integration_id == integration_id)).all()
        assert {s.status for s in syncs} == {SyncStatus.SUCCEEDED}
        supplier = db.session.scalar(
            select(ListItem).where(ListItem.kind == ListKind.SUPPLIERS, ListItem.name == "EDF Entreprises")
        )
        assert supplier.vat_number.startswith("FR") and len(supplier.siren) == 9
        rate = db.session.scalar(select(ListItem.rate).where(ListItem.external_id == "tax-TVA55"))
        assert rate == "5.5"

    state = unescaped(
        bookkeeper.get(
            f"/dossiers/{dossier_id}/integrations/{integration_id}/listes?suivi=1",
            headers={"HX-Request": "true"},
        ).text
    )
    assert "Chargement en cours" not in state and "À jour" in state


def test_a_refused_consent_brings_the_user_back_and_stores_nothing(job_app, bookkeeper, dossier_id):
    response = bookkeeper.connect(dossier_id, decision="deny")
    assert "La connexion a été annulée : rien n'a été modifié." in unescaped(response.text)
    assert response.url.endswith(f"/dossiers/{dossier_id}/parametres/connexions")
    with job_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Integration)) == 0


def test_a_callback_with_an_unknown_state_is_refused(job_app, bookkeeper, dossier_id):
    bookkeeper.post_form(
        f"/dossiers/{dossier_id}/connexions/sandbox/connecter",
        {},
        page=f"/dossiers/{dossier_id}/parametres/connexions",
        allow_redirects=False,
    )
    response = bookkeeper.get("/oauth/callback?code=stolen-code&state=forged-state")
    assert "Ce retour de connexion n'est pas valide ou a expiré." in unescaped(response.text)
    with job_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Integration)) == 0


def test_another_user_cannot_start_a_connection_on_my_dossier(job_app, live, dossier_id):
    with job_app.app_context():
        make_user(make_organisation("Cabinet Girard"), "paul@girard.test", "autre-mot-de-passe")
    intruder = Browser(live.url)
    intruder.login("paul@girard.test", "autre-mot-de-passe")
    response = intruder.post_form(
        f"/dossiers/{dossier_id}/connexions/sandbox/connecter", {}, page="/dossiers", allow_redirects=False
    )
    assert response.status_code == 404


def test_recharger_la_liste_picks_up_what_changed_upstream(job_app, live, bookkeeper, dossier_id):
    integration_id = connected(job_app, bookkeeper, dossier_id)
    controls = f"{live.url}/sandbox/controls/api/companies/{COMPANY}"
    added = controls_api.post(
        f"{controls}/suppliers", json={"name": "Fromagerie Nouvelle", "siren": "732829320"}, timeout=10
    )
    assert added.status_code == 201
    controls_api.post(
        f"{controls}/items/sup-000001", json={"name": "EDF Entreprises (nouveau nom)"}, timeout=10
    )
    controls_api.post(f"{controls}/items/sup-000002", json={"active": False}, timeout=10)

    response = bookkeeper.post_form(
        f"/dossiers/{dossier_id}/listes/suppliers/recharger",
        {},
        page=f"/dossiers/{dossier_id}/listes/suppliers",
        htmx=True,
    )
    assert response.status_code == 200
    assert toast_of(response) == "Le chargement de la liste « Fournisseurs » a commencé."
    assert "Chargement en cours" in unescaped(response.text)
    run_worker_burst(job_app)

    found = unescaped(bookkeeper.get(f"/dossiers/{dossier_id}/listes/suppliers?q=fromagerie").text)
    assert "Fromagerie Nouvelle" in found
    inactive = unescaped(bookkeeper.get(f"/dossiers/{dossier_id}/listes/suppliers?statut=inactifs").text)
    assert "Orange Business" in inactive
    with job_app.app_context():
        renamed = db.session.scalar(select(ListItem.name).where(ListItem.external_id == "sup-000001"))
        assert renamed == "EDF Entreprises (nouveau nom)"
        last = db.session.scalars(
            select(Event).where(Event.kind == "lists.refreshed").order_by(Event.id.desc())
        ).first()
        # The archived supplier is said made inactive, not modified.
        assert (last.details["added"], last.details["updated"], last.details["deactivated"]) == (1, 1, 1)
        assert "1 ajouté, 1 modifié, 1 rendu inactif" in plain_spaces(last.message)
    assert sizes(job_app, integration_id)[ListKind.SUPPLIERS] == len(SUPPLIERS)  # +1 added, -1 archived

    done = bookkeeper.get(
        f"/dossiers/{dossier_id}/listes/suppliers/etat?suivi=1", headers={"HX-Request": "true"}
    )
    assert toast_of(done) == "La liste « Fournisseurs » est à jour."


def test_a_second_click_joins_the_running_refresh(job_app, live, bookkeeper, dossier_id):
    integration_id = connected(job_app, bookkeeper, dossier_id)
    page = f"/dossiers/{dossier_id}/listes/suppliers"
    bookkeeper.post_form(f"{page}/recharger", {}, page=page, htmx=True)
    bookkeeper.post_form(f"{page}/recharger", {}, page=page, htmx=True)
    with job_app.app_context():
        runs = db.session.scalars(
            select(JobRun).where(JobRun.kind == "list_refresh").order_by(JobRun.id)
        ).all()
        assert len(runs) == 7  # six at connection, one for the two clicks
        sync = db.session.scalar(
            select(ListSync).where(
                ListSync.integration_id == integration_id, ListSync.kind == ListKind.SUPPLIERS
            )
        )
        assert sync.status is SyncStatus.RUNNING and sync.job_run_id == runs[-1].id
    run_worker_burst(job_app)


def test_an_expired_grant_marks_the_integration_expired_and_keeps_the_lists(
    job_app, live, bookkeeper, dossier_id
):
    integration_id = connected(job_app, bookkeeper, dossier_id)
    before = sizes(job_app, integration_id)
    controls_api.post(f"{live.url}/sandbox/controls/api/companies/{COMPANY}/expire", json={}, timeout=10)

    page = f"/dossiers/{dossier_id}/listes/accounts"
    bookkeeper.post_form(f"{page}/recharger", {}, page=page, htmx=True)
    run_worker_burst(job_app)

    with job_app.app_context():
        integration = db.session.get(Integration, integration_id)
        assert integration.status is IntegrationStatus.EXPIRED
        sync = db.session.scalar(
            select(ListSync).where(
                ListSync.integration_id == integration_id, ListSync.kind == ListKind.ACCOUNTS
            )
        )
        assert sync.last_error == "L'intégration avec Compta Démo a expiré. Reconnectez-vous pour reprendre."
    assert sizes(job_app, integration_id) == before
    screen = unescaped(bookkeeper.get(f"/dossiers/{dossier_id}/integrations/{integration_id}").text)
    assert "Expirée" in screen and "L'intégration avec Compta Démo a expiré." in screen
    again = bookkeeper.post_form(f"{page}/recharger", {}, page=page, htmx=True)
    assert toast_of(again) == "L'intégration avec Compta Démo a expiré. Reconnectez-vous pour reprendre."


def test_short_access_tokens_are_refreshed_and_rotated(job_app, live, bookkeeper, dossier_id):
    controls_api.post(f"{live.url}/sandbox/controls/api/settings", json={"access_ttl": 60}, timeout=10)
    integration_id = connected(job_app, bookkeeper, dossier_id)
    with job_app.app_context():  # the minute has passed: the next loads meet an expired access token
        for token in db.session.scalars(select(SandboxToken)):
            token.issued_at -= 120
        db.session.commit()
    page = f"/dossiers/{dossier_id}/integrations/{integration_id}"
    bookkeeper.post_form(f"{page}/actualiser", {}, page=page, htmx=True)
    run_worker_burst(job_app)
    assert sizes(job_app, integration_id) == EXPECTED_SIZES
    with job_app.app_context():
        tokens = db.session.scalars(select(SandboxToken).order_by(SandboxToken.id)).all()
        assert len(tokens) >= 2  # refreshed at least once
        assert all(t.revoked for t in tokens[:-1]) and not tokens[-1].revoked  # rotation: only the last lives
        assert db.session.get(Integration, integration_id).status is IntegrationStatus.CONNECTED


def test_rate_limits_and_server_errors_are_retried(job_app, live, bookkeeper, dossier_id):
    integration_id = connected(job_app, bookkeeper, dossier_id)
    faults = f"{live.url}/sandbox/controls/api/faults"
    controls_api.post(faults, json={"count": 2, "status": 429, "retry_after": 1}, timeout=10)
    page = f"/dossiers/{dossier_id}/listes/customers"
    bookkeeper.post_form(f"{page}/recharger", {}, page=page, htmx=True)
    run_worker_burst(job_app)
    with job_app.app_context():
        sync = db.session.scalar(
            select(ListSync).where(
                ListSync.integration_id == integration_id, ListSync.kind == ListKind.CUSTOMERS
            )
        )
        assert sync.status is SyncStatus.SUCCEEDED

    controls_api.post(faults, json={"count": 50, "status": 503}, timeout=10)
    bookkeeper.post_form(f"{page}/recharger", {}, page=page, htmx=True)
    run_worker_burst(job_app)
    controls_api.post(faults, json={"count": 0}, timeout=10)
    with job_app.app_context():
        db.session.expire_all()
        sync = db.session.scalar(
            select(ListSync).where(
                ListSync.integration_id == integration_id, ListSync.kind == ListKind.CUSTOMERS
            )
        )
        assert sync.status is SyncStatus.FAILED
        assert sync.last_error == "Le logiciel comptable est indisponible (erreur 503). Réessayez plus tard."
        assert db.session.get(Integration, integration_id).status is IntegrationStatus.CONNECTED
    assert sizes(job_app, integration_id)[ListKind.CUSTOMERS] == len(CUSTOMERS)
    block = unescaped(bookkeeper.get(f"/dossiers/{dossier_id}/integrations/{integration_id}").text)
    assert "Réessayer" in block and "indisponible (erreur 503)" in block


def test_an_account_can_be_hidden_from_coding_and_stays_hidden_after_a_refresh(
    job_app, live, bookkeeper, dossier_id
):
    integration_id = connected(job_app, bookkeeper, dossier_id)
    with job_app.app_context():
        account = db.session.scalar(select(ListItem).where(ListItem.external_id == "acc-606400"))
        account_id = account.id
    page = f"/dossiers/{dossier_id}/listes/accounts"
    response = bookkeeper.post_form(f"{page}/{account_id}/visible", {"visible": "0"}, page=page, htmx=True)
    assert toast_of(response) == "Le compte 606400 est masqué dans les choix de codage."
    assert 'aria-pressed="false"' in response.text and ">Non</button>" in response.text

    bookkeeper.post_form(f"{page}/recharger", {}, page=page, htmx=True)
    run_worker_burst(job_app)
    with job_app.app_context():
        account = db.session.get(ListItem, account_id)
        assert account.visible is False and account.active is True
        assert (
            db.session.scalar(
                select(ListSync.status).where(
                    ListSync.integration_id == integration_id, ListSync.kind == ListKind.ACCOUNTS
                )
            )
            is SyncStatus.SUCCEEDED
        )

    shown = bookkeeper.post_form(f"{page}/{account_id}/visible", {"visible": "1"}, page=page, htmx=True)
    assert toast_of(shown) == "Le compte 606400 est visible dans les choix de codage."
    supplier_id = None
    with job_app.app_context():
        supplier_id = db.session.scalar(
            select(ListItem.id).where(ListItem.kind == ListKind.SUPPLIERS).limit(1)
        )
    assert (
        bookkeeper.post_form(
            f"{page}/{supplier_id}/visible", {"visible": "0"}, page=page, htmx=True
        ).status_code
        == 404
    )
