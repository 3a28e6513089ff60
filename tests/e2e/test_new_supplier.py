"""In Chromium: default coding, an invoice of a new supplier, held, agreed, published with its PDF."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import run_worker_burst
from tests.e2e.conftest import open_demo_dossier
from tests.http_user import COMPANY, Browser, connected, controls_api
from webapp.services.demo import seed_demo

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def test_new_supplier_waits_for_agreement_then_is_created_and_the_invoice_published(
    page, job_app, live, tmp_path
):
    with job_app.app_context():
        seed_demo()
    http = Browser(live.url)
    http.login("demo@raccord.test", "demo")
    connected(job_app, http, 1)

    open_demo_dossier(page, live.url)
    page.get_by_role("link", name="Paramètres du dossier").click()
    page.get_by_label("M'avertir avant de créer un fournisseur").check()
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.locator("#toasts")).to_contain_text("Les paramètres du dossier sont enregistrés.")

    page.get_by_role("navigation", name="Paramètres du dossier").get_by_role(
        "link", name="Codage par défaut"
    ).click()
    purchases = page.get_by_role("region", name="Achats")
    purchases.get_by_label("Compte de charge").select_option(label="606400 Fournitures administratives")
    purchases.get_by_label("Taux de TVA").select_option(label="TVA 20 %")
    purchases.get_by_role("button", name="Enregistrer le codage des achats").click()
    expect(page.locator("#toasts")).to_contain_text("Le codage par défaut des achats est enregistré.")

    page.get_by_role("navigation", name="Menu du dossier").get_by_role("link", name="Documents").click()
    page.get_by_role("link", name="Nouvelle facture d'achat").click()
    page.get_by_text("Le fournisseur n'est pas dans la liste ?").click()
    page.get_by_label("Nom (tel qu'il figure sur la facture)").fill("Papeterie Lemoine SARL")
    page.get_by_label("SIREN (facultatif)").fill("303 265 045")
    page.get_by_label("Numéro de facture").fill("PL-2026-117")
    page.get_by_label("Date de facture").fill("2026-11-03")
    page.get_by_label("Montant HT").fill("250,00")
    page.get_by_label("Montant TVA").fill("50,00")
    page.get_by_label("Montant TTC").fill("300,00")
    pdf = tmp_path / "PL-2026-117.pdf"
    pdf.write_bytes(PDF)
    page.get_by_label("PDF de la facture (facultatif, 10 Mo au plus)").set_input_files(str(pdf))
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.locator("#toasts")).to_contain_text("Facture PL-2026-117 ajoutée : Prêt.")

    row = page.locator("#documents tbody tr", has_text="PL-2026-117")
    expect(row).to_contain_text("Papeterie Lemoine SARL (nouveau)")
    row.get_by_role("button", name="Publier").click()
    expect(row).to_contain_text("En cours")
    run_worker_burst(job_app)
    expect(row).to_contain_text("À réviser", timeout=10_000)
    expect(row).to_contain_text("Fournisseur absent de Compta Démo : « Papeterie Lemoine SARL » sera créé")

    row.get_by_role("link", name="PL-2026-117").click()
    page.get_by_role("button", name="Créer le fournisseur et publier").click()
    expect(page.locator("#toasts")).to_contain_text(
        "« Papeterie Lemoine SARL » sera créé dans le logiciel comptable"
    )
    run_worker_burst(job_app)
    page.reload()
    expect(page.locator("#documents tbody tr", has_text="PL-2026-117")).to_contain_text("Publié")

    invoices = controls_api.get(
        f"{live.url}/sandbox/controls/api/companies/{COMPANY}/invoices", timeout=10
    ).json()
    (invoice,) = invoices["items"]
    assert invoice["payload"]["number"] == "PL-2026-117" and invoice["payload"]["account_id"] == "acc-606400"
    assert [a["filename"] for a in invoice["attachments"]] == ["PL-2026-117.pdf"]
