"""Every worker keeps each company's budget: four real workers refreshing every list of three Xero
organisations at once, with a burst of publications, against a Xero dialect that enforces its limits
(small windows, so that the test is quick) and counts what it saw. No 429 is ever answered, every job
ends, and no limit is exceeded, by the dialect's own count."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.conftest import SANDBOX_CONTROL_TOKEN, run_worker_burst, worker_env
from tests.http_user import COMPANY
from tests.processes import flask_command
from tests.test_publishing import click_publish, status_of
from tests.vendor_helpers import new_bill
from webapp.extensions import db
from webapp.models import DocumentStatus, Dossier, Integration, JobRun, JobStatus, ListItem, ListKind
from webapp.models.lists import ListSync, SyncStatus
from webapp.services.lists import start_refresh_all

OTHERS = ("cmp-atelier-dupont", "cmp-cabinet-rousseau")
#: What the dialect enforces: 8 calls in any 2 seconds, 2 at once, per organisation.
WINDOW_CALLS, WINDOW_SECONDS, AT_ONCE = 8, 2, 2
#: Raccord keeps 6 of the 8: as with Xero's 60 a minute (54 kept), a call's time on the way may
#: bring calls made more than a window apart into one window of the software's.
MARGIN = 0.75
GENERATED = 450  # more contacts, so that each list takes several pages


def _controls(live, method: str, path: str, body: dict | None = None) -> dict:
    import requests

    response = requests.request(
        method,
        f"{live.url}/sandbox/controls/api{path}",
        json=body,
        headers={"Authorization": f"Bearer {SANDBOX_CONTROL_TOKEN}"},
        timeout=30,
    )
    assert response.status_code in (200, 201), response.text
    return response.json()


def _connect(job_app, browser, dossier_id: int, company: str) -> int:
    response = browser.connect(dossier_id, company=company, software="xero")
    assert response.status_code == 200
    run_worker_burst(job_app, timeout=120)
    with job_app.app_context():
        return db.session.scalar(
            select(Integration.id).where(
                Integration.dossier_id == dossier_id, Integration.status == "connected"
            )
        )


@pytest.mark.timeout(300)
def test_four_workers_three_organisations_and_a_burst_of_bills_never_meet_a_429(
    job_app, live, bookkeeper, dossier_id
):
    job_app.config["LIST_PAGE_SIZE"] = 100
    first = _connect(job_app, bookkeeper, dossier_id, COMPANY)
    bills = [
        new_bill(bookkeeper, dossier_id, job_app, tax_code="TVA20", number=f"L-{n:03d}") for n in range(1, 5)
    ]
    with job_app.app_context():
        organisation_id = db.session.get(Dossier, dossier_id).organisation_id
        others = []
        for name in ("Atelier Dupont", "Cabinet Rousseau"):
            dossier = Dossier(organisation_id=organisation_id, name=name)
            db.session.add(dossier)
            db.session.commit()
            others.append(dossier.id)
    integrations = [first] + [
        _connect(job_app, bookkeeper, other, company) for other, company in zip(others, OTHERS, strict=True)
    ]
    for company in (COMPANY, *OTHERS):
        _controls(live, "POST", f"/companies/{company}/suppliers/generate", {"count": GENERATED})

    # Xero's limits, small: the dialect enforces them; Raccord's budget knows them (under its margin).
    _controls(
        live,
        "POST",
        "/limits",
        {
            "on": True,
            "service_ms": 20,  # Xero's own time per call, so that calls overlap
            "xero": {"per_minute": {"calls": WINDOW_CALLS, "seconds": WINDOW_SECONDS}, "concurrent": AT_ONCE},
        },
    )
    job_app.config["VENDOR_LIMIT_MARGIN"] = MARGIN
    job_app.config["VENDOR_LIMITS"] = {
        "xero": {"rates": [[WINDOW_SECONDS, WINDOW_CALLS]], "concurrency": AT_ONCE}
    }

    with job_app.app_context():
        for integration_id in integrations:
            start_refresh_all(db.session.get(Integration, integration_id), None)
    for document_id in bills:
        click_publish(bookkeeper, dossier_id, document_id)

    # Four workers started together (from this thread: the zygote forks one at a time), then drained.
    workers = [flask_command(["--app", "wsgi", "worker", "--burst"], worker_env(job_app)) for _ in range(4)]
    try:
        codes = [w.wait(timeout=240) for w in workers]
    finally:
        for w in workers:
            w.stop(grace=5)
    assert codes == [0, 0, 0, 0]

    seen = _controls(live, "GET", "/limits")["counts"]["xero"]
    assert len(seen) == 3, seen  # the three organisations
    for company, figures in seen.items():
        assert figures["refused"] == 0, (company, figures)
        assert figures["max_concurrent"] <= AT_ONCE, (company, figures)
        assert figures["max_in_window"]["per_minute"] <= WINDOW_CALLS, (company, figures)
        assert figures["accepted"] > WINDOW_CALLS, (company, figures)  # the budget was really put to work

    with job_app.app_context():
        runs = db.session.scalars(select(JobRun)).all()
        assert runs and all(run.status is JobStatus.SUCCEEDED for run in runs), [
            (run.kind, run.status, run.message) for run in runs if run.status is not JobStatus.SUCCEEDED
        ]
        for integration_id in integrations:
            syncs = db.session.scalars(
                select(ListSync).where(ListSync.integration_id == integration_id)
            ).all()
            assert len(syncs) == 6 and all(s.status is SyncStatus.SUCCEEDED for s in syncs)
            suppliers = db.session.scalar(
                select(func.count()).where(
                    ListItem.integration_id == integration_id,
                    ListItem.kind == ListKind.SUPPLIERS,
                    ListItem.active.is_(True),
                )
            )
            assert suppliers >= GENERATED
    for document_id in bills:
        assert status_of(job_app, document_id).status is DocumentStatus.PUBLISHED
