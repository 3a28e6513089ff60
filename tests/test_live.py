"""Screens that tell the truth by themselves (webapp/live.py): the response that sees a job end says
so with the event every live region listens for; the page's listener is there; its fetch is not a
new look at a dossier."""

from __future__ import annotations

import json

from tests.conftest import run_worker_burst, unescaped
from tests.test_publishing import click_publish, new_invoice, status_of
from tests.test_support import STAFF, cabinet, login, support_events, text_of  # noqa: F401 (fixture)
from webapp.live import INTEGRATION_CHANGED, LISTENER
from webapp.models import DocumentStatus

HTMX = {"HX-Request": "true"}


def events(response) -> dict:
    return json.loads(response.headers.get("HX-Trigger") or "{}")


def test_a_publication_says_when_it_ends_on_the_row_and_on_the_invoice_page(job_app, live, dossier_with_rule):
    browser, dossier_id, _, ids = dossier_with_rule
    base = f"/dossiers/{dossier_id}/documents"
    first = new_invoice(browser, dossier_id, ids, number="F-LIVE-1")
    second = new_invoice(browser, dossier_id, ids, number="F-LIVE-2")

    # The invoice's page offers 'Publier', and publishing from it answers its header, 'En cours'.
    page = unescaped(browser.get(f"{base}/{first}").text)
    assert 'id="document-entete" data-live' in page and ">Publier</button>" in page
    started = browser.post_form(
        f"{base}/{first}/publier", {"vue": "facture"}, page=f"{base}/{first}", htmx=True
    )
    assert "En cours" in unescaped(started.text) and f"{base}/{first}/entete?suivi=1" in started.text
    assert INTEGRATION_CHANGED not in events(started)  # the header follows it, and tells when it ends
    running = browser.get(f"{base}/{first}/entete?suivi=1", headers=HTMX)
    assert INTEGRATION_CHANGED not in events(running) and "hx-get" in running.text

    from_row = click_publish(browser, dossier_id, second)
    assert INTEGRATION_CHANGED in events(from_row)  # the counts of 'Documents' change at once
    still = browser.get(f"{base}/{second}/ligne?suivi=1", headers=HTMX)
    assert INTEGRATION_CHANGED not in events(still)

    run_worker_burst(job_app)
    ended = browser.get(f"{base}/{first}/entete?suivi=1", headers=HTMX)
    assert INTEGRATION_CHANGED in events(ended)
    assert events(ended)["raccord:toast"]["message"] == "Facture F-LIVE-1 publiée."
    assert "Publié" in unescaped(ended.text) and "hx-get" not in ended.text
    row = browser.get(f"{base}/{second}/ligne?suivi=1", headers=HTMX)
    assert INTEGRATION_CHANGED in events(row) and "Publié" in unescaped(row.text)
    assert status_of(job_app, first).status is DocumentStatus.PUBLISHED

    # Without htmx, 'Publier' on the invoice's page comes back to that page.
    third = new_invoice(browser, dossier_id, ids, number="F-LIVE-3")
    plain = browser.post_form(f"{base}/{third}/publier", {"vue": "facture"}, page=f"{base}/{third}")
    assert plain.url.endswith(f"{base}/{third}") and "En cours" in unescaped(plain.text)


def test_the_lists_and_a_job_say_when_they_end(job_app, live, connected_dossier):
    browser, dossier_id, integration_id = connected_dossier
    page = f"/dossiers/{dossier_id}/integrations/{integration_id}"
    shown = unescaped(browser.get(page).text)
    assert f'id="{LISTENER}"' in shown and 'hx-trigger="raccord:integration-changed from:body' in shown
    for region in ("bandeau-integration", "integration-entete", "integration-etat", "integration-statut"):
        assert f'id="{region}" data-live' in shown
    started = browser.post_form(f"{page}/actualiser", {}, page=page, htmx=True)
    assert INTEGRATION_CHANGED in events(started)  # what the click found is shown on the whole page
    running = browser.get(f"{page}/listes?suivi=1", headers=HTMX)
    assert INTEGRATION_CHANGED not in events(running)
    run_worker_burst(job_app)
    ended = browser.get(f"{page}/listes?suivi=1", headers=HTMX)
    assert INTEGRATION_CHANGED in events(ended) and "raccord:toast" in events(ended)
    # Looked at without following a load (the page opened), a finished state is not news.
    assert INTEGRATION_CHANGED not in events(browser.get(f"{page}/listes", headers=HTMX))


def test_the_listener_fetching_the_support_page_again_is_not_a_new_look(client, cabinet):  # noqa: F811
    login(client, *STAFF)
    url = f"/support/dossiers/{cabinet['dossier']}"
    assert "Reproductions" not in text_of(client.get(url))
    again = client.get(url, headers={"HX-Trigger": LISTENER, "HX-Current-URL": url})
    assert again.status_code == 200 and 'id="taches" data-live' in text_of(again)
    assert len(support_events(cabinet["dossier"])) == 1
