"""GET /jobs/<id>: a fragment that re-polls itself only while the job runs."""

from __future__ import annotations

from flask import abort, current_app, render_template
from flask_login import current_user, login_required
from htmx_flask import make_response

from webapp.jobstatus import bp
from webapp.live import changed
from webapp.services.jobs import get_job_run_for, job_view


@bp.get("/jobs/<bigid:job_run_id>")
@login_required
def show(job_run_id: int):
    run = get_job_run_for(current_user, job_run_id)
    if run is None:
        abort(404)
    view = job_view(run)
    body = render_template("jobs/_status.html", job=view, poll_seconds=current_app.config["JOB_POLL_SECONDS"])
    # Only a running job's fragment asks again: one that answers finished has just seen the job end.
    return make_response(body, trigger=changed() if view.finished else None)
