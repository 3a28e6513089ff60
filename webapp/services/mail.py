"""E-mail: an outbox row per message, sent by an RQ job, retried until it has left.

    queue_mail(kind, user, template="integration_expired", context={...})

writes an `outgoing_mail` row in the caller's transaction; once that transaction commits, the job
`jobs.mail.send_mail` is queued with RQ's Retry. The job renders `templates/mail/<template>.txt`
and `.html` in the recipient's language (the subject is the `subject` block of the .txt template,
else `context["subject"]`), adds the values a context builder registered for the template computes
at send time (`register_mail_context`: links carrying a token are made there, never stored), and
sends a plain-text message with its HTML alternative through Flask-Mailman.

An SMTP server down or refusing: the row stays queued, attempts + 1 and the reason in last_error, and
RQ tries again after each of MAIL_RETRY_DELAYS; after the last, it is failed. The periodic pass
(`resend_pending`, every SCHEDULE_MAIL_SECONDS) queues again what failed or stayed queued, for
MAIL_GIVE_UP_HOURS: nothing is lost when Redis, a worker or the SMTP server was away.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import smtplib
import socket
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
from flask import current_app, g
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_mailman import EmailMultiAlternatives
from flask_mailman.backends.base import BaseEmailBackend
from jinja2 import TemplateNotFound
from rq import Retry
from sqlalchemy import event, func, or_, select
from sqlalchemy.orm import Session

from webapp.extensions import db, mail
from webapp.i18n import DEFAULT_LOCALE, LOCALES
from webapp.models import MailStatus, OutgoingMail, User
from webapp.models.base import utcnow

log = logging.getLogger(__name__)

ContextBuilder = Callable[[OutgoingMail], dict[str, Any]]
_CONTEXT_BUILDERS: dict[str, ContextBuilder] = {}
_PENDING = "raccord.mail.pending"
#: Context keys that would put a secret in the database: refused (build such values at send time).
_SECRET_KEY = re.compile(r"token|password|secret|mot_de_passe", re.IGNORECASE)
_TEMPLATE_NAME = re.compile(r"^[a-z0-9_]{1,80}$")


class MailNotSent(RuntimeError):
    """This attempt failed (the row says why); RQ tries again, then the periodic pass."""


# --- queueing --------------------------------------------------------------------------------


def register_mail_context(template: str, fn: ContextBuilder) -> None:
    """`fn(mail)` returns values added to the template's context when the mail is sent: what must
    not be stored (a reset link with its token) or must be fresh (an absolute link)."""
    _CONTEXT_BUILDERS[template] = fn


def queue_mail(
    kind: str,
    to_user: User | None,
    *,
    to_address: str | None = None,
    template: str,
    context: dict[str, Any],
    locale: str | None = None,
    dossier_id: int | None = None,
) -> OutgoingMail:
    """Store the mail in the current transaction; it is queued for sending when that commits.

    `to_address` defaults to the user's e-mail, `locale` to the user's language (French otherwise).
    `context` must be JSON and hold no secret: keys naming a token, password or secret are refused."""
    address = (to_address or (to_user.email if to_user else "") or "").strip()
    if "@" not in parseaddr(address)[1]:
        raise ValueError("queue_mail needs a recipient address")
    if not _TEMPLATE_NAME.match(template):
        raise ValueError(f"bad mail template name {template!r}")
    for suffix in ("txt", "html"):
        try:
            current_app.jinja_env.get_template(f"mail/{template}.{suffix}")
        except TemplateNotFound:
            raise ValueError(f"templates/mail/{template}.{suffix} does not exist") from None
    secret = [key for key in _keys(context) if _SECRET_KEY.search(key)]
    if secret:
        raise ValueError(f"secrets are built at send time (register_mail_context), not stored: {secret}")
    context = json.loads(json.dumps(context))  # JSON only (TypeError otherwise), and a copy
    chosen = locale or (to_user.locale if to_user else None)
    row = OutgoingMail(
        kind=kind,
        user_id=to_user.id if to_user else None,
        dossier_id=dossier_id,
        to_address=address,
        locale=chosen if chosen in LOCALES else DEFAULT_LOCALE,
        template=template,
        context=context,
        status=MailStatus.QUEUED,
        attempts=0,
        last_error="",
    )
    db.session.add(row)
    db.session.flush()
    db.session.info.setdefault(_PENDING, []).append(row.id)
    return row


def _keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [str(k) for k in value] + [k for v in value.values() for k in _keys(v)]
    if isinstance(value, list | tuple):
        return [k for v in value for k in _keys(v)]
    return []


@event.listens_for(Session, "after_commit")
def _enqueue_committed(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    for mail_id in pending or ():
        enqueue_send(mail_id)


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)


def enqueue_send(mail_id: int) -> bool:
    """Queue the sending job; False when Redis is away (the periodic pass will queue it later)."""
    from webapp.services.jobs import get_queue

    delays = list(current_app.config["MAIL_RETRY_DELAYS"])
    try:
        get_queue().enqueue(
            "jobs.mail.send_mail",
            mail_id,
            job_id=f"mail-{mail_id}-{uuid.uuid4().hex[:12]}",
            retry=Retry(max=len(delays), interval=delays),
            result_ttl=86400,
            failure_ttl=7 * 86400,
            description=f"mail {mail_id}",
        )
    except redis.exceptions.RedisError as exc:
        log.warning("Mail %s stays queued (Redis: %s); the periodic pass will send it", mail_id, exc)
        return False
    return True


# --- links -------------------------------------------------------------------------------------


def public_url(endpoint: str, _anchor: str | None = None, **values: Any) -> str:
    """An absolute link to a page of Raccord, from PUBLIC_BASE_URL (no request needed: jobs)."""
    base = urlsplit(current_app.config["PUBLIC_BASE_URL"])
    adapter = current_app.url_map.bind(base.netloc, script_name=base.path or "/", url_scheme=base.scheme)
    url = adapter.build(endpoint, values, force_external=True)
    return f"{url}#{_anchor}" if _anchor else url


# --- rendering and sending ----------------------------------------------------------------------


def render_mail(row: OutgoingMail) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of the mail, in its language."""
    context: dict[str, Any] = dict(row.context or {})
    env = current_app.jinja_env
    with force_locale(row.locale):
        g.pop("babel_locale_and_zone", None)  # the date filters' cache (webapp.templating)
        try:
            builder = _CONTEXT_BUILDERS.get(row.template)
            if builder is not None:  # in the mail's language: the labels it adds are the reader's
                context.update(builder(row) or {})
            context.setdefault("preferences_url", public_url("auth.profile", _anchor="notifications"))
            context.setdefault("home_url", public_url("dossiers.index"))
            context.update(mail=row, recipient=row.user, public_url=public_url)
            current_app.update_template_context(context)
            text_template = env.get_template(f"mail/{row.template}.txt")
            text = text_template.render(context)
            html = env.get_template(f"mail/{row.template}.html").render(context)
            subject = ""
            if "subject" in text_template.blocks:
                subject = "".join(text_template.blocks["subject"](text_template.new_context(context)))
            subject = " ".join((subject or str(context.get("subject") or "")).split())
        finally:
            g.pop("babel_locale_and_zone", None)
    return subject or "Raccord", _tidy(text), html


