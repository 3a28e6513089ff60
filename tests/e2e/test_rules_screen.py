"""In Chromium: create a supplier rule by searching the supplier, as a bookkeeper would."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import run_worker_burst
from tests.e2e.conftest import open_demo_dossier
from tests.http_user import Browser, connected
from webapp.services.demo import seed_demo

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]


def test_create_a_supplier_rule_from_the_search(page, job_app, live):
    with job_app.app_context():
        seed_demo()
    http = Browser(live.url)
    http.login("demo@raccord.test", "demo")
    connected(job_app, http, 1)
    run_worker_burst(job_app)

    open_demo_dossier(page, live.url)
    page.get_by_role("navigation", name="Menu du dossier").get_by_role(
        "link", name="Règles fournisseurs"
    ).click()
    expect(page.get_by_role("heading", name="Règles fournisseurs")).to_be_visible()
    page.get_by_role("link", name="Nouvelle règle").click()

    page.get_by_label("Fournisseur").fill("edf")
    page.get_by_label("EDF Entreprises").check()
    page.get_by_label("Compte de charge").select_option(
        label="606100 Fournitures non stockables (eau, énergie)"
    )
    page.get_by_label("Taux de TVA").select_option(label="TVA 20 %")
    page.get_by_label("Moyen de paiement").select_option(label="Crédit Agricole - compte courant")
    page.get_by_label("Date d'échéance (jours après la date de facture)").fill("30")
    page.get_by_label("Publication automatique").check()
    page.get_by_role("button", name="Enregistrer").click()

    expect(page.locator("#toasts")).to_contain_text(
        "La règle du fournisseur « EDF Entreprises » est enregistrée."
    )
    row = page.locator("#rules tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("EDF Entreprises")
    expect(row).to_contain_text("606100 Fournitures non stockables (eau, énergie)")
    expect(row).to_contain_text("OK")


def test_a_search_typed_before_the_page_scripts_are_ready_still_runs(page, job_app, live):
    """On a slow machine the supplier box can take keys before htmx has set the page up."""
    with job_app.app_context():
        seed_demo()
    http = Browser(live.url)
    http.login("demo@raccord.test", "demo")
    connected(job_app, http, 1)
    run_worker_burst(job_app)
    open_demo_dossier(page, live.url)
    page.get_by_role("navigation", name="Menu du dossier").get_by_role("link", name="Documents").click()

    # htmx comes after the typing. The browser may ask for it more than once (its preload scanner,
    # then the parser): every request is held until the typing is done, then all go on.
    held: list = []
    released: list = []

    def hold(route) -> None:
        if released:
            route.continue_()
        else:
            held.append(route)

    page.route("**/assets/htmx.min.js*", hold)
    page.get_by_role("link", name="Nouvelle facture d'achat").click(no_wait_after=True)
    page.get_by_label("Fournisseur").fill("edf")
    assert held, "the page did not ask for htmx"
    released.append(True)
    for route in held:
        route.continue_()
    expect(page.get_by_label("EDF Entreprises")).to_be_visible()
