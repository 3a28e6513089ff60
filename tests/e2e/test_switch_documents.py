"""In Chromium: an invoice waiting in Compta Démo follows the change to Xero, coded on Xero's lists, and is
published to Xero once; the one published to Compta Démo stays there, readable under its name."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.e2e.conftest import open_demo_dossier
from tests.e2e.test_expiry_story import add_invoice
from tests.e2e.test_switch_story import consent
from tests.http_user import COMPANY, Browser, connected, controls_api
from webapp.extensions import db
from webapp.models import Document, Integration, ListItem, PartyKind, Rule
from webapp.services.demo import seed_demo

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]


def test_a_waiting_invoice_follows_the_change_to_xero_and_is_published_there_once(
    page, job_app, live, worker
):
    with job_app.app_context():
        seed_demo()
    http = Browser(live.url)
    http.login("demo@raccord.test", "demo")
    old_id = connected(job_app, http, 1)
    with job_app.app_context():
        item = {
            e: db.session.scalar(select(ListItem.id).where(ListItem.external_id == e))
            for e in ("sup-000001", "acc-606100", "tax-TVA20")
        }
        db.session.add(
            Rule(
                dossier_id=1,
                integration_id=old_id,
                party_kind=PartyKind.SUPPLIER,
                party_id=item["sup-000001"],
                account_id=item["acc-606100"],
                tax_rate_id=item["tax-TVA20"],
            )
        )
        db.session.commit()
    invoices_url = f"{live.url}/sandbox/controls/api/companies/{COMPANY}/invoices"

    open_demo_dossier(page, live.url)
    add_invoice(page, "F-2026-201")
    row = page.locator("#documents tbody tr", has_text="F-2026-201")
    row.get_by_role("button", name="Publier").click()
    expect(row).to_contain_text("Publié", timeout=60_000)
    add_invoice(page, "F-2026-202")  # waits, 'Prêt', in Compta Démo

    page.goto(f"{live.url}/dossiers/1/integrations/{old_id}")
    page.get_by_text("Gérer").click()
    page.get_by_role("menuitem", name="Changer de logiciel").click()
    page.get_by_role("listitem", name="Xero").get_by_role("button", name="Connecter Xero").click()
    consent(page)
    toasts = page.locator("#toasts")
    expect(toasts).to_contain_text("Les listes sont à jour.", timeout=60_000)

    page.get_by_role("navigation", name="Menu du dossier").get_by_role("link", name="Documents").click()
    waiting = page.locator("#waiting-elsewhere")
    expect(waiting).to_contain_text(
        "1 facture en attente est encore codée sur les listes du logiciel précédent."
    )
    waiting.get_by_role("link", name="Paramètres du dossier › Intégration").click()
    page.get_by_role("button", name="Transférer les règles").click()
    expect(page.get_by_text("Documents : 1 transféré, dont 0 à réviser.")).to_be_visible(timeout=60_000)
    page.get_by_role("link", name="1 prêt à publier").click()

    row = page.locator("#documents tbody tr", has_text="F-2026-202")
    expect(row).to_contain_text("606100")
    expect(row).to_contain_text("Prêt")
    expect(page.locator("#documents")).not_to_contain_text("F-2026-201")
    row.get_by_role("button", name="Publier").click()
    expect(row).to_contain_text("Publié", timeout=60_000)

    with job_app.app_context():
        xero_id = db.session.scalar(select(Integration.id).where(Integration.software == "xero"))
        moved = db.session.scalar(select(Document).where(Document.number == "F-2026-202"))
        assert moved.integration_id == xero_id and moved.moved_from_integration_id == old_id
        contact, tax_type = moved.party.external_id, moved.tax_rate.external_id
        first = db.session.scalar(select(Document).where(Document.number == "F-2026-201"))
        assert first.integration_id == old_id and first.upstream_id
        assert moved.party.integration_id == moved.account.integration_id == xero_id
    upstream = controls_api.get(invoices_url, timeout=10).json()["items"]
    in_xero = [i["payload"] for i in upstream if i["payload"].get("dialect") == "xero"]
    in_compta_demo = [i["payload"] for i in upstream if i["payload"].get("dialect") != "xero"]
    assert [p["number"] for p in in_compta_demo] == ["F-2026-201"]  # never sent again
    (bill,) = in_xero  # published once
    assert (bill["Type"], bill["InvoiceNumber"], bill["Total"]) == ("ACCPAY", "F-2026-202", 120.0)
    assert bill["Contact"]["ContactID"] == contact and bill["Contact"]["Name"] == "EDF Entreprises"
    (line,) = bill["LineItems"]
    assert (line["AccountCode"], line["TaxType"]) == ("606100", tax_type)
    assert tax_type != "tax-TVA20"  # Xero's own tax rate, not Compta Démo's

    page.get_by_role("link", name="Publié dans Compta Démo").click()
    expect(page.locator("#previous-software")).to_contain_text("Factures publiées dans Compta Démo")
    published = page.locator("#documents tbody tr", has_text="F-2026-201")
    expect(published).to_contain_text("Publié")
    expect(published).to_contain_text(f"Réf. {first.upstream_id}")
    expect(page.locator("#documents")).not_to_contain_text("F-2026-202")
