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
    # 'Derniers événements' shows what a reload would show, once every list has ended.
    expect(page.locator("#integration-lists .badge--job-running")).to_have_count(0, timeout=60_000)
    fresh = page.context.new_page()
    fresh.goto(page.url)
    reloaded = events_of(fresh)
    fresh.close()
    assert reloaded != events_before
    expect(page.locator("#integration-evenements li")).to_have_text(reloaded)


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


def test_another_tab_follows_and_what_the_user_types_is_never_replaced(page, job_app, live, worker):
    with job_app.app_context():
        seed_demo()
    http = Browser(live.url)
    http.login("demo@raccord.test", "demo")
    integration_id = connected(job_app, http, 1)
    from tests.e2e.test_expiry_story import add_invoice
    from webapp.models import ListItem, PartyKind, Rule

    with job_app.app_context():
        item = {
            e: db.session.scalar(select(ListItem.id).where(ListItem.external_id == e))
            for e in ("sup-000001", "acc-606100", "tax-TVA20")
        }
        db.session.add(
            Rule(
                dossier_id=1,
                integration_id=integration_id,
                party_kind=PartyKind.SUPPLIER,
                party_id=item["sup-000001"],
                account_id=item["acc-606100"],
                tax_rate_id=item["tax-TVA20"],
            )
        )
        db.session.commit()
    open_demo_dossier(page, live.url)
    add_invoice(page, "F-2026-301")
    add_invoice(page, "F-2026-302")

    # A second tab on the invoice's page, its description being typed but not saved.
    other = page.context.new_page()
    other.goto(page.url)
    other.locator("#documents tbody tr", has_text="F-2026-302").get_by_role("link", name="F-2026-302").click()
    other.get_by_label("Description").fill("Abonnement de novembre")
    # 'Publier' there is refused while the change is not saved.
    other.get_by_role("button", name="Publier").click()
    expect(other.locator("#toasts")).to_contain_text("Le codage a des modifications non enregistrées")
    expect(other.locator("#document-entete")).to_contain_text("Prêt")

    # The first tab publishes the other invoice: the second tab's counts... are on 'Documents' in a
    # third tab, which follows; the invoice page being typed into keeps what was typed.
    counts = page.context.new_page()
    counts.goto(page.url)
    tabs = counts.get_by_role("navigation", name="Filtrer par statut")
    expect(tabs.get_by_role("link", name="Prêt")).to_have_text("Prêt 2")
    row = page.locator("#documents tbody tr", has_text="F-2026-301")
    row.get_by_role("button", name="Publier").click()
    expect(row).to_contain_text("Publié", timeout=60_000)
    expect(tabs.get_by_role("link", name="Publié")).to_have_text("Publié 1")
    expect(tabs.get_by_role("link", name="Prêt")).to_have_text("Prêt 1")
    expect(other.get_by_label("Description")).to_have_value("Abonnement de novembre")

    # Saved, then published from its own page: the page follows, the coding becomes read only.
    other.get_by_role("button", name="Enregistrer le codage").click()
    expect(other.locator("#toasts")).to_contain_text("Codage de la facture F-2026-302 enregistré")
    other.get_by_role("button", name="Publier").click()
    expect(other.locator("#document-entete")).to_contain_text("Publié", timeout=60_000)
    expect(other.locator("#document-faits")).to_contain_text("Dans Compta Démo")
    expect(other.get_by_role("button", name="Enregistrer le codage")).to_have_count(0)
    expect(other.locator("#document-codage")).to_contain_text("Abonnement de novembre")


def test_a_click_that_finds_the_access_already_expired_updates_a_page_left_open(page, job_app, live, worker):
    with job_app.app_context():
        seed_demo()
    http = Browser(live.url)
    http.login("demo@raccord.test", "demo")
    integration_id = connected(job_app, http, 1)
    open_demo_dossier(page, live.url)
    page.goto(f"{live.url}/dossiers/1/integrations/{integration_id}")
    expect(page.locator("#integration-statut")).to_contain_text("Connectée")
    from webapp.services.integrations import mark_expired

    with job_app.app_context():
        mark_expired(integration_id, "expiré ailleurs")  # found by another user's publication, say

    page.get_by_text("Gérer").click()
    page.get_by_role("menuitem", name="Actualiser les données de l'intégration").click()
    expect(page.locator("#toasts")).to_contain_text("a expiré")
    expect(page.locator("#integration-statut")).to_contain_text("Expirée")
    expect(page.locator("#bandeau-integration")).to_contain_text("L'intégration avec Compta Démo a expiré.")
