"""The sandbox's Xero and QuickBooks dialects send webhooks as the vendors do, and Raccord applies them:
over HTTP, the app and its sandbox on a real port, the lists loaded by a real RQ worker."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time

import pytest
from sqlalchemy import select

import sandbox.webhooks
from sandbox.dialects import tenant_guid
from sandbox.dialects.quickbooks import realm_of
from tests.conftest import run_worker_burst
from tests.http_user import COMPANY, connected, controls_api
from webapp.extensions import db
from webapp.models import JobRun, ListItem, ListKind, WebhookDelivery

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, bytes, dict]]:
    """Every delivery the dialects send (address, body, headers), still sent to Raccord."""
    deliveries: list[tuple[str, bytes, dict]] = []
    lock = threading.Lock()
    real = sandbox.webhooks.post

    def watch(url: str, body: bytes, headers: dict) -> int:
        with lock:
            deliveries.append((url, body, headers))
        return real(url, body, headers)

    monkeypatch.setattr(sandbox.webhooks, "post", watch)
    return deliveries


def wait_for(condition, what: str, timeout: float = 15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


def accepted(app, vendor: str) -> list[WebhookDelivery]:
    with app.app_context():
        rows = db.session.scalars(
            select(WebhookDelivery).where(
                WebhookDelivery.vendor == vendor, WebhookDelivery.outcome == "accepted"
            )
        ).all()
        db.session.expunge_all()
        return list(rows)


def add_supplier(live, name: str) -> None:
    response = controls_api.post(
        f"{live.url}/sandbox/controls/api/companies/{COMPANY}/suppliers", json={"name": name}
    )
    assert response.status_code == 201, response.text


def signed(body: bytes, headers: dict, header: str, key: str) -> bool:
    expected = base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()
    return headers[header] == expected


def test_quickbooks_tells_raccord_of_a_new_supplier_which_the_next_refresh_brings(
    job_app, live, bookkeeper, dossier_id, sent
):
    integration_id = connected(job_app, bookkeeper, dossier_id, software="quickbooks")
    add_supplier(live, "Menuiserie des Quais")

    [row] = wait_for(lambda: accepted(job_app, "quickbooks"), "QuickBooks' webhook accepted")
    assert row.company_ids == [realm_of(COMPANY)]
    assert row.integration_ids == [integration_id]
    assert row.lists == ["suppliers"]
    [(url, body, headers)] = sent
    assert url == f"{live.url}/webhooks/quickbooks"
    assert signed(body, headers, "intuit-signature", job_app.config["SANDBOX_WEBHOOK_KEY"])
    notification = json.loads(body)["eventNotifications"][0]
    assert notification["realmId"] == realm_of(COMPANY)
    [entity] = notification["dataChangeEvent"]["entities"]
    assert (entity["name"], entity["operation"]) == ("Vendor", "Create")
    assert set(entity) == {"name", "id", "operation", "lastUpdated"}
    # Only QuickBooks: this company has no connection to Raccord's Xero app.
    assert all("/webhooks/quickbooks" in each[0] for each in sent)

    run_worker_burst(job_app)
    with job_app.app_context():
        names = db.session.scalars(
            select(ListItem.name).where(
                ListItem.integration_id == integration_id, ListItem.kind == ListKind.SUPPLIERS
            )
        ).all()
        refreshes = db.session.scalars(select(JobRun.description).where(JobRun.kind == "list_refresh")).all()
    assert "Menuiserie des Quais" in names
    assert len(refreshes) == len(ListKind) + 1  # the connection's loads, then the supplier list again


def test_xero_sends_its_changes_together_in_its_own_format(job_app, live, bookkeeper, dossier_id, sent):
    integration_id = connected(job_app, bookkeeper, dossier_id, software="xero")
    for number in range(5):
        add_supplier(live, f"Plomberie Rapide {number}")

    wait_for(lambda: accepted(job_app, "xero"), "Xero's webhook accepted")
    xero = [(body, headers) for url, body, headers in sent if url.endswith("/webhooks/xero")]
    assert len(xero) == 1, "five changes within half a second go out in one delivery"
    body, headers = xero[0]
    assert signed(body, headers, "x-xero-signature", job_app.config["SANDBOX_WEBHOOK_KEY"])
    payload = json.loads(body)
    assert set(payload) == {"events", "firstEventSequence", "lastEventSequence", "entropy"}
    assert payload["lastEventSequence"] - payload["firstEventSequence"] == 4
    assert len(payload["events"]) == 5
    event = payload["events"][0]
    assert set(event) == {
        "resourceUrl",
        "resourceId",
        "eventDateUtc",
        "eventType",
        "eventCategory",
        "tenantId",
        "tenantType",
    }
    assert (event["eventType"], event["eventCategory"], event["tenantType"]) == (
        "CREATE",
        "CONTACT",
        "ORGANISATION",
    )
    assert event["tenantId"] == tenant_guid(COMPANY)
    assert event["resourceUrl"].endswith(f"/Contacts/{event['resourceId']}")
    [row] = accepted(job_app, "xero")
    assert (row.integration_ids, row.lists) == ([integration_id], ["customers", "suppliers"])


def test_a_company_whose_consent_was_withdrawn_sends_nothing(job_app, live, bookkeeper, dossier_id, sent):
    connected(job_app, bookkeeper, dossier_id, software="quickbooks")
    controls_api.post(f"{live.url}/sandbox/controls/api/companies/{COMPANY}/revoke", json={})
    add_supplier(live, "Serrurerie Close")
    sandbox.webhooks.OUTBOX.flush()
    assert sent == []


def test_a_delivery_that_fails_never_fails_the_change(job_app, live, bookkeeper, dossier_id, sent):
    connected(job_app, bookkeeper, dossier_id, software="quickbooks")
    controls_api.post(
        f"{live.url}/sandbox/controls/api/settings",
        json={"webhook_url:quickbooks": "http://127.0.0.1:9/nowhere"},
    )
    add_supplier(live, "Vitrerie Lointaine")  # 201 all the same
    sandbox.webhooks.OUTBOX.flush()
    assert [url for url, _, _ in sent] == ["http://127.0.0.1:9/nowhere"]
    assert accepted(job_app, "quickbooks") == []


def test_a_vendor_created_through_the_quickbooks_api_is_announced_too(
    job_app, live, bookkeeper, dossier_id, sent
):
    import requests

    from webapp.models import Integration
    from webapp.services.integrations import load_tokens

    integration_id = connected(job_app, bookkeeper, dossier_id, software="quickbooks")
    with job_app.app_context():
        tokens = load_tokens(db.session.get(Integration, integration_id))
    response = requests.post(
        f"{live.url}/sandbox/quickbooks/v3/company/{realm_of(COMPANY)}/vendor",
        json={"DisplayName": "Carrosserie Créée"},
        headers={"Authorization": f"Bearer {tokens.access_token}", "Accept": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    [row] = wait_for(lambda: accepted(job_app, "quickbooks"), "QuickBooks' webhook accepted")
    assert row.lists == ["suppliers"]
    [entity] = json.loads(sent[0][1])["eventNotifications"][0]["dataChangeEvent"]["entities"]
    assert (entity["name"], entity["id"]) == ("Vendor", response.json()["Vendor"]["Id"])


def test_a_burst_runs_one_refresh_per_list_then_one_more_in_the_real_worker(
    job_app, live, bookkeeper, dossier_id
):
    import requests

    from webapp.models import JobStatus

    integration_id = connected(job_app, bookkeeper, dossier_id, software="xero")
    key = job_app.config["SANDBOX_WEBHOOK_KEY"]
    for number in range(20):
        event = {
            "resourceUrl": f"https://api.xero.com/api.xro/2.0/Contacts/{number}",
            "resourceId": str(number),
            "eventDateUtc": "2026-12-04T10:00:00.000",
            "eventType": "UPDATE",
            "eventCategory": "CONTACT",
            "tenantId": tenant_guid(COMPANY),
            "tenantType": "ORGANISATION",
        }
        body = json.dumps(
            {"events": [event], "firstEventSequence": number, "lastEventSequence": number}
        ).encode()
        signature = base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()
        answer = requests.post(
            f"{live.url}/webhooks/xero", data=body, headers={"x-xero-signature": signature}, timeout=10
        )
        assert (answer.status_code, answer.content) == (200, b"")

    run_worker_burst(job_app)

    with job_app.app_context():
        runs = db.session.execute(
            select(JobRun.description, JobRun.status).where(JobRun.kind == "list_refresh").order_by(JobRun.id)
        ).all()
        rows = db.session.scalars(select(WebhookDelivery.detail).order_by(WebhookDelivery.id)).all()
    after_connection = [description.replace("\xa0", " ") for description, _ in runs[len(ListKind) :]]
    # One per list for the burst, then one more per list for the changes that came while it was queued.
    assert sorted(after_connection) == sorted(["Chargement : Fournisseurs", "Chargement : Clients"] * 2)
    assert all(status is JobStatus.SUCCEEDED for _, status in runs)
    assert rows == ["queued 2"] + ["dirty 2"] * 19
    assert integration_id
