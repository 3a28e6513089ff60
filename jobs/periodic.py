"""The periodic jobs RQ's cron scheduler enqueues (webapp.scheduler), and the jobs they spread."""

from __future__ import annotations

from webapp.services import periodic
from webapp.services.jobs import purge_job_runs, tracked_job


def nightly_refresh() -> str:
    report = periodic.nightly_refresh()
    return "Déjà fait cette nuit." if report is None else f"Listes : {report}"


def keep_tokens_alive() -> str:
    report = periodic.keep_tokens_alive()
    return "Déjà fait cette heure-ci." if report is None else f"Renouvellements : {report}"


def announce_consent_endings() -> str:
    return f"{periodic.announce_consent_endings()} fin(s) d'accès annoncée(s)."


def purge_old_jobs() -> str:
    from flask import current_app

    days = int(current_app.config["JOB_RETENTION_DAYS"])
    return f"{purge_job_runs(days)} trace(s) de tâches de plus de {days} jours supprimée(s)."


@tracked_job
def renew_tokens(integration_id: int) -> str:
    return periodic.renew_tokens(integration_id)
