"""In Chromium: connect the demo dossier to 'Compta Démo', refresh its lists, reload one list."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import open_demo_dossier
from tests.http_user import controls_api
from webapp.services.demo import seed_demo

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]


@pytest.fixture
def demo(job_app):
    with job_app.app_context():
        seed_demo()


def test_connect_refresh_and_reload_a_list(page, live, worker, demo):
    open_demo_dossier(page, live.url)
    page.get_by_role("link", name="Paramètres du dossier").click()
    page.get_by_role("navigation", name="Paramètres du dossier").get_by_role(
        "link", name="Connexions"
    ).click()

    card = page.get_by_role("region", name="Logiciels disponibles")
    card.get_by_role("listitem", name="Compta Démo").get_by_role("button", name="Connecter").click()

    # The software's own consent page: pick the company, authorise.
    expect(page.get_by_role("heading", name="Autoriser Raccord")).to_be_visible()
    page.get_by_label("Boulangerie Martin SARL").check()
    page.get_by_role("button", name="Autoriser").click()

    expect(page).to_have_url(re.compile(r"/dossiers/\d+/integrations/\d+$"))
    toasts = page.locator("#toasts")
    expect(toasts).to_contain_text("Compta Démo est connecté à la société « Boulangerie Martin SARL ».")
    lists = page.locator("#lists")
    expect(toasts).to_contain_text("Les listes sont à jour.", timeout=60_000)
    expect(lists.locator("tr[data-list='suppliers'] td").first).to_have_text("30")
    expect(lists.locator("tr[data-list='accounts'] td").first).to_have_text("47")

    # 'Gérer' → 'Actualiser les données de l'intégration': a toast at once, another when done.
    page.get_by_text("Gérer").click()
    page.get_by_role("menuitem", name="Actualiser les données de l'intégration").click()
    expect(toasts).to_contain_text("Le chargement des listes a commencé.")
    expect(lists).to_contain_text("Chargement en cours")
    expect(lists).not_to_contain_text("Chargement en cours", timeout=60_000)
    expect(toasts.get_by_text("Les listes sont à jour.")).to_have_count(2)

    # A supplier added in the software appears after 'Recharger la liste'.
    added = controls_api.post(
        f"{live.url}/sandbox/controls/api/companies/cmp-boulangerie-martin/suppliers",
        json={"name": "Fromagerie des Alpages", "vat_number": "FR40303265045"},
        timeout=10,
    )
    assert added.status_code == 201
    page.get_by_role("navigation", name="Menu du dossier").get_by_role(
        "link", name="Fournisseurs", exact=True
    ).click()
    expect(page.get_by_role("heading", name="Fournisseurs")).to_be_visible()
    page.get_by_label("Rechercher dans fournisseurs").fill("alpages")
    expect(page.locator("#list-results")).to_contain_text("Aucun élément ne correspond à « alpages ».")
    page.get_by_role("button", name="Recharger la liste").click()
    expect(toasts).to_contain_text("Le chargement de la liste « Fournisseurs » a commencé.")
    expect(toasts).to_contain_text("La liste « Fournisseurs » est à jour.", timeout=60_000)
    expect(page.locator("#list-results")).to_contain_text("Fromagerie des Alpages")
    expect(page.locator("#list-results")).to_contain_text("FR40303265045")
