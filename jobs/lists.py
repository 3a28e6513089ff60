"""Jobs that load the lists of an integration from its accounting software."""

from __future__ import annotations

from rq import get_current_job

from webapp.models import ListKind
from webapp.services.jobs import tracked_job
from webapp.services.lists import run_refresh


@tracked_job
def refresh_list(integration_id: int, kind: str, changes_only: bool = False) -> str:
    job = get_current_job()
    list_kind = ListKind(kind)
    counts = run_refresh(
        integration_id,
        list_kind,
        run_key=job.id if job else "direct",
        job_run_id=(job.meta or {}).get("job_run_id") if job else None,
        changes_only=changes_only,
    )
    return (
        f"{list_kind.label} : {counts.received} élément(s) lu(s), {counts.added} ajouté(s), "
        f"{counts.updated} modifié(s), {counts.deactivated} rendu(s) inactif(s)."
    )
