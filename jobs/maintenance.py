"""Housekeeping jobs."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import ngettext

from webapp.services.jobs import purge_job_runs as purge_job_runs_service
from webapp.services.jobs import report_progress, tracked_job


@tracked_job
def purge_job_runs(older_than_days: int = 30) -> str:
    """Delete the records of jobs finished more than `older_than_days` days ago."""
    report_progress(10, _("Recherche des anciennes tâches"))
    count = purge_job_runs_service(older_than_days)
    report_progress(100)
    if count == 0:
        return _("Aucune trace de tâche supprimée.")
    return ngettext("%(num)d trace de tâche supprimée.", "%(num)d traces de tâches supprimées.", count)
