"""In Chromium: connect to each vendor's software through its sandbox dialect's consent page; its lists."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import open_demo_dossier
from webapp.services.demo import seed_demo

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]


@pytest.mark.parametrize(
    ("software", "name", "consent_path"),
    [
        ("xero", "Xero", r"/sandbox/xero/identity/connect/authorize\?"),
        ("quickbooks", "QuickBooks Online", r"/sandbox/quickbooks/connect/oauth2\?"),
        ("pennylane", "Pennylane", r"/sandbox/pennylane/oauth/authorize\?"),
        ("sage", "Sage Business Cloud Comptabilité", r"/sandbox/sage/oauth2/auth/central\?filter=apiv3\.1&"),
    ],
)
def test_connect_and_see_its_lists(page, job_app, live, worker, software, name, consent_path):
    with job_app.app_context():
        seed_demo()
    open_demo_dossier(page, live.url)
    page.get_by_role("link", name="Paramètres du dossier").click()
    page.get_by_role("navigation", name="Paramètres du dossier").get_by_role(
        "link", name="Connexions"
    ).click()

    card = page.get_by_role("region", name="Logiciels disponibles").get_by_role("listitem", name=name)
    expect(card).to_contain_text(f"la version bac à sable de {name}")
    card.get_by_role("button", name="Connecter").click()

    expect(page).to_have_url(re.compile(consent_path))
    expect(page.get_by_role("heading", name="Autoriser Raccord")).to_be_visible()
    page.get_by_label("Boulangerie Martin SARL").check()
    page.get_by_role("button", name="Autoriser").click()

    expect(page).to_have_url(re.compile(r"/dossiers/\d+/integrations/\d+$"))
    toasts = page.locator("#toasts")
    expect(toasts).to_contain_text(f"{name} est connecté à la société « Boulangerie Martin SARL ».")
    expect(toasts).to_contain_text("Les listes sont à jour.", timeout=60_000)
    lists = page.locator("#lists")
    expect(lists.locator("tr[data-list='suppliers'] td").first).to_have_text("30")
    expect(lists.locator("tr[data-list='accounts'] td").first).to_have_text("47")
    expect(lists.locator("tr[data-list='payment_methods'] td").first).to_have_text("5")

    page.get_by_role("navigation", name="Menu du dossier").get_by_role(
        "link", name="Catégories analytiques"
    ).click()
    expect(page.get_by_role("table")).to_contain_text("Établissement : Magasin centre-ville")
