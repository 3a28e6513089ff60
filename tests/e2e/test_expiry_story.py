"""In Chromium, the story of an expiry: publish, expire, fail, reconnect, republish: two invoices upstream."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.conftest import run_worker_burst
from tests.e2e.conftest import open_demo_dossier
from tests.http_user import COMPANY, Browser, connected, controls_api
from webapp.extensions import db
from webapp.models import ListItem, PartyKind, Rule
from webapp.services.demo import seed_demo

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]


def rule_snapshot(job_app) -> tuple:
    with job_app.app_context():
        rule = db.session.scalar(select(Rule))
        return (
            rule.party_id,
            rule.account_id,
            rule.tax_rate_id,
            rule.payment_method_id,
            rule.due_days,
            rule.paid,
            rule.currency,
            rule.description,
            rule.reverse_charge,
            rule.auto_publish,
            rule.updated_at,
        )


def add_invoice(page, number: str) -> None:
    page.get_by_role("navigation", name="Menu du dossier").get_by_role("link", name="Documents").click()
    page.get_by_role("link", name="Nouvelle facture d'achat").click()
    page.get_by_label("Fournisseur").fill("edf")
    page.get_by_label("EDF Entreprises").check()
    page.get_by_label("Numéro de facture").fill(number)
    page.get_by_label("Date de facture").fill("2026-11-02")
    page.get_by_label("Montant HT").fill("100,00")
    page.get_by_label("Montant TVA").fill("20,00")
    page.get_by_label("Montant TTC").fill("120,00")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.locator("#toasts")).to_contain_text(f"Facture {number} ajoutée : Prêt.")


def test_expiry_story(page, job_app, live, worker):
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
                due_days=30,
                description="Électricité",
            )
        )
        db.session.commit()
    rule_before = rule_snapshot(job_app)
    invoices = f"{live.url}/sandbox/controls/api/companies/{COMPANY}/invoices"

    open_demo_dossier(page, live.url)

    add_invoice(page, "F-2026-101")
    row = page.locator("#documents tbody tr", has_text="F-2026-101")
    row.get_by_role("button", name="Publier").click()
    expect(row).to_contain_text("Publié", timeout=60_000)
    assert len(controls_api.get(invoices, timeout=10).json()["items"]) == 1

    controls_api.post(f"{live.url}/sandbox/controls/api/companies/{COMPANY}/expire", json={}, timeout=10)
    add_invoice(page, "F-2026-102")
    row = page.locator("#documents tbody tr", has_text="F-2026-102")
    row.get_by_role("button", name="Publier").click()
    expect(row).to_contain_text("Intégration expirée", timeout=60_000)
    # Without a reload, the rest of the page tells the same story: the counts, the banner.
    tabs = page.get_by_role("navigation", name="Filtrer par statut")
    expect(tabs.get_by_role("link", name="Échec")).to_have_text("Échec 1")
    expect(tabs.get_by_role("link", name="Prêt")).to_have_text("Prêt 0")
    banner = page.locator("#bandeau-integration").get_by_role("alert")
    expect(banner).to_contain_text("L'intégration avec Compta Démo a expiré.")
    # The invoice's own page offers to publish it again.
    row.get_by_role("link", name="F-2026-102").click()
    expect(page.locator("#document-entete")).to_contain_text("Échec")
    expect(page.get_by_role("button", name="Republier")).to_be_visible()
    page.go_back()

    banner.get_by_role("link", name="Se reconnecter").click()
    page.get_by_role("button", name="Se reconnecter").click()
    page.get_by_label("Boulangerie Martin SARL").check()
    page.get_by_role("button", name="Autoriser").click()
    expect(page.locator("#toasts")).to_contain_text(
        "L'intégration avec Compta Démo est de nouveau connectée."
    )
    assert rule_snapshot(job_app) == rule_before

    page.get_by_role("button", name="Republier les factures en échec (1)").click()
    expect(page.locator("#toasts")).to_contain_text("Publication relancée pour 1 facture.")
    row = page.locator("#documents tbody tr", has_text="F-2026-102")
    expect(row).to_contain_text("Publié", timeout=60_000)
    upstream = controls_api.get(invoices, timeout=10).json()["items"]
    assert sorted(i["payload"]["number"] for i in upstream) == ["F-2026-101", "F-2026-102"]
