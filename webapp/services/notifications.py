"""What Raccord tells people by e-mail, and the send-time values of those mails' templates."""

from __future__ import annotations

from typing import Any

from webapp.models import OutgoingMail
from webapp.services.mail import public_url, register_mail_context


def _integration_links(row: OutgoingMail) -> dict[str, Any]:
    context = row.context or {}
    links: dict[str, Any] = {}
    if context.get("dossier_id") and context.get("integration_id"):
        links["integration_url"] = public_url(
            "settings.integration", dossier_id=context["dossier_id"], integration_id=context["integration_id"]
        )
    if context.get("dossier_id"):
        links["dossier_url"] = public_url("dossiers.show", dossier_id=context["dossier_id"])
    return links


def init_app() -> None:
    """Register the context builders of the notification mails (called by create_app, so that web
    processes and workers alike know them)."""
    register_mail_context("integration_expired", _integration_links)
