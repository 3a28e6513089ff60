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
    from sandbox.inputs import IdConverter

    app.url_map.converters["int"] = IdConverter  # before the routes: they are compiled with it
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

    app.before_request(_refuse_nul_characters)
    app.after_request(_security_headers)
    return app


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _refuse_nul_characters():
    """A NUL in a path, a query, a form or a JSON body: no software stores one (PostgreSQL cannot),
    so it is refused before anything reads it. Attachments' bytes are not text and are not looked at."""
    from flask import jsonify, render_template, request

    texts = [request.path, *request.args.values(), *request.form.values()]
    texts += [upload.filename or "" for upload in request.files.values()]
    if not (_has_nul(texts) or (request.is_json and _has_nul(request.get_json(silent=True)))):
        return None
    message = "NUL characters are not allowed"
    if request.endpoint and request.endpoint.endswith("authorize"):
        return render_template("consent_error.html", error="La demande contient un caractère interdit."), 400
    return jsonify({"error": "invalid_request", "message": message}), 400


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        headers.setdefault("Cache-Control", "no-store")
    return response
