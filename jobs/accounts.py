"""Account mail sent from a job: the page asking for it answers the same, at the same pace, whoever
asks (webapp.services.passwords)."""

from __future__ import annotations

from webapp.services.passwords import send_reset_mail


def send_password_reset(email: str) -> str:
    send_reset_mail(email)
    return "done"  # the same whether an account exists: the job's result says nothing either
