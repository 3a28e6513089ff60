"""In Chromium: 'Mes dossiers' as the cabinet's dashboard. The count « à reconnecter » filters the list,
a filter changes it in place (the address follows), and « Actualiser les données de l'intégration » on
the ticked dossiers answers in the page, without a reload."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.factories import make_dossier, make_integration, make_organisation, make_user
from webapp.models import IntegrationStatus

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]


@pytest.fixture
def cabinet(job_app):
    with job_app.app_context():
        org = make_organisation("Cabinet Lefèvre")
        make_user(org, "claire@lefevre.test", "bon-mot-de-passe")
        make_integration(make_dossier(org, "Boulangerie Martin"))
        make_integration(make_dossier(org, "Hôtel Étoile", "443061841"), company_name="Hôtel Étoile SAS")
        make_integration(
            make_dossier(org, "Garage Lemoine", "552100554"),
            company_name="Garage Lemoine SAS",
            status=IntegrationStatus.EXPIRED,
        )
        make_dossier(org, "Atelier Dupont", "418306447")


def test_filter_select_and_refresh_from_the_dashboard(page, live, cabinet, request):
    page.goto(live.url + "/login")
    page.get_by_label("Adresse e-mail").fill("claire@lefevre.test")
    page.get_by_label("Mot de passe").fill("bon-mot-de-passe")
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("heading", name="Mes dossiers")).to_be_visible()
    rows = page.locator("#dossiers tbody tr")
    expect(rows).to_have_count(4)

    # « 1 à reconnecter »: the expired dossier only.
    page.get_by_role("link", name="1 à reconnecter").click()
    expect(page).to_have_url(re.compile(r"/dossiers\?statut=expiree$"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Garage Lemoine")
    expect(rows.first).to_contain_text("Expirée")

    # From here on the page is never reloaded: a mark left on it must survive.
    page.evaluate("window.sameDocument = true")
    page.get_by_label("Statut").select_option(label="Connectée")
    expect(page).to_have_url(re.compile(r"statut=connectee"))
    expect(rows).to_have_count(2)
    expect(page.locator("#dossiers")).not_to_contain_text("Garage Lemoine")

    # The column header sorts, and says so.
    page.get_by_role("link", name="Dossier", exact=True).click()
    expect(page.locator("th[aria-sort='descending']")).to_contain_text("Dossier")
    expect(rows.first).to_contain_text("Hôtel Étoile")
    expect(page).to_have_url(re.compile(r"statut=connectee.*ordre=desc|ordre=desc.*statut=connectee"))

    page.get_by_label("Tout sélectionner sur cette page").check()
    expect(page.get_by_label("Sélectionner Boulangerie Martin")).to_be_checked()
    expect(page.get_by_label("Sélectionner Hôtel Étoile")).to_be_checked()
    page.get_by_role("button", name="Actualiser les données de l'intégration").click()

    expect(page.locator("#toasts")).to_contain_text("Actualisation lancée pour 2 dossiers.")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Chargement en cours")
    expect(rows.nth(1)).to_contain_text("Chargement en cours")
    expect(rows.first).to_contain_text("Hôtel Étoile")  # the sort kept

    # Every dossier again; a box ticked while the lists load stays ticked as the list follows them.
    page.get_by_label("Statut").select_option(label="Tous les statuts")
    expect(rows).to_have_count(4)
    page.get_by_label("Sélectionner Boulangerie Martin").uncheck()
    page.get_by_label("Sélectionner Hôtel Étoile").check()
    # A worker takes the loads: each row says how they ended, and the counts at the top follow, all
    # without a reload (these companies gave Raccord no access: the software refuses, the rows say so).
    request.getfixturevalue("worker")
    expect(page.locator("#dossiers")).not_to_contain_text("Chargement en cours", timeout=30_000)
    expect(page.get_by_label("Sélectionner Hôtel Étoile")).to_be_checked()
    expect(page.get_by_label("Sélectionner Boulangerie Martin")).not_to_be_checked()
    fresh = page.request.get(live.url + "/dossiers").text()
    counts_now = re.search(r'id="a-traiter"[^>]*>(.*?)</p>', fresh, re.S).group(1)
    reconnect = re.search(r">([^<>]*à reconnecter)<", counts_now).group(1).strip()
    expect(page.locator("#a-traiter")).to_contain_text(reconnect)

    # « A besoin de moi » applies as soon as it is ticked, like the other filters.
    page.get_by_label("A besoin de moi").check()
    expect(page).to_have_url(re.compile(r"besoin=1"))
    expect(page.locator("#dossiers")).not_to_contain_text("Atelier Dupont")
    assert page.evaluate("window.sameDocument") is True
