"""OAuth secrets stay in the encrypted column: not in logs (the web's and the workers'), pages, events or
job records, through a connection, a refresh of expired tokens and a refused grant; and PKCE is enforced."""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs, urlparse

import requests
from sqlalchemy import select

from sandbox.models import SandboxToken
from tests.conftest import run_worker_burst, unescaped
from tests.http_user import COMPANY, controls_api, token_in
from webapp.extensions import db
from webapp.models import Event, Integration, IntegrationStatus, JobRun


def test_tokens_are_in_no_log_page_event_or_job_record(
    job_app, live, bookkeeper, dossier_id, caplog, issued_tokens
):
    caplog.set_level(logging.DEBUG)  # every logger of the web process: the app's, authlib, urllib3, werkzeug
    controls_api.post(f"{live.url}/sandbox/controls/api/settings", json={"access_ttl": 60}, timeout=10)
    pages = [bookkeeper.connect(dossier_id).text]
    workers = [run_worker_burst(job_app)]
    with job_app.app_context():
        integration_id = db.session.scalar(select(Integration.id).where(Integration.dossier_id == dossier_id))
        for token in db.session.scalars(select(SandboxToken)):  # expired: the next loads refresh them
            token.issued_at -= 120
        db.session.commit()
    page = f"/dossiers/{dossier_id}/integrations/{integration_id}"
    bookkeeper.post_form(f"{page}/actualiser", {}, page=page, htmx=True)
    workers.append(run_worker_burst(job_app))
    # The grant withdrawn at the software: the next refresh meets invalid_grant, whose answer is kept.
    controls_api.post(f"{live.url}/sandbox/controls/api/companies/{COMPANY}/revoke", json={}, timeout=10)
    with job_app.app_context():
        for token in db.session.scalars(select(SandboxToken)):
            token.issued_at -= 120
        db.session.commit()
    bookkeeper.post_form(f"{page}/actualiser", {}, page=page, htmx=True)
    workers.append(run_worker_burst(job_app))
    pages += [bookkeeper.get(path).text for path in (page, f"/dossiers/{dossier_id}/parametres/connexions")]

    with job_app.app_context():
        integration = db.session.get(Integration, integration_id)
        assert integration.status is IntegrationStatus.EXPIRED  # the story went through the refusal
        issued = db.session.scalars(select(SandboxToken)).all()
        assert len(issued) >= 2  # a connection and at least one refresh
        secrets = set(issued_tokens)
        assert len(secrets) == 2 * len(issued)  # each token, in clear as the software gave it
        secrets.add(job_app.config["SANDBOX_CLIENT_SECRET"])
        stored = [
            json.dumps([e.message, e.details], ensure_ascii=False) for e in db.session.scalars(select(Event))
        ] + [
            json.dumps([r.description, r.message, r.args, r.kwargs], ensure_ascii=False)
            for r in db.session.scalars(select(JobRun))
        ]
        ciphertext = integration.token_ciphertext or ""

    logged = caplog.text + "".join(w.stdout + w.stderr for w in workers)
    assert "invalid_grant" in logged or any("invalid_grant" in s for s in stored)  # the refusal was seen
    shown = unescaped("".join(pages))
    for secret in secrets:
        assert secret not in logged
        assert secret not in shown
        assert not any(secret in record for record in stored)
        assert secret not in ciphertext


def test_the_software_refuses_a_code_without_its_pkce_verifier(job_app, live, bookkeeper, dossier_id):
    """The code the consent hands back is useless to whoever steals it from the callback URL: the
    software exchanges it only with the verifier Raccord kept in the user's session."""
    start = bookkeeper.post_form(
        f"/dossiers/{dossier_id}/connexions/sandbox/connecter",
        {},
        page=f"/dossiers/{dossier_id}/parametres/connexions",
        allow_redirects=False,
    )
    authorize_url = start.headers["Location"]
    asked = parse_qs(urlparse(authorize_url).query)
    assert asked["code_challenge_method"] == ["S256"] and len(asked["code_challenge"][0]) >= 43
    consent = bookkeeper.get(authorize_url)
    back = bookkeeper.http.post(
        authorize_url,
        data={"decision": "allow", "company_id": COMPANY, "csrf_token": token_in(consent.text)},
        allow_redirects=False,
        timeout=30,
    )
    callback = back.headers["Location"]
    code = parse_qs(urlparse(callback).query)["code"][0]

    client = (job_app.config["SANDBOX_CLIENT_ID"], job_app.config["SANDBOX_CLIENT_SECRET"])
    token_url = f"{live.url}/sandbox/oauth/token"
    redirect_uri = asked["redirect_uri"][0]
    for verifier in (None, "a-verifier-of-someone-else-" + "x" * 40):
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if verifier:
            form["code_verifier"] = verifier
        refused = requests.post(token_url, data=form, auth=client, timeout=30)
        assert refused.status_code == 400 and "access_token" not in refused.text
    with job_app.app_context():
        assert db.session.scalar(select(SandboxToken)) is None
        assert db.session.scalar(select(Integration)) is None

    # Raccord's own callback, with the verifier of this session, connects.
    done = bookkeeper.get(callback)
    assert "Compta Démo est connecté à la société « Boulangerie Martin SARL »." in unescaped(done.text)
