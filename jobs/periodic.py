"""The periodic jobs RQ's cron scheduler enqueues (webapp.scheduler), and the jobs they spread."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import ngettext

from webapp.services import periodic
from webapp.services.jobs import purge_job_runs, tracked_job


def nightly_refresh() -> str:
    report = periodic.nightly_refresh()
    return _("Déjà fait cette nuit.") if report is None else _("Listes : %(report)s", report=report)


def hourly_refresh() -> str:
    report = periodic.hourly_refresh()
    return _("Déjà fait cette heure-ci.") if report is None else _("Listes : %(report)s", report=report)


def keep_tokens_alive() -> str:
    report = periodic.keep_tokens_alive()
    return (
        _("Déjà fait cette heure-ci.") if report is None else _("Renouvellements : %(report)s", report=report)
    )


def announce_consent_endings() -> str:
    count = periodic.announce_consent_endings()
    if count == 0:
        return _("Aucune fin d'accès annoncée.")
    return ngettext("%(num)d fin d'accès annoncée.", "%(num)d fins d'accès annoncées.", count)


def purge_old_jobs() -> str:
    from flask import current_app

    from webapp.services.webhooks import purge_deliveries

    days = int(current_app.config["JOB_RETENTION_DAYS"])
    purge_deliveries(days)  # the webhook journal ages out with the job traces
    count = purge_job_runs(days)
    if count == 0:
        return _("Aucune trace de tâche de plus de %(days)d jours supprimée.", days=days)
    return ngettext(
        "%(num)d trace de tâche de plus de %(days)d jours supprimée.",
        "%(num)d traces de tâches de plus de %(days)d jours supprimées.",
        count,
        days=days,
    )


@tracked_job
def renew_tokens(integration_id: int) -> str:
    return periodic.renew_tokens(integration_id)
