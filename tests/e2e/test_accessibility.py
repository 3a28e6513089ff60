"""In Chromium, with axe-core: every page a bookkeeper and the support staff reach has no WCAG 2.0/2.1
A or AA violation, and what axe leaves for review about colour contrast is measured here. Then 'Gérer'
and the 'Déconnecter' dialog with the keyboard alone."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect
from sqlalchemy import select

from tests.http_user import Browser, connected
from webapp.extensions import db
from webapp.models import (
    Direction,
    Document,
    DocumentStatus,
    Integration,
    ListItem,
    ListKind,
    PartyKind,
    Rule,
)
from webapp.models.rules import PaymentRule
from webapp.services.demo import seed_demo

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]

WCAG_A_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

# The contrast of a text against what is behind it: its colour over the first opaque background of its
# ancestors (translucent ones blended on the way), WCAG's relative luminance. Large text: 24px, or
# 18.66px bold.
MEASURE_CONTRAST = """
element => {
  const parse = c => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) { return [0, 0, 0, 0]; }
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, bottom) => [0, 1, 2].map(i => top[i] * top[3] + bottom[i] * (1 - top[3])).concat([1]);
  const layers = [];
  for (let node = element; node && node.nodeType === 1; node = node.parentElement) {
    const bg = parse(getComputedStyle(node).backgroundColor);
    if (bg[3] > 0) { layers.push(bg); if (bg[3] === 1) { break; } }
  }
  let background = [255, 255, 255, 1];
  for (let i = layers.length - 1; i >= 0; i--) { background = over(layers[i], background); }
  const style = getComputedStyle(element);
  const color = over(parse(style.color), background);
  const channel = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const luminance = c => 0.2126 * channel(c[0]) + 0.7152 * channel(c[1]) + 0.0722 * channel(c[2]);
  const [a, b] = [luminance(color), luminance(background)].sort((x, y) => y - x);
  const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
  return { ratio: (a + 0.05) / (b + 0.05), large: size >= 24 || (bold && size >= 18.66) };
}
"""


def audit(page, axe: Axe, name: str) -> list[str]:
    """What is wrong on the page as it is now: axe's violations, and the contrasts axe left for review
    that measure below 4.5:1 (3:1 for large text)."""
    found = axe.run(
        page,
        options={
            "runOnly": {"type": "tag", "values": WCAG_A_AA},
            "resultTypes": ["violations", "incomplete"],
        },
    ).response
    problems = [
        f"{name}: {v['id']} ({v['help']}) at {[n['target'] for n in v['nodes']]}" for v in found["violations"]
    ]
    for review in found["incomplete"]:
        if review["id"] != "color-contrast":
            continue
        for node in review["nodes"]:
            target = node["target"][0]
            if not isinstance(target, str):
                continue
            element = page.locator(target).first
            measured = element.evaluate(MEASURE_CONTRAST)
            needed = 3.0 if measured["large"] else 4.5
            if measured["ratio"] < needed:
                problems.append(f"{name}: contrast {measured['ratio']:.2f}:1 < {needed}:1 at {target}")
    return problems


def sign_in(page, base_url: str, email: str, password: str) -> None:
    page.goto(base_url + "/login")
    page.get_by_label("Adresse e-mail").fill(email)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("button", name="Fermer la session")).to_be_visible()


def seed_story(job_app, live) -> dict[str, int]:
    """The demo, connected to 'Compta Démo' with its lists, a supplier rule, a payment rule, an invoice."""
    with job_app.app_context():
        seed_demo()
    http = Browser(live.url)
    http.login("demo@raccord.test", "demo")
    integration_id = connected(job_app, http, 1)
    with job_app.app_context():

        def item(kind, **where):
            query = select(ListItem).where(ListItem.integration_id == integration_id, ListItem.kind == kind)
            for column, value in where.items():
                query = query.where(getattr(ListItem, column) == value)
            return db.session.scalars(query).first()

        edf = item(ListKind.SUPPLIERS, name="EDF Entreprises")
        account = item(ListKind.ACCOUNTS)
        rule = Rule(
            dossier_id=1,
            integration_id=integration_id,
            party_kind=PartyKind.SUPPLIER,
            party_id=edf.id,
            account_id=account.id,
        )
        payment = PaymentRule(dossier_id=1, integration_id=integration_id, direction=Direction.PURCHASE)
        document = Document(
            dossier_id=1,
            integration_id=integration_id,
            direction=Direction.PURCHASE,
            party_id=edf.id,
            number="F-2026-118",
            issue_date=date(2026, 11, 3),
            amount_ht=Decimal("100.00"),
            amount_tva=Decimal("20.00"),
            amount_ttc=Decimal("120.00"),
            status=DocumentStatus.TO_REVIEW,
        )
        db.session.add_all([rule, payment, document])
        db.session.commit()
        return {
            "integration": integration_id,
            "rule": rule.id,
            "payment": payment.id,
            "document": document.id,
        }


def test_every_page_of_the_story_passes_axe_at_wcag_a_and_aa(page, job_app, live):
    ids = seed_story(job_app, live)
    axe = Axe()
    base = live.url
    problems: list[str] = []

    page.goto(base + "/login")
    # The audit finds what is wrong: an image without a text alternative, and a grey too pale to read.
    page.evaluate(
        """() => {
          const main = document.getElementById('contenu');
          main.insertAdjacentHTML('beforeend', '<img src="data:," width="4" height="4">');
          main.insertAdjacentHTML('beforeend', '<p id="pale">Texte pâle</p>');
          document.getElementById('pale').style.color = '#aaa';  // the CSSOM, which the CSP allows
        }"""
    )
    caught = " ".join(audit(page, axe, "Essai"))
    assert "image-alt" in caught and "color-contrast" in caught
    page.goto(base + "/login")
    problems += audit(page, axe, "Connexion")
    sign_in(page, base, "demo@raccord.test", "demo")
    dossier = f"{base}/dossiers/1"
    integration = f"{dossier}/integrations/{ids['integration']}"
    pages = {
        "Mes dossiers": f"{base}/dossiers",
        "Accueil du dossier": dossier,
        "Documents": f"{dossier}/documents",
        "Facture": f"{dossier}/documents/{ids['document']}",
        "Règles fournisseurs": f"{dossier}/regles/fournisseurs",
        "Règles clients": f"{dossier}/regles/clients",
        "Règle fournisseur": f"{dossier}/regles/fournisseurs/{ids['rule']}",
        "Nouvelle règle": f"{dossier}/regles/fournisseurs/nouvelle",
        "Règles moyens de paiement": f"{dossier}/regles/moyens-de-paiement",
        "Règle moyen de paiement": f"{dossier}/regles/moyens-de-paiement/{ids['payment']}",
        **{f"Liste {kind.label}": f"{dossier}/listes/{kind.value}" for kind in ListKind},
        "Général": f"{dossier}/parametres",
        "Connexions": f"{dossier}/parametres/connexions",
        "Changer de logiciel": f"{integration}/changer",
        "Codage par défaut": f"{dossier}/parametres/codage",
        "Profil": f"{base}/profil",
    }
    for name, address in pages.items():
        page.goto(address)
        problems += audit(page, axe, name)

    page.goto(integration)
    problems += audit(page, axe, "Intégration")
    page.get_by_role("button", name="Gérer").click()
    expect(page.get_by_role("menu")).to_be_visible()
    problems += audit(page, axe, "Intégration, Gérer ouvert")
    page.get_by_role("menuitem", name="Déconnecter").click()
    expect(page.get_by_role("dialog", name="Déconnecter Compta Démo ?")).to_be_visible()
    problems += audit(page, axe, "Dialogue Déconnecter")
    page.keyboard.press("Escape")

    # The rule picker's results, announced.
    page.goto(f"{dossier}/regles/clients/nouvelle")
    page.get_by_label("Client").fill("zzz-personne")
    expect(page.locator("#annonce-recherche")).to_have_text("Aucun résultat")
    problems += audit(page, axe, "Recherche de tiers")

    page.get_by_role("button", name="Fermer la session").click()
    sign_in(page, base, "support@raccord.test", "support")
    for name, address in {
        "Support": f"{base}/support?q=Boulangerie",
        "Support, dossier": f"{base}/support/dossiers/1",
        "Files de tâches": f"{base}/support/files",
    }.items():
        page.goto(address)
        problems += audit(page, axe, name)

    assert problems == []


def open_integration(page, job_app, live) -> None:
    """The demo dossier connected (its lists left to load: these tests are about the header's actions)."""
    with job_app.app_context():
        seed_demo()
    http = Browser(live.url)
    http.login("demo@raccord.test", "demo")
    assert http.connect(1, software="sandbox").status_code == 200
    with job_app.app_context():
        integration_id = db.session.scalar(select(Integration.id).where(Integration.dossier_id == 1))
    sign_in(page, live.url, "demo@raccord.test", "demo")
    page.goto(f"{live.url}/dossiers/1/integrations/{integration_id}")


def focused(page) -> str:
    return page.evaluate("document.activeElement.textContent.trim()")


def test_gerer_is_a_menu_button_the_keyboard_can_use(page, job_app, live):
    open_integration(page, job_app, live)
    gerer = page.get_by_role("button", name="Gérer")
    menu = page.get_by_role("menu")
    expect(gerer).to_have_attribute("aria-haspopup", "menu")
    expect(gerer).to_have_attribute("aria-expanded", "false")
    expect(menu).to_be_hidden()

    gerer.focus()
    page.keyboard.press("Enter")
    expect(menu).to_be_visible()
    expect(gerer).to_have_attribute("aria-expanded", "true")
    assert focused(page) == "Actualiser les données de l'intégration"
    page.keyboard.press("ArrowDown")
    assert focused(page) == "Changer de logiciel"
    page.keyboard.press("End")
    assert focused(page) == "Déconnecter"
    page.keyboard.press("ArrowDown")
    assert focused(page) == "Actualiser les données de l'intégration"
    page.keyboard.press("ArrowUp")
    assert focused(page) == "Déconnecter"
    page.keyboard.press("Home")
    assert focused(page) == "Actualiser les données de l'intégration"

    # A job's end refreshes the page's regions, the menu's among them: it stays open, the focus on its item.
    page.evaluate("document.getElementById('integration-entete').dataset.old = 'oui'")
    page.keyboard.press("ArrowDown")
    page.evaluate("htmx.trigger(document.body, 'raccord:integration-changed')")
    expect(page.locator("#integration-entete:not([data-old])")).to_have_count(1)
    expect(menu).to_be_visible()
    assert focused(page) == "Changer de logiciel"

    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(gerer).to_be_focused()
    expect(gerer).to_have_attribute("aria-expanded", "false")

    page.keyboard.press("ArrowDown")
    expect(menu).to_be_visible()
    assert focused(page) == "Actualiser les données de l'intégration"
    page.keyboard.press("Tab")
    expect(menu).to_be_hidden()

    gerer.click()
    expect(menu).to_be_visible()
    page.get_by_role("heading", name="Derniers événements").click()
    expect(menu).to_be_hidden()


def test_closing_the_disconnect_dialog_gives_the_focus_back_to_gerer(page, job_app, live):
    open_integration(page, job_app, live)
    gerer = page.get_by_role("button", name="Gérer")
    dialog = page.get_by_role("dialog", name="Déconnecter Compta Démo ?")
    gerer.focus()
    page.keyboard.press("ArrowUp")
    assert focused(page) == "Déconnecter"
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(gerer).to_be_focused()

    gerer.click()
    page.get_by_role("menuitem", name="Déconnecter").click()
    dialog.get_by_role("button", name="Annuler").click()
    expect(dialog).to_have_count(0)
    expect(gerer).to_be_focused()
