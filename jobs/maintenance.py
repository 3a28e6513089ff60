"""Housekeeping jobs."""

from __future__ import annotations

from webapp.services.jobs import purge_job_runs as purge_job_runs_service
from webapp.services.jobs import report_progress, tracked_job


@tracked_job
def purge_job_runs(older_than_days: int = 30) -> str:
    """Delete the records of jobs finished more than `older_than_days` days ago."""
    report_progress(10, "Recherche des anciennes tâches")
    count = purge_job_runs_service(older_than_days)
    report_progress(100)
    return f"{count} trace(s) de tâches supprimée(s)."
