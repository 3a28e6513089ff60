"""Changes pushed by Xero and QuickBooks (webhooks): checked, stored, mapped to the connected
integrations, coalesced into one changes-only refresh per list; and the hourly refresh of the others."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import uuid

import pytest
import redis
from sqlalchemy import select, update

from tests.conftest import csrf_token, login, plain_spaces, text_of
from tests.factories import make_dossier, make_integration, make_organisation, make_user
from webapp.extensions import db
from webapp.models import Event, Integration, JobRun, ListKind, ListSync, SyncStatus, WebhookDelivery
from webapp.services.webhooks import after_refresh, dirty_key

# Every write these flows make keeps the dossiers' lines of 'Mes dossiers' true.
pytestmark = pytest.mark.usefixtures("summaries_stay_true")

TENANT = "0f5e5c3a-9d7c-4a6b-8a55-0c5c2b1a7d11"
REALM = "9130348371836592"
COMPANY = {"xero": TENANT, "quickbooks": REALM}
HEADER = {"xero": "x-xero-signature", "quickbooks": "intuit-signature"}


def sign(body: bytes, key: str) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def xero_body(tenant: str = TENANT, category: str = "CONTACT", events: int = 1) -> bytes:
    return json.dumps(
        {
            "events": [
                {
                    "resourceUrl": f"https://api.xero.com/api.xro/2.0/Contacts/{uuid.uuid4()}",
                    "resourceId": str(uuid.uuid4()),
                    "eventDateUtc": "2026-12-04T10:00:00.000",
                    "eventType": "CREATE",
                    "eventCategory": category,
                    "tenantId": tenant,
                    "tenantType": "ORGANISATION",
                }
                for _ in range(events)
            ],
            "firstEventSequence": 1,
            "lastEventSequence": events,
            "entropy": uuid.uuid4().hex.upper(),
        }
    ).encode()


def quickbooks_body(realm: str = REALM, name: str = "Vendor") -> bytes:
    entity = {"name": name, "id": str(uuid.uuid4().int % 1000), "operation": "Create"}
    entity["lastUpdated"] = "2026-12-04T10:00:00.000Z"
    return json.dumps(
        {"eventNotifications": [{"realmId": realm, "dataChangeEvent": {"entities": [entity]}}]}
    ).encode()


BODIES = {"xero": xero_body, "quickbooks": quickbooks_body}
#: What each vendor's delivery above names.
LISTS = {"xero": ["customers", "suppliers"], "quickbooks": ["suppliers"]}


@pytest.fixture
def connected(job_app):
    """A dossier connected to Xero and another to QuickBooks (through the sandbox's dialects)."""
    with job_app.app_context():
        org = make_organisation()
        ids = {}
        for vendor in ("xero", "quickbooks"):
            integration = make_integration(make_dossier(org), software=vendor)
            integration.company_id = COMPANY[vendor]
            db.session.commit()
            ids[vendor] = integration.id
    return ids


def deliver(client, vendor: str, body: bytes, key: str | None):
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers[HEADER[vendor]] = sign(body, key)
    return client.post(f"/webhooks/{vendor}", data=body, headers=headers)


def refreshes(app) -> list[tuple[int | None, str]]:
    """The list refreshes queued: (dossier, description)."""
    with app.app_context():
        return [
            (run.dossier_id, plain_spaces(run.description))
            for run in db.session.scalars(select(JobRun).where(JobRun.kind == "list_refresh"))
        ]


def deliveries(app) -> list[WebhookDelivery]:
    with app.app_context():
        rows = db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
        db.session.expunge_all()
        return list(rows)


def queued_jobs(app) -> list[tuple[str, tuple]]:
    from rq import Queue

    queue = Queue(app.config["JOB_QUEUE"], connection=redis.Redis.from_url(app.config["REDIS_URL"]))
    return [(job.func_name, tuple(job.args)) for job in queue.get_jobs()]


def queued_args(app) -> list[tuple]:
    from rq import Queue

    queue = Queue(app.config["JOB_QUEUE"], connection=redis.Redis.from_url(app.config["REDIS_URL"]))
    return [tuple(job.args) for job in queue.get_jobs()]


@pytest.mark.parametrize("vendor", ["xero", "quickbooks"])
def test_a_signed_delivery_queues_a_changes_only_refresh_of_the_lists_it_names(job_app, connected, vendor):
    key = job_app.config["SANDBOX_WEBHOOK_KEY"]
    body = BODIES[vendor]()
    response = deliver(job_app.test_client(), vendor, body, key)

    assert response.status_code == 200
    assert response.data == b""
    [row] = deliveries(job_app)
    assert row.outcome == "accepted"
    assert row.vendor == vendor
    assert row.body_sha256 == hashlib.sha256(body).hexdigest()
    assert row.company_ids == [COMPANY[vendor]]
    assert row.integration_ids == [connected[vendor]]
    assert row.lists == LISTS[vendor]
    assert sorted(description for _, description in refreshes(job_app)) == sorted(
        f"Chargement : {ListKind(kind).label}" for kind in LISTS[vendor]
    )
    # Changes only, for that integration (jobs.lists.refresh_list's arguments).
    assert sorted(queued_args(job_app)) == sorted((connected[vendor], kind, True) for kind in LISTS[vendor])


@pytest.mark.parametrize("vendor", ["xero", "quickbooks"])
def test_a_forged_or_unsigned_delivery_is_refused_and_changes_nothing(job_app, connected, vendor, caplog):
    client = job_app.test_client()
    body = BODIES[vendor]()
    key = job_app.config["SANDBOX_WEBHOOK_KEY"]
    caplog.set_level(logging.INFO)

    assert deliver(client, vendor, body, "not-the-key").status_code == 401
    assert deliver(client, vendor, body, None).status_code == 401
    tampered = body.replace(b"ORGANISATION", b"ORGANISATIoN") if vendor == "xero" else body + b" "
    response = client.post(f"/webhooks/{vendor}", data=tampered, headers={HEADER[vendor]: sign(body, key)})
    assert response.status_code == 401

    # Nothing stored (anyone may send these, as often as they like): logged and counted only.
    assert deliveries(job_app) == []
    assert refreshes(job_app) == []
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert f"Webhook {vendor}: forged" in logged and f"Webhook {vendor}: unsigned" in logged
    assert key not in logged
    assert body.decode()[:40] not in logged


@pytest.mark.parametrize("vendor", ["xero", "quickbooks"])
def test_a_delivery_sent_again_changes_nothing(job_app, connected, vendor):
    client = job_app.test_client()
    body = BODIES[vendor]()
    key = job_app.config["SANDBOX_WEBHOOK_KEY"]
    assert deliver(client, vendor, body, key).status_code == 200
    with job_app.app_context():  # the first refreshes are over
        db.session.execute(update(ListSync).values(status=SyncStatus.SUCCEEDED))
        db.session.commit()
    before = refreshes(job_app)

    assert deliver(client, vendor, body, key).status_code == 200

    assert [row.outcome for row in deliveries(job_app)] == ["accepted", "replayed"]
    assert refreshes(job_app) == before


@pytest.mark.parametrize("vendor", ["xero", "quickbooks"])
def test_a_signed_body_that_is_not_the_vendors_format_is_refused_with_400(job_app, connected, vendor):
    client = job_app.test_client()
    key = job_app.config["SANDBOX_WEBHOOK_KEY"]
    assert deliver(client, vendor, b"{not json", key).status_code == 400
    assert deliver(client, vendor, b'{"events": "x", "eventNotifications": 3}', key).status_code == 400
    odd = {"events": [{"tenantId": 3}], "eventNotifications": [{"realmId": "1", "dataChangeEvent": "x"}]}
    assert deliver(client, vendor, json.dumps(odd).encode(), key).status_code == 400
    assert deliver(client, vendor, b"\xff\xfe", key).status_code == 400
    assert [row.outcome for row in deliveries(job_app)] == ["malformed"] * 4
    assert refreshes(job_app) == []


def test_a_body_too_large_is_refused_before_it_is_read(job_app, connected):
    job_app.config["WEBHOOK_MAX_BYTES"] = 2048
    body = xero_body(events=40)
    assert len(body) > 2048
    response = deliver(job_app.test_client(), "xero", body, job_app.config["SANDBOX_WEBHOOK_KEY"])
    assert response.status_code == 413
    assert [row.outcome for row in deliveries(job_app)] == ["malformed"]
    assert refreshes(job_app) == []


def test_xeros_intent_to_receive_is_answered_200_when_signed_and_401_when_not(job_app, connected):
    client = job_app.test_client()
    key = job_app.config["SANDBOX_WEBHOOK_KEY"]
    intent = json.dumps(
        {"events": [], "firstEventSequence": 0, "lastEventSequence": 0, "entropy": "S0M3R4ND0M"}
    ).encode()
    good = deliver(client, "xero", intent, key)
    bad = deliver(client, "xero", intent, "wrong")
    assert (good.status_code, good.data) == (200, b"")
    assert bad.status_code == 401
    assert [row.outcome for row in deliveries(job_app)] == ["intent"]  # the forged one is not stored


@pytest.mark.parametrize("vendor", ["xero", "quickbooks"])
def test_a_company_no_dossier_is_connected_to_is_answered_200_and_nothing_is_queued(
    job_app, connected, vendor
):
    other = "11111111-2222-3333-4444-555555555555" if vendor == "xero" else "123145"
    body = BODIES[vendor](other)
    response = deliver(job_app.test_client(), vendor, body, job_app.config["SANDBOX_WEBHOOK_KEY"])
    assert response.status_code == 200
    [row] = deliveries(job_app)
    assert (row.outcome, row.company_ids, row.integration_ids) == ("unknown_company", [other], [])
    assert refreshes(job_app) == []


def test_an_expired_integration_of_that_company_is_not_refreshed(job_app, connected):
    with job_app.app_context():
        db.session.execute(
            update(Integration).where(Integration.id == connected["xero"]).values(status="expired")
        )
        db.session.commit()
    deliver(job_app.test_client(), "xero", xero_body(), job_app.config["SANDBOX_WEBHOOK_KEY"])
    assert [row.outcome for row in deliveries(job_app)] == ["unknown_company"]
    assert refreshes(job_app) == []


def test_the_vendors_own_key_is_the_one_checked_when_its_app_is_configured(job_app, connected):
    job_app.config.update(
        XERO_CLIENT_ID="app", XERO_CLIENT_SECRET="secret", XERO_WEBHOOK_KEY="xero-webhooks-key-0123456789"
    )
    client = job_app.test_client()
    assert deliver(client, "xero", xero_body(), job_app.config["SANDBOX_WEBHOOK_KEY"]).status_code == 401
    assert deliver(client, "xero", xero_body(), "xero-webhooks-key-0123456789").status_code == 200


def test_a_burst_of_deliveries_starts_one_refresh_per_list_and_one_more_after_it(job_app, connected):
    client = job_app.test_client()
    key = job_app.config["SANDBOX_WEBHOOK_KEY"]
    for _ in range(20):
        assert deliver(client, "xero", xero_body(), key).status_code == 200

    assert len(refreshes(job_app)) == 2  # suppliers and customers, once each
    rows = deliveries(job_app)
    assert [row.outcome for row in rows] == ["accepted"] * 20
    assert rows[0].detail == "queued 2"
    assert all(row.detail == "dirty 2" for row in rows[1:])

    integration_id = connected["xero"]
    with job_app.app_context():
        # The refreshes end (as run_refresh leaves them), then jobs.lists.refresh_list looks at the mark.
        db.session.execute(update(ListSync).values(status=SyncStatus.SUCCEEDED))
        db.session.commit()
        assert after_refresh(integration_id, ListKind.SUPPLIERS, succeeded=True) is True
        assert after_refresh(integration_id, ListKind.CUSTOMERS, succeeded=True) is True
        db.session.execute(update(ListSync).values(status=SyncStatus.SUCCEEDED))
        db.session.commit()
        # The follow-ups end with nothing new: no third refresh.
        assert after_refresh(integration_id, ListKind.SUPPLIERS, succeeded=True) is False
    assert len(refreshes(job_app)) == 4
    assert sorted(queued_args(job_app)).count((integration_id, "suppliers", True)) == 2


def test_a_failed_refresh_drops_the_mark_without_starting_another(job_app, connected):
    client = job_app.test_client()
    key = job_app.config["SANDBOX_WEBHOOK_KEY"]
    deliver(client, "quickbooks", quickbooks_body(), key)
    deliver(client, "quickbooks", quickbooks_body(), key)
    connection = redis.Redis.from_url(job_app.config["REDIS_URL"])
    assert connection.exists(dirty_key(connected["quickbooks"], ListKind.SUPPLIERS))
    with job_app.app_context():
        assert after_refresh(connected["quickbooks"], ListKind.SUPPLIERS, succeeded=False) is False
    assert not connection.exists(dirty_key(connected["quickbooks"], ListKind.SUPPLIERS))
    assert len(refreshes(job_app)) == 1


def test_webhooks_need_no_session_nor_csrf_token(job_app, connected):
    """Flask-WTF's CSRF check is on for the tests' app: a POST without a token is refused elsewhere."""
    job_app.config["WTF_CSRF_ENABLED"] = True
    response = deliver(job_app.test_client(), "xero", xero_body(), job_app.config["SANDBOX_WEBHOOK_KEY"])
    assert response.status_code == 200


# --- a page left open learns of a change ---------------------------------------------------------


def _bookkeeper(app):
    with app.app_context():
        org = make_organisation()
        dossier = make_dossier(org, "Boulangerie Martin")
        make_user(org, "claire@lefevre.test", "bon-mot-de-passe")
        integration = make_integration(dossier, software="pennylane")
        other = make_dossier(make_organisation(), "Garage Dupont")
        return dossier.id, integration.id, other.id


def test_the_page_asks_whether_its_dossier_changed_and_hears_it_when_it_did(job_app):
    dossier_id, integration_id, other_id = _bookkeeper(job_app)
    client = job_app.test_client()
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    page = client.get(f"/dossiers/{dossier_id}/listes/suppliers")
    assert 'id="veille"' in page.text
    version = page.text.split('data-version="')[1].split('"')[0]
    url = f"/dossiers/{dossier_id}/changements"

    unchanged = client.get(url, headers={"If-None-Match": f'"{version}"'})
    assert unchanged.status_code == 204
    assert "HX-Trigger" not in unchanged.headers

    with job_app.app_context():  # a list refreshed in the background writes its event
        db.session.add(
            Event(dossier_id=dossier_id, integration_id=integration_id, kind="lists.refreshed", message="x")
        )
        db.session.commit()
    changed = client.get(url, headers={"If-None-Match": f'"{version}"'})
    assert changed.status_code == 200
    assert changed.headers["HX-Trigger"] == "raccord:integration-changed"
    new_version = changed.headers["ETag"].strip('"')
    assert new_version != version
    assert client.get(url, headers={"If-None-Match": f'"{new_version}"'}).status_code == 204
    # Another cabinet's dossier: as if it did not exist.
    assert client.get(f"/dossiers/{other_id}/changements").status_code == 404


def test_asking_whether_the_dossier_changed_is_not_activity(job_app):
    from datetime import timedelta

    from webapp.models import UserSession
    from webapp.models.base import utcnow

    dossier_id, _, _ = _bookkeeper(job_app)
    client = job_app.test_client()
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    earlier = utcnow() - timedelta(minutes=5)
    with job_app.app_context():
        db.session.execute(update(UserSession).values(last_seen_at=earlier))
        db.session.commit()
    assert client.get(f"/dossiers/{dossier_id}/changements").status_code == 200
    with job_app.app_context():
        seen = db.session.scalar(select(UserSession.last_seen_at))
    assert abs((seen - earlier).total_seconds()) < 1
    client.get(f"/dossiers/{dossier_id}")
    with job_app.app_context():
        assert db.session.scalar(select(UserSession.last_seen_at)) > earlier + timedelta(minutes=4)


# --- software without webhooks: every night, or every hour ---------------------------------------


def test_the_hourly_choice_is_saved_and_a_bad_one_refused_in_french(job_app):
    dossier_id, integration_id, _ = _bookkeeper(job_app)
    client = job_app.test_client()
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    page_url = f"/dossiers/{dossier_id}/integrations/{integration_id}"
    page = client.get(page_url)
    assert "Actualisation automatique des listes" in text_of(page)
    url = f"{page_url}/actualisation-automatique"

    refused = client.post(url, data={"frequence": "minute", "csrf_token": csrf_token(client, page_url)})
    assert refused.status_code == 302
    assert "Choisissez « Chaque nuit » ou « Chaque heure »." in text_of(client.get(page_url))
    with job_app.app_context():
        assert db.session.get(Integration, integration_id).refresh_frequency == "nightly"

    saved = client.post(
        url, data={"frequence": "hourly", "csrf_token": csrf_token(client, page_url)}, follow_redirects=True
    )
    assert "Les listes seront actualisées chaque heure." in text_of(saved)
    with job_app.app_context():
        assert db.session.get(Integration, integration_id).refresh_frequency == "hourly"
        # Who chose it and when, in the dossier's history.
        [event] = db.session.scalars(select(Event).where(Event.kind == "integration.refresh_frequency")).all()
        assert plain_spaces(event.message) == "Actualisation automatique des listes : chaque heure."
        assert event.integration_id == integration_id and event.actor_id is not None

    # The next integration of the dossier (a change of software, a new connection) keeps the choice.
    from webapp.connectors.base import Company, TokenSet
    from webapp.services.integrations import create_integration, disconnect_integration

    with job_app.app_context():
        old = db.session.get(Integration, integration_id)
        disconnect_integration(old, None, keep_rules=True)
        new = create_integration(
            old.dossier, "sage", Company("sage-co", "Boulangerie"), TokenSet("a", "r", 2e9), None
        )
        assert new.refresh_frequency == "hourly"
    # A disconnected integration refreshes nothing: choosing for it is refused.
    refused = client.post(
        url, data={"frequence": "nightly", "csrf_token": csrf_token(client, page_url)}, follow_redirects=True
    )
    assert "Cette intégration est déconnectée : ses listes ne sont plus actualisées." in text_of(refused)
    with job_app.app_context():
        assert db.session.get(Integration, integration_id).refresh_frequency == "hourly"


def test_xero_and_quickbooks_say_their_changes_arrive_by_themselves(job_app, connected):
    with job_app.app_context():
        integration = db.session.get(Integration, connected["xero"])
        user = make_user(integration.dossier.organisation, "paul@lefevre.test", "bon-mot-de-passe")
        dossier_id, email = integration.dossier_id, user.email
    client = job_app.test_client()
    login(client, email, "bon-mot-de-passe")
    page = text_of(client.get(f"/dossiers/{dossier_id}/integrations/{connected['xero']}"))
    assert "Les changements faits dans Xero arrivent dans Raccord en quelques secondes." in page
    assert "Chaque heure" not in page


def test_the_hourly_tick_refreshes_the_lists_of_the_integrations_that_asked_for_it(job_app, connected):
    from webapp.models.base import utcnow
    from webapp.services.periodic import hourly_refresh

    with job_app.app_context():
        org = make_organisation()
        hourly = make_integration(make_dossier(org), software="pennylane")
        nightly = make_integration(make_dossier(org), software="sage")
        hourly.refresh_frequency = "hourly"
        # Xero tells of its changes itself: « chaque heure » set before does nothing.
        db.session.get(Integration, connected["xero"]).refresh_frequency = "hourly"
        db.session.commit()
        hourly_id, nightly_id = hourly.id, nightly.id
        hour = utcnow().strftime("%Y-%m-%dT%H") + uuid.uuid4().hex[:6]
        report = hourly_refresh(hour)
        again = hourly_refresh(hour)
    assert report is not None and report.started == 1  # one job looks at the six lists
    assert again is None  # claimed once, whatever the number of schedulers
    assert queued_jobs(job_app) == [("jobs.lists.refresh_changes", (hourly_id,))]
    assert nightly_id != hourly_id


def test_the_scheduler_runs_the_hourly_refresh(job_app):
    from webapp.scheduler import build_scheduler

    with job_app.app_context():
        scheduler = build_scheduler(job_app)
    jobs = {job.func_name: job for job in scheduler.get_jobs()}
    assert jobs["jobs.periodic.hourly_refresh"].interval == 3600


def test_deliveries_are_counted_for_the_operators(job_app, connected):
    from webapp import metrics

    def counted() -> dict:
        with job_app.app_context():
            return metrics._read(metrics.PREFIX + "raccord_webhook_deliveries")

    before = counted()
    client = job_app.test_client()
    deliver(client, "quickbooks", quickbooks_body(), job_app.config["SANDBOX_WEBHOOK_KEY"])
    deliver(client, "quickbooks", quickbooks_body(), "wrong")
    after = counted()
    for outcome in ("accepted", "forged"):
        key = ("quickbooks", outcome)
        assert after[key] - before.get(key, 0) == 1


def test_support_sees_the_last_change_the_software_announced_for_the_company(job_app, connected):
    """However many deliveries other companies had since, the dossier's own last one is shown."""
    from webapp.models.people import Role

    with job_app.app_context():
        dossier_id = db.session.get(Integration, connected["xero"]).dossier_id
        make_user(make_organisation(), "support@raccord.test", "support-solide", role=Role.STAFF)
    staff = job_app.test_client()
    login(staff, "support@raccord.test", "support-solide")
    page = text_of(staff.get(f"/support/dossiers/{dossier_id}"))
    assert "Changements annoncés par le logiciel" in page
    assert "Aucun webhook reçu pour cette société." in page

    key = job_app.config["SANDBOX_WEBHOOK_KEY"]
    assert deliver(job_app.test_client(), "xero", xero_body(), key).status_code == 200
    for n in range(3):  # other organisations' changes, later
        assert deliver(job_app.test_client(), "xero", xero_body(tenant=f"autre-{n}"), key).status_code == 200
    page = text_of(staff.get(f"/support/dossiers/{dossier_id}"))
    assert re.search(
        r"Dernier webhook reçu le \d\d/\d\d/\d{4} à \d\d:\d\d : Clients, Fournisseurs\.", page
    ), page
    with job_app.app_context():
        assert db.session.get(Integration, connected["xero"]).last_webhook_at is not None

    with job_app.app_context():
        quickbooks_dossier = db.session.get(Integration, connected["quickbooks"]).dossier_id
        pennylane = make_integration(make_dossier(make_organisation()), software="pennylane")
        pennylane.refresh_frequency = "hourly"
        db.session.commit()
        pennylane_dossier = pennylane.dossier_id
    assert "Aucun webhook reçu pour cette société." in text_of(
        staff.get(f"/support/dossiers/{quickbooks_dossier}")
    )
    assert "Pennylane n'envoie pas de webhooks : les listes sont actualisées chaque heure." in text_of(
        staff.get(f"/support/dossiers/{pennylane_dossier}")
    )


def test_old_deliveries_are_forgotten_with_the_old_job_traces(job_app, connected):
    from datetime import timedelta

    from jobs.periodic import purge_old_jobs
    from webapp.models.base import utcnow

    key = job_app.config["SANDBOX_WEBHOOK_KEY"]
    assert deliver(job_app.test_client(), "xero", xero_body(), key).status_code == 200
    assert deliver(job_app.test_client(), "quickbooks", quickbooks_body(), key).status_code == 200
    with job_app.app_context():
        old = utcnow() - timedelta(days=job_app.config["JOB_RETENTION_DAYS"] + 1)
        db.session.execute(
            update(WebhookDelivery).where(WebhookDelivery.vendor == "xero").values(received_at=old)
        )
        db.session.commit()
        purge_old_jobs()
    assert [row.vendor for row in deliveries(job_app)] == ["quickbooks"]
