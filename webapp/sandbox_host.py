"""Raccord's side of the boundary with 'Compta Démo' (the `sandbox` package): mounting it under
/sandbox, telling it who is signed in, and giving its companies to organisations."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from sandbox.tenancy import OWNER_ENVIRON_KEY, STAFF_ENVIRON_KEY


def owner_key(organisation_id: int) -> str:
    """How the sandbox knows an organisation: an opaque key, the only thing of Raccord it keeps."""
    return f"raccord-org-{organisation_id}"


class SandboxMount:
    """The sandbox's WSGI app, told in its environ which organisation the Raccord user signed in to
    this browser belongs to (for its consent page) and whether they are staff (for its controls)."""

    def __init__(self, host: Flask, sandbox: Callable[..., Iterable[bytes]]):
        self.host, self.sandbox = host, sandbox
        self.cookie_name = host.config.get("SESSION_COOKIE_NAME") or "session"

    def __call__(self, environ: dict[str, Any], start_response) -> Iterable[bytes]:
        for key in (OWNER_ENVIRON_KEY, STAFF_ENVIRON_KEY):
            environ.pop(key, None)
        if f"{self.cookie_name}=" in environ.get("HTTP_COOKIE", ""):
            owner, staff = self._signed_in(environ)
            if owner:
                environ[OWNER_ENVIRON_KEY] = owner
                environ[STAFF_ENVIRON_KEY] = "1" if staff else "0"
        return self.sandbox(environ, start_response)

    def _signed_in(self, environ: dict[str, Any]) -> tuple[str | None, bool]:
        from flask_login import current_user

        with self.host.request_context(environ):
            if not current_user.is_authenticated:
                return None, False
            return owner_key(current_user.organisation_id), bool(current_user.is_staff)


def mount_sandbox(app: Flask) -> None:
    """Serve 'Compta Démo' under /sandbox of this app, on the same database."""
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    from sandbox import create_sandbox_app

    sandbox = create_sandbox_app(
        dict(app.config),
        secret_key=app.config["SECRET_KEY"] + ":sandbox",
        control_token=app.config.get("SANDBOX_CONTROL_TOKEN"),
    )
    # The dialects sign the webhooks they send with the key Raccord checks them with, and send them
    # to SANDBOX_WEBHOOK_URL/<vendor> or, unset, to this server's own /webhooks/<vendor>.
    sandbox.config["WEBHOOK_KEY"] = app.config["SANDBOX_WEBHOOK_KEY"]
    sandbox.config["WEBHOOK_URL"] = app.config.get("SANDBOX_WEBHOOK_URL")
    sandbox.config["WEBHOOK_CLIENT_ID"] = app.config["SANDBOX_CLIENT_ID"]
    app.extensions["raccord.sandbox"] = sandbox
    app.wsgi_app = DispatcherMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, {"/sandbox": SandboxMount(app, sandbox)}
    )


def seed_sandbox_for(organisation_id: int | None) -> bool:
    """The sandbox's demo companies and Raccord's OAuth client; the companies that belong to nobody
    yet go to `organisation_id`. Idempotent."""
    from flask import current_app

    from sandbox.seed import seed_sandbox

    return seed_sandbox(
        current_app.config["SANDBOX_CLIENT_ID"],
        current_app.config["SANDBOX_CLIENT_SECRET"],
        owner=owner_key(organisation_id) if organisation_id is not None else None,
    )


def grant_tokens(
    app: Flask, *, company_id: str, scope: str, access_ttl: int, refresh_ttl: int
) -> tuple[str, str]:
    """A live grant of Raccord's client to one sandbox company, as if its consent had just been
    given (the demo of `make run`, the tests): (access token, refresh token)."""
    from sandbox.oauth import issue_tokens
    from webapp.extensions import db

    with app.extensions["raccord.sandbox"].app_context():
        tokens = issue_tokens(
            client_id=app.config["SANDBOX_CLIENT_ID"],
            company_id=company_id,
            scope=scope,
            access_ttl=access_ttl,
            refresh_ttl=refresh_ttl,
        )
        db.session.commit()
    return tokens
