"""In Chromium: a supplier added in Xero shows on the 'Fournisseurs' page left open, without a click
or a reload (Xero's webhook → a changes-only refresh in the real worker → the page's watch)."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import open_demo_dossier
from tests.http_user import COMPANY, Browser, connected, controls_api
from webapp.services.demo import seed_demo

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]


def test_a_supplier_added_in_xero_shows_on_the_open_page_within_seconds(page, job_app, live, worker):
    with job_app.app_context():
        seed_demo()
    http = Browser(live.url)
    http.login("demo@raccord.test", "demo")
    connected(job_app, http, 1, software="xero")

    open_demo_dossier(page, live.url)
    menu = page.get_by_role("navigation", name="Menu du dossier")
    menu.get_by_role("link", name="Fournisseurs", exact=True).click()
    results = page.locator("#list-results")
    expect(results).to_contain_text("EDF Entreprises")
    expect(results).not_to_contain_text("Menuiserie des Quais")
    page.evaluate("window.pasRecharge = true")  # gone if the page were loaded again

    started = time.monotonic()
    added = controls_api.post(
        f"{live.url}/sandbox/controls/api/companies/{COMPANY}/suppliers",
        json={"name": "Menuiserie des Quais"},
    )
    assert added.status_code == 201

    expect(results).to_contain_text("Menuiserie des Quais", timeout=15_000)
    print(f"supplier shown {time.monotonic() - started:.1f} s after it was added")
    assert page.evaluate("window.pasRecharge") is True
