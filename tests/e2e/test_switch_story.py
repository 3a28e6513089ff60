"""In Chromium, the seed's story: change software, transfer the rules, disconnect keeping them, reconnect."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from sandbox.models import SandboxGrant
from tests.e2e.conftest import open_demo_dossier
from tests.http_user import Browser, connected
from webapp.extensions import db
from webapp.models import Integration, IntegrationStatus, ListItem, PartyKind, Rule
from webapp.services.demo import seed_demo

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]


def consent(page) -> None:
    expect(page.get_by_role("heading", name="Autoriser Raccord")).to_be_visible()
    page.get_by_label("Boulangerie Martin SARL").check()
    page.get_by_role("button", name="Autoriser").click()


def test_change_software_transfer_the_rules_disconnect_and_find_them_again(page, job_app, live, worker):
    with job_app.app_context():
        seed_demo()
    http = Browser(live.url)
    http.login("demo@raccord.test", "demo")
    old_id = connected(job_app, http, 1)
    with job_app.app_context():
        edf = db.session.scalar(
            select(ListItem).where(ListItem.integration_id == old_id, ListItem.name == "EDF Entreprises")
        )
        account = db.session.scalar(
            select(ListItem).where(ListItem.integration_id == old_id, ListItem.code == "606100")
        )
        db.session.add(
            Rule(
                dossier_id=1,
                integration_id=old_id,
                party_kind=PartyKind.SUPPLIER,
                party_id=edf.id,
                account_id=account.id,
            )
        )
        db.session.commit()

    open_demo_dossier(page, live.url)
    page.goto(f"{live.url}/dossiers/1/integrations/{old_id}")
    page.get_by_text("Gérer").click()
    page.get_by_role("menuitem", name="Changer de logiciel").click()
    xero = page.get_by_role("listitem", name="Xero")
    expect(xero).to_contain_text("Guide de démarrage")
    xero.get_by_role("button", name="Connecter Xero").click()
    consent(page)
    toasts = page.locator("#toasts")
    expect(toasts).to_contain_text("Xero remplace Compta Démo")
    expect(toasts).to_contain_text("Les listes sont à jour.", timeout=60_000)
    with job_app.app_context():
        assert db.session.get(Integration, old_id).status is IntegrationStatus.DISCONNECTED
        assert (
            db.session.scalars(select(SandboxGrant).order_by(SandboxGrant.id)).first().revoked_at is not None
        )

    # The lists have loaded: 'Transférer les règles' is offered, without a reload.
    page.get_by_role("button", name="Transférer les règles").click()
    expect(page.get_by_text("Transfert terminé : 1 règle transférée entière")).to_be_visible(timeout=60_000)
    page.get_by_role("link", name="EDF Entreprises").click()
    expect(page.get_by_role("heading", name="Règle du fournisseur « EDF Entreprises »")).to_be_visible()
    with job_app.app_context():
        xero_id = db.session.scalar(select(Integration.id).where(Integration.software == "xero"))
        new = db.session.scalar(select(Rule).where(Rule.integration_id == xero_id))
        assert new.party.integration_id == xero_id and new.account.code == "606100"

    page.goto(f"{live.url}/dossiers/1/integrations/{xero_id}")
    page.get_by_text("Gérer").click()
    page.get_by_role("menuitem", name="Déconnecter").click()
    page.get_by_role("dialog").get_by_role("button", name="Déconnecter").click()
    expect(toasts).to_contain_text("L'intégration avec Xero est déconnectée. Les règles sont conservées.")

    page.get_by_role("region", name="Logiciels disponibles").get_by_role("listitem", name="Xero").get_by_role(
        "button", name="Connecter"
    ).click()
    consent(page)
    expect(page).to_have_url(re.compile(r"/dossiers/1/integrations/\d+$"))
    expect(toasts).to_contain_text("Les listes sont à jour.", timeout=60_000)
    page.get_by_role("navigation", name="Menu du dossier").get_by_role(
        "link", name="Règles fournisseurs"
    ).click()
    expect(page.get_by_role("heading", name="À transférer (1)")).to_be_visible()
    expect(page.locator("#kept-rules")).to_contain_text("EDF Entreprises")
