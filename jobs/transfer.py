"""The job of 'Transférer les règles'."""

from __future__ import annotations

from flask_babel import gettext as _
from rq import get_current_job

from webapp.services.jobs import tracked_job
from webapp.services.transfer import documents_moved, rules_outcome, transfer


@tracked_job
def transfer_rules(run_id: int, user_id: int | None = None) -> str:
    job = get_current_job()
    report = transfer(run_id, user_id, job_run_id=(job.meta or {}).get("job_run_id") if job else None)
    documents = report.get("documents") or {"moved": 0, "to_review": 0}
    rules = rules_outcome(len(report["whole"]), len(report["partial"]), len(report["not"]), named=True)
    return _("%(rules)s. %(documents)s", rules=rules, documents=documents_moved(documents))
