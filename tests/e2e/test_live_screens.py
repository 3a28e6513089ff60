"""In Chromium, screens that tell the truth by themselves: when a job ends, every region of the page
that shows its outcome changes, without a reload (the status badge, the banner, the header's
actions, the events, the support's jobs and copies)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.e2e.conftest import open_demo_dossier
from tests.http_user import COMPANY, Browser, connected, controls_api
from webapp.extensions import db
from webapp.models import Dossier
from webapp.services.demo import seed_demo

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]


def events_of(page) -> list[str]:
    return [" ".join(text.split()) for text in page.locator("#integration-evenements li").all_inner_texts()]


def test_a_refresh_that_finds_the_access_expired_changes_the_whole_page(page, job_app, live, worker):
    with job_app.app_context():
        seed_demo()
    http = Browser(live.url)
    http.login("demo@raccord.test", "demo")
    integration_id = connected(job_app, http, 1)

    open_demo_dossier(page, live.url)
    page.goto(f"{live.url}/dossiers/1/integrations/{integration_id}")
    status = page.locator("#integration-statut")
    expect(status).to_contain_text("Connectée")
    events_before = events_of(page)
    controls_api.post(f"{live.url}/sandbox/controls/api/companies/{COMPANY}/expire", json={}, timeout=10)

    page.get_by_text("Gérer").click()
    page.get_by_role("menuitem", name="Actualiser les données de l'intégration").click()
    expect(page.locator("#integration-lists")).to_contain_text("a expiré", timeout=60_000)

    # No reload: the badge, the banner, the notice and the header's first action agree with the lists.
    expect(status).to_contain_text("Expirée")
    expect(status).not_to_contain_text("Connectée")
    banner = page.locator("#bandeau-integration").get_by_role("alert")
    expect(banner).to_contain_text("L'intégration avec Compta Démo a expiré.")
    expect(page.locator("#integration-etat")).to_contain_text("Les listes ne sont plus mises à jour.")
    expect(page.locator("#integration-entete").get_by_role("button", name="Se reconnecter")).to_have_class(
        "button button--primary"
    )
    # 'Derniers événements' shows what a reload would show: the expiry is there.
    expect(page.locator("#integration-evenements")).to_contain_text("expiré")
    shown = events_of(page)
    assert shown != events_before
    fresh = page.context.new_page()
    fresh.goto(page.url)
    assert events_of(fresh) == shown
    fresh.close()


def test_after_a_change_of_software_the_transfer_is_offered_once_the_lists_have_loaded(
    page, job_app, live, worker
):
    with job_app.app_context():
        seed_demo()
    http = Browser(live.url)
    http.login("demo@raccord.test", "demo")
    old_id = connected(job_app, http, 1)
    from webapp.models import ListItem, PartyKind, Rule

    with job_app.app_context():
        edf = db.session.scalar(
            select(ListItem).where(ListItem.integration_id == old_id, ListItem.name == "EDF Entreprises")
        )
        db.session.add(
            Rule(dossier_id=1, integration_id=old_id, party_kind=PartyKind.SUPPLIER, party_id=edf.id)
        )
        db.session.commit()

    open_demo_dossier(page, live.url)
    page.goto(f"{live.url}/dossiers/1/integrations/{old_id}")
    page.get_by_text("Gérer").click()
    page.get_by_role("menuitem", name="Changer de logiciel").click()
    page.get_by_role("listitem", name="Xero").get_by_role("button", name="Connecter Xero").click()
    page.get_by_label("Boulangerie Martin SARL").check()
    page.get_by_role("button", name="Autoriser").click()
    transfer = page.get_by_role("button", name="Transférer les règles")
    expect(page.locator("#toasts")).to_contain_text("Les listes sont à jour.", timeout=60_000)
    expect(transfer).to_be_enabled()
    expect(page.locator("#integration-etat")).not_to_contain_text("auront fini de se charger")


def test_support_sees_the_copy_and_its_job_without_a_reload(page, job_app, live, worker):
    with job_app.app_context():
        seed_demo()
    http = Browser(live.url)
    http.login("demo@raccord.test", "demo")
    connected(job_app, http, 1)

    page.goto(live.url + "/login")
    page.get_by_label("Adresse e-mail").fill("support@raccord.test")
    page.get_by_label("Mot de passe").fill("support")
    page.get_by_role("button", name="Se connecter").click()
    page.goto(f"{live.url}/support/dossiers/1")
    expect(page.locator("#reproductions")).to_be_empty()

    page.get_by_role("button", name="Reproduire dans le bac à sable").click()
    expect(page.locator("#toasts")).to_contain_text(
        "La reproduction a commencé : elle apparaît dans « Tâches »."
    )
    job = page.locator("#taches li", has_text="Reproduction de « Boulangerie Martin » dans le bac à sable")
    expect(job).to_contain_text("Terminé", timeout=60_000)
    with job_app.app_context():
        copy = db.session.scalar(select(Dossier).where(Dossier.reproduced_from_id == 1))
    copies = page.locator("#reproductions")
    expect(copies).to_contain_text(copy.name)
    copies.get_by_role("link", name=copy.name).click()
    expect(page.locator("main")).to_contain_text("Ce dossier est une reproduction de")
