"""The job of 'Transférer les règles'."""

from __future__ import annotations

from rq import get_current_job

from webapp.services.jobs import tracked_job
from webapp.services.transfer import transfer


@tracked_job
def transfer_rules(run_id: int, user_id: int | None = None) -> str:
    job = get_current_job()
    report = transfer(run_id, user_id, job_run_id=(job.meta or {}).get("job_run_id") if job else None)
    documents = report.get("documents") or {"moved": 0, "to_review": 0}
    return (
        f"{len(report['whole'])} règle(s) transférée(s) entières, "
        f"{len(report['partial'])} avec des champs vides, {len(report['not'])} non transférée(s) ; "
        f"{documents['moved']} document(s) transféré(s), dont {documents['to_review']} à réviser."
    )
