"""In Chromium: an expired integration shows its banner; 'Se reconnecter' through the consent page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import run_worker_burst
from tests.e2e.conftest import open_demo_dossier
from tests.http_user import COMPANY, Browser, connected, controls_api
from webapp.services.demo import seed_demo

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]


def test_expired_banner_then_se_reconnecter(page, job_app, live):
    with job_app.app_context():
        seed_demo()
    http = Browser(live.url)
    http.login("demo@raccord.test", "demo")
    integration_id = connected(job_app, http, 1)
    controls_api.post(f"{live.url}/sandbox/controls/api/companies/{COMPANY}/expire", json={}, timeout=10)
    lists = "/dossiers/1/listes/suppliers"
    http.post_form(f"{lists}/recharger", {}, page=lists, htmx=True)
    run_worker_burst(job_app)

    open_demo_dossier(page, live.url)

    banner = page.locator("#bandeau-integration").get_by_role("alert")
    expect(banner).to_contain_text("L'intégration avec Compta Démo a expiré.")
    banner.get_by_role("link", name="Se reconnecter").click()
    expect(page).to_have_url(re.compile(rf"/integrations/{integration_id}#se-reconnecter$"))
    expect(page.locator(".facts")).to_contain_text("Expirée")

    page.get_by_role("button", name="Se reconnecter").click()
    expect(page.get_by_role("heading", name="Autoriser Raccord")).to_be_visible()
    page.get_by_label("Boulangerie Martin SARL").check()
    page.get_by_role("button", name="Autoriser").click()

    expect(page.locator("#toasts")).to_contain_text(
        "L'intégration avec Compta Démo est de nouveau connectée."
    )
    expect(page.locator(".facts")).to_contain_text("Connectée")
    expect(page.locator("#bandeau-integration").get_by_role("alert")).to_have_count(0)
    expect(page.locator("tr[data-list='suppliers']")).to_contain_text("30")
