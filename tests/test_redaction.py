"""No token, secret or bank detail reaches the timeline, a document's failure or a job's message:
checked on the software's real answers (the dialects' token and list answers) and after a whole story."""

from __future__ import annotations

import json

import requests
from sqlalchemy import func, select

from tests.conftest import run_worker_burst
from tests.factories import make_dossier
from tests.http_user import COMPANY, connected, controls_api
from tests.test_reconnect import expire, reconnect
from webapp.connectors.base import ConnectorError
from webapp.connectors.http import _snippet
from webapp.extensions import db
from webapp.models import Document, Dossier, Event, Integration, JobRun
from webapp.services.events import record_event
from webapp.services.integrations import load_tokens

IBAN = "FR76 3000 6000 0112 3456 7890 189"
IBAN_COMPACT = IBAN.replace(" ", "")


def add_supplier_with_bank_details(live) -> None:
    response = controls_api.post(
        f"{live.url}/sandbox/controls/api/companies/{COMPANY}/suppliers",
        json={"name": "Imprimerie Lenoir", "extras": {"iban": IBAN, "email": "compta@lenoir.test"}},
        timeout=10,
    )
    assert response.status_code in (200, 201), response.text


def stored_texts(dossier_id: int) -> list[str]:
    """Everything Raccord keeps of the software's words for this dossier."""
    db.session.expire_all()
    texts = [
        e.message + json.dumps(e.details, ensure_ascii=False)
        for e in db.session.scalars(select(Event).where(Event.dossier_id == dossier_id))
    ]
    texts += [
        d.failure_reason + d.failure_detail
        for d in db.session.scalars(select(Document).where(Document.dossier_id == dossier_id))
    ]
    texts += [r.message for r in db.session.scalars(select(JobRun).where(JobRun.dossier_id == dossier_id))]
    return texts


def test_real_answers_of_the_vendors_are_kept_without_tokens_or_bank_details(
    job_app, live, bookkeeper, dossier_id
):
    add_supplier_with_bank_details(live)
    answers = {}
    for software, path, headers in (
        (
            "xero",
            '/sandbox/xero/api.xro/2.0/Contacts?where=Name=="Imprimerie Lenoir"',
            lambda t: {"xero-tenant-id": t.extra["tenant_id"]},
        ),
        (
            "pennylane",
            '/sandbox/pennylane/api/external/v2/suppliers?filter=[{"field":"name","operator":"eq",'
            '"value":"Imprimerie Lenoir"}]',
            lambda t: {},
        ),
    ):
        with job_app.app_context():  # one dossier per software
            org = db.session.get(Dossier, dossier_id).organisation
            target = dossier_id if software == "xero" else make_dossier(org, "Atelier Dupont").id
        integration_id = connected(job_app, bookkeeper, target, software=software)
        with job_app.app_context():
            tokens = load_tokens(db.session.get(Integration, integration_id))
        response = requests.get(
            live.url + path,
            headers={"Authorization": f"Bearer {tokens.access_token}", **headers(tokens)},
            timeout=30,
        )
        assert IBAN in response.text[:1900]  # the software does send it, within what is kept
        answers[software] = response
        # The token endpoint's own answer carries fresh tokens.
        token_url = {
            "xero": "/sandbox/xero/identity/connect/token",
            "pennylane": "/sandbox/pennylane/oauth/token",
        }
        with job_app.app_context():
            client = (job_app.config["SANDBOX_CLIENT_ID"], job_app.config["SANDBOX_CLIENT_SECRET"])
        renewed = requests.post(
            live.url + token_url[software],
            data={"grant_type": "refresh_token", "refresh_token": tokens.refresh_token},
            auth=client,
            timeout=30,
        )
        assert renewed.status_code == 200 and "access_token" in renewed.text
        answers[f"{software}-token"] = renewed

    with job_app.app_context():
        secrets_seen = set()
        for name, response in answers.items():
            body = response.json()
            secrets_seen |= {body.get("access_token"), body.get("refresh_token")} - {None}
            error = ConnectorError("Le logiciel comptable a refusé la demande.", detail=_snippet(response))
            record_event(
                dossier_id=dossier_id, kind="test.answer", message=name, details={"answer": error.detail}
            )
        db.session.commit()
        texts = stored_texts(dossier_id)
    assert len(texts) >= 4 and secrets_seen
    for text in texts:
        assert IBAN not in text and IBAN_COMPACT not in text
        if text.startswith(("xero", "pennylane")) and "token" not in text[:15]:
            assert "Imprimerie Lenoir" in text and "compta@lenoir.test" in text  # the rest is kept
        for secret in secrets_seen:
            assert secret not in text


def test_no_secret_reaches_the_timeline_in_a_whole_story(job_app, issued_tokens, live, connected_dossier):
    """Connect, load the lists, expire, publish into the expiry, reconnect, disconnect: then every
    token the software ever issued, and the client secret, are looked for in what Raccord kept."""
    from sandbox.models import SandboxToken

    browser, dossier_id, integration_id = connected_dossier
    add_supplier_with_bank_details(live)
    page = f"/dossiers/{dossier_id}/integrations/{integration_id}"
    browser.post_form(f"{page}/actualiser", {}, page=page, htmx=True)
    run_worker_burst(job_app)
    expire(job_app, live, browser, dossier_id, integration_id)
    reconnect(browser, dossier_id, integration_id)
    faults = f"{live.url}/sandbox/controls/api/faults"
    controls_api.post(faults, json={"count": 100, "status": 503}, timeout=10)
    browser.post_form(f"{page}/actualiser", {}, page=page, htmx=True)
    run_worker_burst(job_app)
    controls_api.post(faults, json={"count": 0}, timeout=10)
    browser.post_form(f"{page}/deconnecter", {"regles": "conserver"}, page=f"{page}/deconnecter")

    with job_app.app_context():
        tokens = set(issued_tokens)
        assert len(tokens) == 2 * db.session.scalar(select(func.count()).select_from(SandboxToken))
        secret = job_app.config["SANDBOX_CLIENT_SECRET"]
        kinds = {e.kind for e in db.session.scalars(select(Event).where(Event.dossier_id == dossier_id))}
        texts = stored_texts(dossier_id)
    assert len(tokens) >= 4
    assert {"integration.connected", "integration.expired", "integration.reconnected"} <= kinds
    assert "integration.disconnected" in kinds and "lists.refresh_failed" in kinds
    for text in texts:
        assert secret not in text
        assert IBAN not in text and IBAN_COMPACT not in text
        for token in tokens:
            assert token not in text
