"""Browser fixtures: the app served on a real port, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI, ROOT, LiveServer, make_app

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"

# Without these, Chromium reaches for Google's services at start, which this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def browser() -> Iterator:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        if IN_CI:
            pytest.fail(f"Chromium is required in CI and was not found at {CHROMIUM}")
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def live_app(sqlite_file):
    return make_app(sqlite_file)


@pytest.fixture
def live_server(live_app) -> Iterator[LiveServer]:
    server = LiveServer(live_app).start()
    yield server
    server.stop()


#: How long a step waits for what the user would see (an element, a text, a navigation). Generous,
#: so a loaded machine slows a test down rather than failing it; a failure still names what was awaited.
EXPECT_TIMEOUT_MS = 20_000
ACTION_TIMEOUT_MS = 30_000


@pytest.fixture
def page(browser, request) -> Iterator:
    """A fresh browser context per test; any console error (a CSP refusal, a script error) fails the test."""
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris")
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    request.node.raccord_browser = (page, context, errors)
    yield page
    _close_browser(request.node)
    marker = request.node.get_closest_marker("console_errors")
    expected = [re.compile(p) for p in (marker.args if marker else ())]
    unexpected = [e for e in errors if not any(p.search(e) for p in expected)]
    assert unexpected == [], f"browser console errors: {unexpected}"


def _close_browser(item) -> None:
    """Screenshot, then close the context: its pages stop polling before any server is stopped (a
    poll sent to a server already gone would show as a console error of the page)."""
    page, context, _ = getattr(item, "raccord_browser", (None, None, None))
    if context is None:
        return
    item.raccord_browser = (None, None, None)
    try:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{item.name}.png"), full_page=True)
    finally:
        context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """The browser is closed as soon as the test's body ends, before the fixtures are torn down."""
    try:
        return (yield)
    finally:
        _close_browser(item)


def open_demo_dossier(page, base_url: str, dossier: str = "Boulangerie Martin") -> None:
    """Log in as the demo bookkeeper through the login page and open one of the demo dossiers."""
    page.goto(base_url + "/login")
    page.get_by_label("Adresse e-mail").fill("demo@raccord.test")
    page.get_by_label("Mot de passe").fill("demo")
    page.get_by_role("button", name="Se connecter").click()
    page.get_by_role("link", name=dossier).click()
