"""The job of 'Transférer les règles'."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import ngettext
from rq import get_current_job

from webapp.services.jobs import tracked_job
from webapp.services.transfer import documents_moved, transfer


@tracked_job
def transfer_rules(run_id: int, user_id: int | None = None) -> str:
    job = get_current_job()
    report = transfer(run_id, user_id, job_run_id=(job.meta or {}).get("job_run_id") if job else None)
    documents = report.get("documents") or {"moved": 0, "to_review": 0}
    whole, partial, refused = len(report["whole"]), len(report["partial"]), len(report["not"])
    rules = [
        _("aucune règle transférée entière")
        if whole == 0
        else ngettext("%(num)d règle transférée entière", "%(num)d règles transférées entières", whole),
        _("aucune avec des champs vides")
        if partial == 0
        else ngettext("%(num)d avec des champs vides", "%(num)d avec des champs vides", partial),
        _("aucune non transférée")
        if refused == 0
        else ngettext("%(num)d non transférée", "%(num)d non transférées", refused),
    ]
    return _("%(rules)s. %(documents)s", rules=", ".join(rules), documents=documents_moved(documents))
