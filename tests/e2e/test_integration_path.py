"""In Chromium: the demo user goes 'Paramètres du dossier' → 'Connexions' → 'Gérer' → 'Intégration'."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.factories import make_integration
from webapp.extensions import db
from webapp.models import Dossier
from webapp.services.demo import seed_demo

pytestmark = pytest.mark.e2e


@pytest.fixture
def demo_with_integration(live_app):
    with live_app.app_context():
        seed_demo()
        dossier = db.session.scalar(select(Dossier).where(Dossier.name == "Boulangerie Martin"))
        make_integration(dossier, company_name="Boulangerie Martin SARL")


def test_demo_user_reaches_the_integration_page(page, live_server, demo_with_integration):
    page.goto(live_server.url + "/")
    expect(page.get_by_role("heading", name="Connexion à Raccord")).to_be_visible()
    page.get_by_label("Adresse e-mail").fill("demo@raccord.test")
    page.get_by_label("Mot de passe").fill("demo")
    page.get_by_role("button", name="Se connecter").click()

    expect(page.get_by_role("heading", name="Mes dossiers")).to_be_visible()
    page.get_by_role("link", name="Boulangerie Martin").click()

    page.get_by_role("link", name="Paramètres du dossier").click()
    expect(page.get_by_role("heading", name="Paramètres du dossier")).to_be_visible()
    page.get_by_role("navigation", name="Paramètres du dossier").get_by_role(
        "link", name="Connexions"
    ).click()

    card = page.get_by_role("region", name="Logiciels disponibles")
    expect(card).to_contain_text("Compta Démo")
    expect(card).to_contain_text("Connectée")
    card.get_by_role("link", name="Gérer").click()

    expect(page).to_have_url(re.compile(r"/dossiers/\d+/integrations/\d+$"))
    expect(page.get_by_role("heading", name="Intégration", exact=True)).to_be_visible()
    facts = page.locator(".facts")
    expect(facts).to_contain_text("Compta Démo")
    expect(facts).to_contain_text("Boulangerie Martin SARL")
    expect(facts).to_contain_text("Connectée")
    expect(facts).to_contain_text(re.compile(r"depuis le \d{2}/\d{2}/\d{4} à \d{2}:\d{2}"))
    rows = page.locator("#lists tbody tr")
    expect(rows).to_have_count(6)
    expect(rows.locator("th")).to_have_text(
        [
            "Plan comptable",
            "Fournisseurs",
            "Clients",
            "Taux de TVA",
            "Catégories analytiques",
            "Moyens de paiement",
        ]
    )


def test_dossier_search_narrows_the_list_as_one_types(page, live_server, demo_with_integration):
    page.goto(live_server.url + "/login")
    page.get_by_label("Adresse e-mail").fill("demo@raccord.test")
    page.get_by_label("Mot de passe").fill("demo")
    page.get_by_role("button", name="Se connecter").click()
    expect(page.locator("#dossier-list tbody tr")).to_have_count(3)
    page.get_by_label("Rechercher un dossier").fill("atelier")
    expect(page.locator("#dossier-list tbody tr")).to_have_count(1)
    expect(page.locator("#dossier-list")).to_contain_text("Atelier Dupont & Fils")


def test_a_wrong_password_is_explained_in_french(page, live_server, demo_with_integration):
    page.goto(live_server.url + "/login")
    page.get_by_label("Adresse e-mail").fill("demo@raccord.test")
    page.get_by_label("Mot de passe").fill("pas-le-bon")
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_text("Adresse e-mail ou mot de passe incorrect.")).to_be_visible()
    expect(page.get_by_label("Mot de passe")).to_have_attribute("aria-invalid", "true")