def _tidy(text: str) -> str:
    """Plain text without the blank lines template tags leave (at most one empty line in a row)."""
    # "-- " (with its space) opens the signature for mail clients: kept as it is.
    lines = [line if line == "-- " else line.rstrip() for line in text.strip().splitlines()]
    tidy: list[str] = []
    for line in lines:
        if line or (tidy and tidy[-1]):
            tidy.append(line)
    return "\n".join(tidy) + "\n"


def build_message(row: OutgoingMail, connection: BaseEmailBackend | None = None) -> EmailMultiAlternatives:
    subject, text, html = render_mail(row)
    sender = current_app.config["MAIL_DEFAULT_SENDER"]
    domain = parseaddr(sender)[1].rpartition("@")[2] or "raccord.localhost"
    message = EmailMultiAlternatives(
        subject,
        text,
        from_email=sender,
        to=[row.to_address],
        connection=connection,
        # The same Message-ID on every attempt: a mail client shows a message sent twice once.
        headers={
            "Message-ID": f"<raccord-mail-{row.id}@{domain}>",
            "Auto-Submitted": "auto-generated",
        },
    )
    message.attach_alternative(html, "text/html")
    return message


def mail_connection() -> BaseEmailBackend:
    """A Flask-Mailman backend from the current settings (read at each send: tests change them)."""
    config = current_app.config
    backend = config["MAIL_BACKEND"]
    if backend == "smtp":
        return mail.get_connection(
            backend="smtp",
            host=config["MAIL_SERVER"],
            port=config["MAIL_PORT"],
            username=config["MAIL_USERNAME"],
            password=config["MAIL_PASSWORD"],
            use_tls=config["MAIL_USE_TLS"],
            use_ssl=config["MAIL_USE_SSL"],
            timeout=config["MAIL_TIMEOUT"],
        )
    if backend == "file":
        return mail.get_connection(backend=EmlFileBackend, file_path=config["MAIL_FILE_PATH"])
    return mail.get_connection(backend=backend)


