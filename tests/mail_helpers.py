"""An SMTP server of the test's own (aiosmtpd) that keeps what it receives, and how to read it."""

from __future__ import annotations

import email
import email.policy
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller


@dataclass
class Received:
    envelope_from: str
    envelope_to: list[str]
    message: EmailMessage

    def header(self, name: str) -> str:
        return str(self.message[name] or "")

    @property
    def subject(self) -> str:
        # A long subject is folded before its first encoded word ("Subject:\n =?utf-8?q?…"); mail
        # clients drop the space that leaves in front, Python's parser keeps it.
        return self.header("Subject").strip()

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else ""


@dataclass
class _Handler:
    received: list[Received] = field(default_factory=list)
    refuse: str | None = None  # an SMTP answer given to every RCPT TO, e.g. "550 5.1.1 Unknown user"
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 (aiosmtpd's name)
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


class SmtpServer:
    """aiosmtpd on 127.0.0.1:`port`; stop() and start() again to play an outage."""

    def __init__(self, port: int):
        self.port = port
        self.handler = _Handler()
        self.controller: Controller | None = None

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def start(self) -> SmtpServer:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def wait_for(self, count: int, timeout: float = 20) -> list[Received]:
        """The messages once at least `count` arrived (polled, with a deadline)."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            assert time.monotonic() < deadline, f"{len(self.messages)} message(s) received, {count} expected"
            time.sleep(0.05)
        return self.messages


def use_smtp(app, server: SmtpServer, **settings) -> None:
    """The app (and the workers started from it, tests.conftest.worker_env) send through `server`."""
    app.config.update(
        MAIL_BACKEND="smtp",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=server.port,
        MAIL_TIMEOUT=5.0,
        PUBLIC_BASE_URL="https://raccord.cabinet.test",
        MAIL_RETRY_DELAYS=[0, 0],
        **settings,
    )
