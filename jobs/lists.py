"""Jobs that load the lists of an integration from its accounting software."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import ngettext
from rq import get_current_job

from webapp.models import ListKind
from webapp.services.jobs import UserFacingJobError, tracked_job
from webapp.services.lists import check_changes, run_refresh
from webapp.services.webhooks import after_refresh


@tracked_job
def refresh_list(integration_id: int, kind: str, changes_only: bool = False) -> str:
    job = get_current_job()
    list_kind = ListKind(kind)
    try:
        counts = run_refresh(
            integration_id,
            list_kind,
            run_key=job.id if job else "direct",
            job_run_id=(job.meta or {}).get("job_run_id") if job else None,
            changes_only=changes_only,
        )
    except BaseException:
        after_refresh(integration_id, list_kind, succeeded=False)
        raise
    # A change the software announced while this refresh ran (a webhook): one more, changes only.
    after_refresh(integration_id, list_kind, succeeded=True)
    received = (
        _("aucun élément lu")
        if counts.received == 0
        else ngettext("%(num)d élément lu", "%(num)d éléments lus", counts.received)
    )
    return _(
        "%(list)s : %(received)s, %(summary)s.",
        list=list_kind.label,
        received=received,
        summary=counts.summary(),
    )


@tracked_job
def refresh_changes(integration_id: int) -> str:
    """The night's (or the hour's) look at all the lists of one integration: what changed, in words."""
    job = get_current_job()
    report = check_changes(
        integration_id,
        run_key=job.id if job else "direct",
        job_run_id=(job.meta or {}).get("job_run_id") if job else None,
    )
    changed = report.changed()
    parts = [
        _(
            "%(list)s : %(received)s, %(summary)s.",
            list=kind.label,
            received=ngettext("%(num)d élément lu", "%(num)d éléments lus", counts.received),
            summary=counts.summary(),
        )
        for kind, counts in changed.items()
    ]
    quiet = len(report.counts) - len(changed)
    if quiet:
        parts.append(
            _("Aucun changement dans les listes.")
            if not changed and not report.busy and not report.failed
            else ngettext("%(num)d liste sans changement.", "%(num)d listes sans changement.", quiet)
        )
    if report.busy:
        parts.append(
            ngettext(
                "%(num)d liste déjà en cours de chargement.",
                "%(num)d listes déjà en cours de chargement.",
                len(report.busy),
            )
        )
    if report.failed:
        raise UserFacingJobError(" ".join([*parts, *(reason for _kind, reason in report.failed)]))
    return " ".join(parts) or _("Intégration non connectée : rien à actualiser.")