class EmlFileBackend(BaseEmailBackend):
    """One .eml file per message in MAIL_FILE_PATH (instance/mail/): `make run` sends nowhere, and
    any mail client opens what would have been sent."""

    def __init__(self, *args: Any, file_path: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.file_path = Path(file_path or current_app.config["MAIL_FILE_PATH"])

    def send_messages(self, email_messages) -> int:
        self.file_path.mkdir(parents=True, exist_ok=True, mode=0o700)
        for message in email_messages:
            stamp = utcnow().strftime("%Y%m%d-%H%M%S")
            path = self.file_path / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
            path.write_bytes(message.message().as_bytes())
        return len(email_messages)


def describe_failure(exc: BaseException) -> str:
    """Why the attempt failed, for the support area: the server's answer, never a secret."""
    config = current_app.config
    where = f"{config['MAIL_SERVER']}:{config['MAIL_PORT']}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        answers = [f"{code} {_text(msg)}" for code, msg in exc.recipients.values()]
        text = _("Destinataire refusé par le serveur SMTP : %(answer)s", answer="; ".join(answers))
    elif isinstance(exc, smtplib.SMTPResponseException):
        text = _(
            "Le serveur SMTP a répondu %(code)s %(answer)s", code=exc.smtp_code, answer=_text(exc.smtp_error)
        )
    elif isinstance(exc, socket.timeout | TimeoutError):
        text = _("Le serveur SMTP %(server)s n'a pas répondu à temps.", server=where)
    elif isinstance(exc, smtplib.SMTPException | OSError):
        text = _(
            "Serveur SMTP %(server)s injoignable : %(error)s",
            server=where,
            error=str(exc) or type(exc).__name__,
        )
    else:
        text = _("Erreur inattendue pendant l'envoi (%(error)s).", error=type(exc).__name__)
    password = config.get("MAIL_PASSWORD")
    if password:
        text = text.replace(password, "***")
    return text[:1000]


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _lock_key(mail_id: int) -> str:
    return f"raccord:mail:sending:{mail_id}"


def deliver(mail_id: int, *, final: bool) -> str:
    """Send one queued mail now. A failure leaves it queued (failed when `final`) and raises
    MailNotSent for RQ to try again; a mail already sent, or being sent by another worker, is left."""
    from webapp.services.jobs import get_redis

    connection = get_redis()
    ttl = int(current_app.config["MAIL_TIMEOUT"] * 4) + 60
    try:
        if not connection.set(_lock_key(mail_id), "1", nx=True, ex=ttl):
            return _("Cet e-mail est déjà en cours d'envoi.")
    except redis.exceptions.RedisError:
        pass  # the lock is only against a second worker sending at the same moment
    try:
        row = db.session.get(OutgoingMail, mail_id)
        if row is None:
            return _("E-mail introuvable.")
        if row.status is MailStatus.SENT:
            return _("E-mail déjà envoyé.")
        row.attempts = (row.attempts or 0) + 1
        row.last_attempt_at = utcnow()
        try:
            with mail_connection() as backend:
                build_message(row, connection=backend).send(fail_silently=False)
        except Exception as exc:
            if not isinstance(exc, smtplib.SMTPException | OSError):
                log.exception("Mail %s could not be sent", mail_id)
            db.session.rollback()
            row = db.session.get(OutgoingMail, mail_id)
            row.attempts = (row.attempts or 0) + 1
            row.last_attempt_at = utcnow()
            row.last_error = describe_failure(exc)
            row.status = MailStatus.FAILED if final else MailStatus.QUEUED
            db.session.commit()
            raise MailNotSent(row.last_error) from None
        row.status = MailStatus.SENT
        row.sent_at = utcnow()
        row.last_error = ""
        db.session.commit()
        return _("E-mail envoyé.")
    finally:
        with contextlib.suppress(redis.exceptions.RedisError):
            connection.delete(_lock_key(mail_id))


def resend_pending(now: datetime | None = None) -> int:
    """Queue again what failed, or stayed queued without an attempt for MAIL_RESEND_AFTER_MINUTES
    (Redis or the workers were away), written less than MAIL_GIVE_UP_HOURS ago. How many."""
    config = current_app.config
    now = now or utcnow()
    stale = now - timedelta(minutes=config["MAIL_RESEND_AFTER_MINUTES"])
    oldest = now - timedelta(hours=config["MAIL_GIVE_UP_HOURS"])
    last_seen = func.coalesce(OutgoingMail.last_attempt_at, OutgoingMail.created_at)
    rows = db.session.scalars(
        select(OutgoingMail)
        .where(
            OutgoingMail.created_at >= oldest,
            or_(
                OutgoingMail.status == MailStatus.FAILED,
                OutgoingMail.status == MailStatus.QUEUED,
            ),
            last_seen < stale,
        )
        .order_by(OutgoingMail.id)
        .limit(500)
    ).all()
    for row in rows:
        row.status = MailStatus.QUEUED
        row.last_attempt_at = now  # not picked again by the next pass while its job waits
    ids = [row.id for row in rows]
    db.session.commit()
    return sum(1 for mail_id in ids if enqueue_send(mail_id))


def mail_counts() -> dict[str, int]:
    """How many mails wait and how many failed (the support's page of the queues)."""
    counts = dict(
        db.session.execute(select(OutgoingMail.status, func.count()).group_by(OutgoingMail.status)).all()
    )
    return {status.value: int(counts.get(status, 0)) for status in MailStatus}


def mails_for_dossier(dossier, limit: int = 50) -> list[OutgoingMail]:
    """The latest mails about the dossier, and those to its people about no dossier in particular
    (a daily digest, their account): what the support's page of the dossier lists."""
    from webapp.services.dossiers import users_who_may_see

    people = [user.id for user in users_who_may_see(dossier)]
    return list(
        db.session.scalars(
            select(OutgoingMail)
            .where(
                or_(
                    OutgoingMail.dossier_id == dossier.id,
                    OutgoingMail.dossier_id.is_(None) & OutgoingMail.user_id.in_(people),
                )
            )
            .order_by(OutgoingMail.created_at.desc(), OutgoingMail.id.desc())
            .limit(limit)
        )
    )
