"""The demo of `make run`: rules and invoices added once the connected demo dossier's lists are loaded."""

from __future__ import annotations

from webapp.services import demo
from webapp.services.jobs import tracked_job


@tracked_job
def finish_demo(integration_id: int) -> str:
    return demo.finish_demo(integration_id)
