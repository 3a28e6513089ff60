"""Sending the outbox (webapp.services.mail): one job per mail, retried by RQ, and the periodic pass."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import ngettext
from rq import get_current_job

from webapp.services import mail


def send_mail(mail_id: int) -> str:
    """Send one mail. A failure raises for RQ's Retry; on the last try the mail is marked failed."""
    job = get_current_job()
    final = not (job is not None and job.retries_left)
    return mail.deliver(mail_id, final=final)


def resend_mail() -> str:
    """The periodic pass: mails that failed or stayed queued are queued again."""
    count = mail.resend_pending()
    if count == 0:
        return _("Aucun e-mail à renvoyer.")
    return ngettext("%(num)d e-mail renvoyé.", "%(num)d e-mails renvoyés.", count)
