"""Routes of the support area. Members get 404 on every URL, as for a page that does not exist."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from htmx_flask import make_response

from webapp.errors import render_error
from webapp.extensions import db
from webapp.ids import parse_id
from webapp.live import is_refresh
from webapp.models import Dossier, JobRun, User
from webapp.models.integration import SOFTWARE_WITH_WEBHOOKS
from webapp.models.mail import mail_kind_label
from webapp.services.dossiers import viewed_as
from webapp.services.jobs import JobBackendUnavailable, NotRetryable, launch_job, retry_job
from webapp.services.mail import mail_counts, mails_for_dossier
from webapp.services.queue_health import queue_health, worker_state_label
from webapp.services.support import (
    budget_usage,
    documents_needing_help,
    dossier_jobs,
    end_view_as,
    find_dossiers,
    list_loads,
    organisation_members,
    record_access,
    reproductions,
    rule_counts,
    start_view_as,
    webhook_seen,
)
from webapp.services.timeline import CATEGORIES, OUTCOMES, TimelineFilters, timeline
from webapp.support import bp

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# While staff view a dossier as its user, these still work: leaving the view, logging out.
ALLOWED_WHILE_VIEWING = {"support.stop_view_as", "auth.logout"}


@bp.before_request
def staff_only():
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
    if not current_user.is_staff:
        abort(404)
    return None


@bp.before_app_request
def read_only_while_viewing_as():
    """'Voir comme l'utilisateur' is read only: every POST (htmx included) is refused, in French."""
    if request.method in SAFE_METHODS or request.endpoint in ALLOWED_WHILE_VIEWING:
        return None
    if not current_user.is_authenticated:
        return None
    view_as = viewed_as(current_user)
    if not view_as:
        return None
    message = _(
        "Lecture seule : vous voyez ce dossier comme %(user)s. "
        "Quittez « Voir comme l'utilisateur » pour agir.",
        user=view_as.get("user_name") or _("l'utilisateur"),
    )
    if request.headers.get("HX-Request") == "true":
        response = make_response(
            render_template("errors/_error.html", code=403, title=_("Lecture seule"), message=message),
            403,
            trigger={"raccord:toast": {"message": message, "level": "error"}},
        )
        return response
    return render_error(403, message)


@bp.app_context_processor
def view_as_banner():
    if current_user and current_user.is_authenticated and current_user.is_staff:
        return {"view_as": viewed_as(current_user)}
    return {"view_as": None}


def _dossier(dossier_id: int) -> Dossier:
    dossier = db.session.get(Dossier, dossier_id)
    if dossier is None:
        abort(404)
    return dossier


@bp.get("")
def index():
    search = (request.args.get("q") or "").strip()[:100]
    results = find_dossiers(search) if search else []
    if request.htmx and request.htmx.target == "support-results":
        return render_template("support/_results.html", results=results, search=search)
    return render_template("support/index.html", results=results, search=search)


@bp.get("/dossiers/<int:dossier_id>")
def dossier(dossier_id: int):
    dossier = _dossier(dossier_id)
    filters = TimelineFilters.from_args(request.args)
    entries, more = timeline(dossier.id, filters)
    if request.htmx and request.htmx.target == "timeline":
        return render_template(
            "support/_timeline.html",
            dossier=dossier,
            entries=entries,
            more=more,
            filters=filters,
            categories=CATEGORIES,
            outcomes=OUTCOMES,
        )
    if not is_refresh():  # the page updating itself after a job is not a new look at the dossier
        record_access(current_user, dossier, _("le dossier dans l'espace support"))
    current = dossier.current_integration
    return render_template(
        "support/dossier.html",
        dossier=dossier,
        current=current,
        loads=list_loads(current),
        budget=budget_usage(current),
        budget_margin=float(current_app.config["VENDOR_LIMIT_MARGIN"]),
        pushes_changes=bool(current and current.software in SOFTWARE_WITH_WEBHOOKS),
        webhook=webhook_seen(current),
        rules=rule_counts(dossier),
        documents=documents_needing_help(dossier),
        jobs=dossier_jobs(dossier),
        copies=reproductions(dossier),
        original=db.session.get(Dossier, dossier.reproduced_from_id) if dossier.reproduced_from_id else None,
        members=organisation_members(dossier),
        mails=mails_for_dossier(dossier),
        mail_kind_label=mail_kind_label,
        entries=entries,
        more=more,
        filters=filters,
        categories=CATEGORIES,
        outcomes=OUTCOMES,
        sandbox_enabled=current_app.config.get("SANDBOX_ENABLED"),
        poll_seconds=current_app.config["JOB_POLL_SECONDS"],
    )


@bp.post("/dossiers/<int:dossier_id>/voir-comme")
def view_as(dossier_id: int):
    dossier = _dossier(dossier_id)
    user_id = parse_id(request.form.get("user_id"))
    user = db.session.get(User, user_id) if user_id else None
    if user is None or user not in organisation_members(dossier):
        flash(_("Choisissez un utilisateur du cabinet de ce dossier."), "error")
        return redirect(url_for("support.dossier", dossier_id=dossier.id))
    if viewed_as(current_user):
        end_view_as(current_user)
    start_view_as(current_user, dossier, user)
    flash(_("Vous voyez le dossier comme %(user)s, en lecture seule.", user=user.display_name), "info")
    return redirect(url_for("dossiers.show", dossier_id=dossier.id))


@bp.post("/quitter-la-vue")
def stop_view_as():
    dossier_id = end_view_as(current_user)
    if dossier_id is None:
        return redirect(url_for("support.index"))
    return redirect(url_for("support.dossier", dossier_id=dossier_id))


@bp.post("/dossiers/<int:dossier_id>/reproduire")
def reproduce(dossier_id: int):
    dossier = _dossier(dossier_id)
    if not current_app.config.get("SANDBOX_ENABLED"):
        flash(
            _(
                "Le logiciel de démonstration est désactivé sur cette installation : "
                "la reproduction est impossible."
            ),
            "error",
        )
        return redirect(url_for("support.dossier", dossier_id=dossier.id))
    try:
        launch_job(
            "jobs.support.reproduce_dossier",
            dossier.id,
            current_user.id,
            kind="reproduce",
            description=_("Reproduction de « %(name)s » dans le bac à sable", name=dossier.name),
            owner=current_user,
            dossier=dossier,
        )
        flash(_("La reproduction a commencé : elle apparaît dans « Tâches »."), "success")
    except JobBackendUnavailable as exc:
        flash(str(exc), "error")
    return redirect(url_for("support.dossier", dossier_id=dossier.id) + "#taches")


@bp.post("/taches/<bigid:job_run_id>/relancer")
def retry(job_run_id: int):
    run = db.session.get(JobRun, job_run_id)
    if run is None:
        abort(404)
    back = (
        url_for("support.dossier", dossier_id=run.dossier_id) + "#taches"
        if run.dossier_id
        else url_for("support.queues")
    )
    try:
        new = retry_job(run, current_user)
        flash(_("Tâche relancée (n° %(number)d).", number=new.id), "success")
    except (NotRetryable, JobBackendUnavailable) as exc:
        flash(str(exc), "error")
    return redirect(back)


@bp.get("/files")
def queues():
    return render_template(
        "support/queues.html",
        health=queue_health(),
        state_label=worker_state_label,
        mails=mail_counts(),
        give_up_hours=current_app.config["MAIL_GIVE_UP_HOURS"],
    )
