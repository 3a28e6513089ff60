"""Jobs that publish documents to the accounting software."""

from __future__ import annotations

from rq import get_current_job

from webapp.services.jobs import tracked_job
from webapp.services.publishing import publish


@tracked_job
def publish_document(document_id: int) -> str:
    job = get_current_job()
    return publish(document_id, job_run_id=(job.meta or {}).get("job_run_id") if job else None)
