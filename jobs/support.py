"""The job of 'Reproduire dans le bac à sable'."""

from __future__ import annotations

from flask import current_app, url_for
from flask_babel import gettext as _
from rq import get_current_job

from webapp.services.jobs import set_result_url, tracked_job
from webapp.services.reproduce import copied_contents, reproduce


@tracked_job
def reproduce_dossier(dossier_id: int, staff_id: int) -> str:
    job = get_current_job()
    done = reproduce(dossier_id, staff_id, job_run_id=(job.meta or {}).get("job_run_id") if job else None)
    with current_app.test_request_context():
        set_result_url(url_for("support.dossier", dossier_id=done.copy.id))
    return _(
        "Copie créée : « %(name)s » (%(contents)s ; intégration %(state)s).",
        name=done.copy.name,
        contents=copied_contents(done.items, done.rules, done.documents),
        state=done.state,
    )
