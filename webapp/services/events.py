"""Writing the dossier's timeline. Secrets never reach it."""

from __future__ import annotations

import re
from typing import Any

from webapp.extensions import db
from webapp.models import Event

MASK = "[masqué]"

# Keys whose values never reach the timeline: credentials, and bank details (IBAN, BIC, account
# numbers, Xero's BankAccountDetails, Pennylane's iban, Sage's bank_account_details…).
_SECRET_KEYS = re.compile(
    r"token|secret|password|authorization|code_verifier|iban|^bic$|swift|bank_?account|account_?number"
    r"|sort_?code|^code$",
    re.I,
)
_SECRET_TEXT = re.compile(
    r"(?P<scheme>(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]+|"
    r"(?P<key>\b(?:access_token|refresh_token|id_token|client_secret|password|code_verifier|iban|bic|"
    r"BankAccountDetails|BankAccountNumber|bank_account_number|account_number)[\"']?\s*[:=]\s*)"
    r"(?P<value>\"[^\"]*\"|'[^']*'|[^\"'&,}\s]+)|"
    r"(?-i:\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){3,7}(?:\s?[A-Z0-9]{1,4})?\b)",
    re.I,
)


def _mask(match: re.Match) -> str:
    if match.group("scheme"):
        return match.group("scheme") + MASK
    if match.group("key"):
        quote = match.group("value")[0]
        return match.group("key") + (f"{quote}{MASK}{quote}" if quote in "\"'" else MASK)
    return MASK


def redact(value: Any) -> Any:
    """A copy of `value` with tokens, secrets and bank details masked."""
    if isinstance(value, dict):
        return {k: (MASK if _SECRET_KEYS.search(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _SECRET_TEXT.sub(_mask, value)
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
