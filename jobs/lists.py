"""Jobs that load the lists of an integration from its accounting software."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import ngettext
from rq import get_current_job

from webapp.models import ListKind
from webapp.services.jobs import tracked_job
from webapp.services.lists import run_refresh
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
