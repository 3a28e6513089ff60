"""'Compta Démo': a pretend accounting software, its own Flask app mounted under /sandbox.

Raccord talks to it exactly as to a real software: over HTTP, through OAuth 2 (authorisation code
with PKCE, rotating refresh tokens, revocation) and a paged REST API, in its own format or in each
vendor's (dialects/). Its controls let tests and support staff change token lifetimes, expire or
revoke a grant, edit lists and inject faults.

The boundary: this package imports nothing of Raccord but the database session (its tables are its
own, prefixed `sandbox_`, their migrations under sandbox/migrations). What it knows of the person in
front of it, the host that mounts it says in the WSGI environ (see `tenancy`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, Response

HERE = Path(__file__).resolve().parent

#: Settings the host passes on (the database, and whether it runs tests or production).
SHARED_SETTINGS = ("SQLALCHEMY_DATABASE_URI", "SQLALCHEMY_ENGINE_OPTIONS", "TESTING", "RACCORD_ENV")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def create_sandbox_app(
    settings: dict[str, Any], *, secret_key: str, control_token: str | None = None
) -> Flask:
    """The sandbox app, on the host's database (`settings`), with its own secret and cookie."""
    from sandbox import api, controls, oauth
    from sandbox.csrf import sandbox_csrf
    from webapp.extensions import db

    app = Flask("sandbox", template_folder=str(HERE / "templates"), static_folder=str(HERE / "static"))
    for key in SHARED_SETTINGS:
        app.config[key] = settings.get(key)
    app.config["SECRET_KEY"] = secret_key
    app.config["SANDBOX_CONTROL_TOKEN"] = control_token
    app.config["SESSION_COOKIE_NAME"] = "sandbox_session"
    app.config["SESSION_COOKIE_PATH"] = "/sandbox"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_SECURE"] = settings.get("RACCORD_ENV") == "production"
    app.config["WTF_CSRF_TIME_LIMIT"] = None
    app.json.sort_keys = False  # answers keep the field order of the software they imitate
    db.init_app(app)
    sandbox_csrf.init_app(app)
    oauth.init_app(app)
    app.register_blueprint(oauth.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(controls.bp)
    app.register_blueprint(controls.api)
    from sandbox.dialects import pennylane, quickbooks, sage, xero

    for dialect in (xero, quickbooks, pennylane, sage):
        app.register_blueprint(dialect.bp)
        app.register_blueprint(dialect.api)

    app.after_request(_security_headers)
    return app


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        headers.setdefault("Cache-Control", "no-store")
    return response
