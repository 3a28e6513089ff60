"""Writing the dossier's timeline. Secrets never reach it."""

from __future__ import annotations

import re
from typing import Any

from webapp.extensions import db
from webapp.models import Event

_SECRET_KEYS = re.compile(r"token|secret|password|authorization|code_verifier|iban|bic|^code$", re.I)
_SECRET_TEXT = re.compile(
    r"(Bearer\s+)[A-Za-z0-9._~+/=-]+|"
    r"((?:access|refresh)_token[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9._~+/=-]+|"
    r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){3,7}(?:\s?[A-Z0-9]{1,4})?\b"
)


def redact(value: Any) -> Any:
    """A copy of `value` with tokens, secrets and bank details masked."""
    if isinstance(value, dict):
        return {k: ("[masqué]" if _SECRET_KEYS.search(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _SECRET_TEXT.sub(lambda m: (m.group(1) or m.group(2) or "") + "[masqué]", value)
    return value


def record_event(
    *,
    dossier_id: int,
    kind: str,
    message: str,
    integration_id: int | None = None,
    actor_id: int | None = None,
    job_run_id: int | None = None,
    outcome: str = "ok",
    details: dict[str, Any] | None = None,
) -> Event:
    """Add an event to the session; the caller commits it with the change it describes."""
    event = Event(
        dossier_id=dossier_id,
        integration_id=integration_id,
        actor_id=actor_id,
        job_run_id=job_run_id,
        kind=kind,
        outcome=outcome,
        message=message,
        details=redact(details or {}),
    )
    db.session.add(event)
    return event
