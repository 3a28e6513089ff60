"""In Chromium, messages people can read: an error stays until it is closed (its « Fermer » button or
Escape); any other message stays at least 8 seconds, and longer while the pointer or the focus is on it.

The page's clock is Playwright's (`page.clock`): the seconds are simulated, the test does not wait them.
The messages are sent as the server sends them, an htmx trigger named `raccord:toast`."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def send(page, message: str, level: str) -> None:
    page.evaluate(
        "([message, level]) => htmx.trigger(document.body, 'raccord:toast', {message, level})",
        [message, level],
    )


@pytest.fixture
def login_page(page, live_server):
    page.clock.install()
    page.goto(live_server.url + "/login")
    page.wait_for_function("() => window.htmx !== undefined")
    return page


def test_an_error_stays_until_closed_with_its_button_or_escape(login_page):
    page = login_page
    alerts = page.locator("#toasts-alertes")
    expect(alerts).to_have_attribute("role", "alert")

    send(page, "Xero a refusé la demande : le compte 606100 est archivé.", "error")
    error = alerts.locator(".toast", has_text="le compte 606100 est archivé")
    page.clock.run_for(120_000)
    expect(error).to_be_visible()
    error.get_by_role("button", name="Fermer").click()
    page.clock.run_for(1_000)
    expect(error).to_have_count(0)

    send(page, "La publication a échoué.", "error")
    page.clock.run_for(60_000)
    expect(alerts.locator(".toast")).to_have_count(1)
    page.keyboard.press("Escape")
    page.clock.run_for(1_000)
    expect(alerts.locator(".toast")).to_have_count(0)


def test_a_success_stays_eight_seconds_and_waits_while_hovered_or_focused(login_page):
    page = login_page
    messages = page.locator("#toasts-messages")
    expect(messages).to_have_attribute("aria-live", "polite")

    send(page, "Les listes sont à jour.", "success")
    toast = messages.locator(".toast", has_text="Les listes sont à jour.")
    page.clock.run_for(7_900)
    expect(toast).to_be_visible()
    page.clock.run_for(1_000)
    expect(toast).to_have_count(0)

    # Hovered: it waits as long as the pointer is on it, then gets the rest of its time.
    send(page, "La règle a été enregistrée.", "success")
    toast = messages.locator(".toast", has_text="La règle a été enregistrée.")
    page.clock.run_for(2_000)
    toast.hover()
    page.clock.run_for(60_000)
    expect(toast).to_be_visible()
    page.mouse.move(0, 0)
    page.clock.run_for(4_000)
    expect(toast).to_be_visible()
    page.clock.run_for(3_000)
    expect(toast).to_have_count(0)

    # Focused (a keyboard user on its « Fermer »): it waits too.
    send(page, "Les règles ont été transférées.", "success")
    toast = messages.locator(".toast", has_text="Les règles ont été transférées.")
    toast.get_by_role("button", name="Fermer").focus()
    page.clock.run_for(60_000)
    expect(toast).to_be_visible()
    page.get_by_label("Adresse e-mail").focus()
    page.clock.run_for(9_000)
    expect(toast).to_have_count(0)
