"""In Chromium: 'Gérer' → 'Déconnecter' opens a modal dialog the keyboard can use and leave."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import open_demo_dossier
from tests.http_user import Browser, connected
from webapp.services.demo import seed_demo

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]


def test_disconnect_through_the_dialog_keeping_the_rules(page, job_app, live):
    with job_app.app_context():
        seed_demo()
    http = Browser(live.url)
    http.login("demo@raccord.test", "demo")
    integration_id = connected(job_app, http, 1)

    open_demo_dossier(page, live.url)
    page.goto(f"{live.url}/dossiers/1/integrations/{integration_id}")
    page.get_by_text("Gérer").click()
    page.get_by_role("menuitem", name="Déconnecter").click()
    dialog = page.get_by_role("dialog", name="Déconnecter Compta Démo ?")
    expect(dialog).to_be_visible()
    keep = dialog.get_by_label("Conserver les règles actuelles tout en déconnectant l'intégration")
    expect(keep).to_be_checked()
    # Focus is inside the dialog, and Escape leaves it without changing anything.
    assert page.evaluate("document.activeElement.closest('dialog') !== null")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(page.get_by_text("Connectée")).to_be_visible()

    page.get_by_text("Gérer").click()
    page.get_by_role("menuitem", name="Déconnecter").click()
    dialog = page.get_by_role("dialog", name="Déconnecter Compta Démo ?")
    dialog.get_by_role("button", name="Déconnecter").click()
    expect(page.locator("#toasts")).to_contain_text(
        "L'intégration avec Compta Démo est déconnectée. Les règles sont conservées."
    )
    history = page.get_by_role("region", name="Historique des intégrations")
    expect(history).to_contain_text("Déconnectée")
    expect(
        page.get_by_role("region", name="Logiciels disponibles")
        .get_by_role("listitem", name="Compta Démo")
        .get_by_role("button", name="Connecter")
    ).to_be_visible()
