"""In Chromium, on a phone (390 × 844) and on a laptop (1366 × 768): every page a bookkeeper and the
support reach fits the screen's width (nothing to scroll sideways, the phone never zooms out), the
menus fold behind one button, and the core story (open the dossier, 'Gérer', refresh) works there."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.e2e.conftest import ACTION_TIMEOUT_MS, EXPECT_TIMEOUT_MS
from tests.http_user import Browser, connected
from webapp.extensions import db
from webapp.models import Document, Rule
from webapp.services.demo import finish_demo, seed_demo

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 768}

#: (page, address) for the demo bookkeeper; {i} is the integration, {d} an invoice, {r} a rule.
BOOKKEEPER_PAGES = [
    ("Mes dossiers", "/dossiers"),
    ("Accueil du dossier", "/dossiers/1"),
    ("Documents", "/dossiers/1/documents"),
    ("Une facture", "/dossiers/1/documents/{d}"),
    ("Nouvelle facture d'achat", "/dossiers/1/documents/nouvelle/achat"),
    ("Règles fournisseurs", "/dossiers/1/regles/fournisseurs"),
    ("Une règle fournisseur", "/dossiers/1/regles/fournisseurs/{r}"),
    ("Nouvelle règle fournisseur", "/dossiers/1/regles/fournisseurs/nouvelle"),
    ("Règles clients", "/dossiers/1/regles/clients"),
    ("Règles moyens de paiement", "/dossiers/1/regles/moyens-de-paiement"),
    ("Nouvelle règle moyen de paiement", "/dossiers/1/regles/moyens-de-paiement/nouvelle"),
    ("Plan comptable", "/dossiers/1/listes/accounts"),
    ("Fournisseurs", "/dossiers/1/listes/suppliers"),
    ("Clients", "/dossiers/1/listes/customers"),
    ("Taux de TVA", "/dossiers/1/listes/tax_rates"),
    ("Catégories analytiques", "/dossiers/1/listes/tracking_categories"),
    ("Moyens de paiement", "/dossiers/1/listes/payment_methods"),
    ("Paramètres du dossier › Général", "/dossiers/1/parametres"),
    ("Paramètres du dossier › Connexions", "/dossiers/1/parametres/connexions"),
    ("La page de l'intégration", "/dossiers/1/integrations/{i}"),
    ("Changer de logiciel", "/dossiers/1/integrations/{i}/changer"),
    ("Codage par défaut", "/dossiers/1/parametres/codage"),
    ("Mon profil", "/profil"),
    ("Équipe", "/equipe"),
    ("Équipe › les dossiers d'un membre", "/equipe/membres/2/dossiers"),
    ("Mot de passe oublié", "/mot-de-passe-oublie"),
]
SUPPORT_PAGES = [
    ("Support", "/support"),
    ("Support : une recherche", "/support?q=Martin"),
    ("Support : la page d'un dossier", "/support/dossiers/1"),
    ("Santé des files de tâches", "/support/files"),
]


@pytest.fixture
def demo(job_app, live) -> dict[str, int]:
    """The demo, 'Boulangerie Martin' connected, with its rules and invoices: the ids the pages need."""
    with job_app.app_context():
        seed_demo()
    http = Browser(live.url)
    http.login("demo@raccord.test", "demo")
    integration_id = connected(job_app, http, 1)
    with job_app.app_context():
        finish_demo(integration_id)
        document_id = db.session.scalar(select(Document.id).where(Document.dossier_id == 1).limit(1))
        rule_id = db.session.scalar(select(Rule.id).where(Rule.dossier_id == 1).limit(1))
    return {"i": integration_id, "d": document_id, "r": rule_id}


def new_page(browser, viewport: dict, **options):
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris", viewport=viewport, **options)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return context, page, errors


def log_in(page, base_url: str, email: str, password: str) -> None:
    page.goto(base_url + "/login")
    page.get_by_label("Adresse e-mail").fill(email)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("button", name="Fermer la session")).to_be_visible()


def widths(page) -> tuple[int, int]:
    return tuple(page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]"))


def test_every_page_fits_a_phone_without_sideways_scroll(browser, live, demo):
    # Not is_mobile: a phone's browser widens its layout to what overflows (and zooms out), which
    # would hide the overflow this test looks for. The width stays the phone's.
    context, page, errors = new_page(browser, PHONE, has_touch=True)
    try:
        too_wide = []
        log_in(page, live.url, "demo@raccord.test", "demo")
        for name, path in BOOKKEEPER_PAGES:
            page.goto(live.url + path.format(**demo))
            expect(page.locator("main h1").first).to_be_visible()
            if name == "La page de l'intégration":
                page.get_by_text("Gérer").click()
                expect(page.get_by_role("menuitem", name="Déconnecter")).to_be_visible()
            scroll, inner = widths(page)
            if scroll > inner:
                too_wide.append(f"{name} ({page.url}) : {scroll} px de large pour {inner}")
        page.get_by_role("button", name="Fermer la session").click()
        log_in(page, live.url, "support@raccord.test", "support")
        for name, path in SUPPORT_PAGES:
            page.goto(live.url + path.format(**demo))
            expect(page.locator("main h1").first).to_be_visible()
            scroll, inner = widths(page)
            if scroll > inner:
                too_wide.append(f"{name} ({page.url}) : {scroll} px de large pour {inner}")
        assert too_wide == [], "pages wider than a phone's screen:\n" + "\n".join(too_wide)
        assert errors == []
    finally:
        context.close()


def test_the_core_story_on_a_phone(browser, live, demo, worker):
    context, page, errors = new_page(browser, PHONE, is_mobile=True, has_touch=True)
    try:
        log_in(page, live.url, "demo@raccord.test", "demo")
        page.get_by_role("link", name="Boulangerie Martin").click()
        expect(page.locator("main h1")).to_contain_text("Boulangerie Martin")
        assert widths(page) == (390, 390), "the dossier's home is wider than the phone (it zooms out)"

        # The dossier's menu is folded behind one button; open, it leads to the settings.
        menu_button = page.get_by_role("button", name="Menu du dossier")
        menu = page.get_by_role("navigation", name="Menu du dossier")
        settings = page.get_by_role("link", name="Paramètres du dossier")
        expect(menu_button).to_have_attribute("aria-expanded", "false")
        expect(menu).to_be_hidden()
        expect(settings).to_be_hidden()
        menu_button.tap()
        expect(menu_button).to_have_attribute("aria-expanded", "true")
        expect(menu.get_by_role("link", name="Documents")).to_be_visible()
        settings.tap()

        # The settings' own menu, folded too, opens from the keyboard; Esc folds it back.
        expect(page.get_by_role("heading", name="Paramètres du dossier")).to_be_visible()
        connections = page.get_by_role("link", name="Connexions")
        expect(connections).to_be_hidden()
        settings_button = page.get_by_role("button", name="Menu des paramètres")
        settings_button.focus()
        page.keyboard.press("Enter")
        expect(settings_button).to_have_attribute("aria-expanded", "true")
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="Général")).to_be_focused()
        page.keyboard.press("Escape")
        expect(connections).to_be_hidden()
        expect(settings_button).to_be_focused()
        page.keyboard.press("Space")
        connections.tap()
        page.get_by_role("link", name="Gérer").tap()

        # On the integration's page, 'Gérer' is on the screen, and so are its items once open.
        expect(page.locator("#integration-statut")).to_contain_text("Connectée")
        assert widths(page) == (390, 390), "the integration's page is wider than the phone"
        manage = page.get_by_text("Gérer")
        expect(manage).to_be_in_viewport()
        manage.tap()
        refresh = page.get_by_role("menuitem", name="Actualiser les données de l'intégration")
        expect(refresh).to_be_in_viewport()
        box = refresh.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, f"'Actualiser…' is off the screen: {box}"
        page.evaluate("window.notReloaded = true")
        refresh.tap()

        # The refresh ends on the page as it is, without a reload.
        expect(page.locator("#integration-lists .badge--job-running")).to_have_count(0, timeout=60_000)
        expect(page.locator("#toasts")).to_contain_text("Les listes sont à jour.", timeout=60_000)
        assert page.evaluate("window.notReloaded") is True
        assert widths(page) == (390, 390)
        assert errors == []
    finally:
        context.close()


def test_the_settings_link_stays_at_the_bottom_left_on_a_laptop(browser, live, demo):
    context, page, errors = new_page(browser, DESKTOP)
    try:
        log_in(page, live.url, "demo@raccord.test", "demo")
        page.goto(f"{live.url}/dossiers/1/listes/suppliers")
        # No menu button on a laptop: the menu is there as it is.
        expect(page.get_by_role("button", name="Menu du dossier")).to_be_hidden()
        settings = page.get_by_role("link", name="Paramètres du dossier")
        expect(settings).to_be_in_viewport()
        height = page.evaluate("document.documentElement.scrollHeight")
        assert height > 2 * DESKTOP["height"], f"the suppliers' page is too short to test ({height} px)"
        page.mouse.wheel(0, height)
        at_the_end = "window.scrollY + window.innerHeight >= document.documentElement.scrollHeight - 2"
        # Polled from here: the page's CSP forbids the eval that wait_for_function's polling needs.
        deadline = time.monotonic() + 10
        while not page.evaluate(at_the_end):
            assert time.monotonic() < deadline, "the page did not scroll to its end"
            page.mouse.wheel(0, height)
            page.wait_for_timeout(50)
        expect(settings).to_be_in_viewport()
        box = settings.bounding_box()
        assert box["x"] < 300, f"'Paramètres du dossier' is not on the left: {box}"
        assert box["y"] + box["height"] > DESKTOP["height"] - 120, f"not at the bottom of the screen: {box}"
        assert box["y"] + box["height"] <= DESKTOP["height"], f"below the screen: {box}"
        settings.click()
        expect(page.get_by_role("heading", name="Paramètres du dossier")).to_be_visible()
        assert errors == []
    finally:
        context.close()
