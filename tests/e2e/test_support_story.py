"""In Chromium, the support's story: an invoice of the demo dossier fails on an expired connection;
staff find the dossier, read why, look at it as the user (read only), reproduce it in the sandbox
and replay 'Se reconnecter' in the copy, which leaves the user's dossier as it was."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.conftest import run_worker_burst
from tests.e2e.conftest import open_demo_dossier
from tests.e2e.test_expiry_story import add_invoice
from tests.http_user import COMPANY, Browser, connected, controls_api
from webapp.extensions import db
from webapp.models import Dossier, Integration, IntegrationStatus, ListItem, PartyKind, Rule
from webapp.services.demo import seed_demo

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]


# The refused 'Publier' while viewing as the user: Chromium and htmx log the 403 they received.
@pytest.mark.console_errors(
    r"status of 403 \(FORBIDDEN\)", r"Response Status Error Code 403 from /dossiers/1/documents/1/publier"
)
def test_support_story(page, job_app, live, worker):
    with job_app.app_context():
        seed_demo()
    http = Browser(live.url)
    http.login("demo@raccord.test", "demo")
    integration_id = connected(job_app, http, 1)
    run_worker_burst(job_app)
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

    # The user: the connection expires, an invoice fails.
    open_demo_dossier(page, live.url)
    controls_api.post(f"{live.url}/sandbox/controls/api/companies/{COMPANY}/expire", json={}, timeout=10)
    add_invoice(page, "F-2026-102")
    row = page.locator("#documents tbody tr", has_text="F-2026-102")
    row.get_by_role("button", name="Publier").click()
    expect(row).to_contain_text("Intégration expirée", timeout=60_000)
    page.get_by_role("button", name="Fermer la session").click()

    # Staff find the dossier and read why.
    page.get_by_label("Adresse e-mail").fill("support@raccord.test")
    page.get_by_label("Mot de passe").fill("support")
    page.get_by_role("button", name="Se connecter").click()
    page.get_by_role("navigation", name="Navigation principale").get_by_role("link", name="Support").click()
    page.get_by_label("Trouver un dossier").fill("demo@raccord")
    results = page.locator("#support-results")
    expect(results).to_contain_text("Cabinet Démo")
    results.get_by_role("link", name="Boulangerie Martin").click()
    failures = page.locator(
        "section", has=page.get_by_role("heading", name="Documents en échec ou en attente")
    )
    expect(failures).to_contain_text("F-2026-102")
    expect(failures).to_contain_text("Intégration expirée")
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Échec de la publication de la facture F-2026-102")
    page.get_by_label("Résultat").select_option("failed")
    expect(timeline).not_to_contain_text("Connexion à Compta Démo")
    expect(timeline).to_contain_text("Échec de la publication de la facture F-2026-102")

    # As the user, read only: the screens, a banner, and an action refused.
    page.get_by_role("button", name="Voir comme l'utilisateur").click()
    expect(page.locator("#voir-comme")).to_contain_text("comme Camille Demo, en lecture seule")
    page.get_by_role("navigation", name="Menu du dossier").get_by_role("link", name="Documents").click()
    row = page.locator("#documents tbody tr", has_text="F-2026-102")
    expect(row).to_contain_text("Échec")
    row.get_by_role("button", name="Publier").click()
    expect(page.locator("#toasts")).to_contain_text(
        "Lecture seule : vous voyez ce dossier comme Camille Demo."
    )
    page.get_by_role("button", name="Quitter la vue utilisateur").click()
    expect(page.get_by_role("heading", name="Boulangerie Martin", level=1)).to_be_visible()

    # Reproduce it in the sandbox, open the copy.
    page.get_by_role("button", name="Reproduire dans le bac à sable").click()
    expect(page.locator("#toasts")).to_contain_text("La reproduction a commencé")
    jobs = page.locator("#taches")
    expect(jobs).to_contain_text("Terminé", timeout=60_000)
    jobs.get_by_role("link", name="Ouvrir").click()
    expect(page.locator("main")).to_contain_text("Ce dossier est une reproduction de")
    expect(page.locator("main")).to_contain_text("Expirée")
    page.get_by_role("link", name="Ouvrir ses écrans").click()

    # Replay 'Se reconnecter' in the copy.
    banner = page.locator("#bandeau-integration").get_by_role("alert")
    expect(banner).to_contain_text("L'intégration avec Compta Démo a expiré.")
    banner.get_by_role("link", name="Se reconnecter").click()
    page.get_by_role("button", name="Se reconnecter").click()
    page.get_by_label(re.compile(r"Boulangerie Martin SARL \(reproduction n° \d+\)")).check()
    page.get_by_role("button", name="Autoriser").click()
    expect(page.locator("#toasts")).to_contain_text(
        "L'intégration avec Compta Démo est de nouveau connectée."
    )
    expect(page.locator("#evenements-titre")).to_be_visible()

    with job_app.app_context():
        copy = db.session.scalar(select(Dossier).where(Dossier.reproduced_from_id == 1))
        assert copy.current_integration.status is IntegrationStatus.CONNECTED
        assert db.session.get(Integration, integration_id).status is IntegrationStatus.EXPIRED
