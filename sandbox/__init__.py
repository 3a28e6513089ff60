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

from sandbox.inputs import BadField

HERE = Path(__file__).resolve().parent

#: Settings the host passes on (the database, and whether it runs tests or production).
SHARED_SETTINGS = (
    "SQLALCHEMY_DATABASE_URI",
    "SQLALCHEMY_ENGINE_OPTIONS",
    "TESTING",
    "RACCORD_ENV",
    "SANDBOX_VENDOR_LIMITS",  # the dialects enforce the vendors' rate limits (sandbox/limits.py)
)

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def create_sandbox_app(
    settings: dict[str, Any], *, secret_key: str, control_token: str | None = None
) -> Flask:
    """The sandbox app, on the host's database (`settings`), with its own secret and cookie."""
    from sandbox import api, controls, limits, oauth
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
    limits.init_app(app, settings.get("REDIS_URL"))

    app.before_request(_refuse_unstorable_input)
    app.register_error_handler(BadField, _bad_field)
    for shape_error in (AttributeError, TypeError, KeyError, ArithmeticError):
        app.register_error_handler(shape_error, _body_of_another_shape)
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


def _bad_field(error: BadField):
    from flask import jsonify

    from webapp.extensions import db

    db.session.rollback()
    return jsonify({"error": "invalid_request", "message": str(error), "field": error.field}), 400


def _body_of_another_shape(error: Exception):
    """A JSON body whose parts are not of the types the software reads (a string where it reads an
    object, a list of strings for a list of lines): refused as the vendors refuse it, 400. Anything
    else that fails is a fault of the sandbox and stays an error 500."""
    from flask import jsonify, request

    from webapp.extensions import db

    if request.method in ("GET", "HEAD") or not request.is_json:
        raise error
    db.session.rollback()
    message = "The request body does not have the shape this endpoint reads"
    return jsonify({"error": "invalid_request", "message": message}), 400


def _unstorable(value: Any) -> bool:
    """Text no database stores: a NUL (PostgreSQL refuses it) or a lone surrogate (no UTF-8 for it).
    Walked without recursion: a body nested 5 000 deep is an answer, not a crash."""
    pending = [value]
    while pending:
        each = pending.pop()
        if isinstance(each, str):
            if "\x00" in each or not each.isascii() and _has_surrogate(each):
                return True
        elif isinstance(each, dict):
            pending += [*each.keys(), *each.values()]
        elif isinstance(each, list):
            pending += each
    return False


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


#: What the sandbox stores of an Idempotency-Key (its column's length).
MAX_IDEMPOTENCY_KEY = 120


def _refuse_unstorable_input():
    """A NUL or a lone surrogate in a path, a query, a form, a file name, a JSON body or the
    Idempotency-Key; a JSON body too deep to read; a key longer than the sandbox keeps: refused before
    anything reads them, as the software would. Attachments' bytes are not text and are not looked at."""
    from flask import jsonify, render_template, request

    if request.mimetype == "multipart/form-data":
        # Kept before the form is parsed: a dialect reads each part's own headers (QuickBooks' upload
        # sends its file base64-encoded, said in the part's Content-Transfer-Encoding).
        request.get_data(cache=True, parse_form_data=False)
    texts: list[Any] = [request.path, request.headers.get("Idempotency-Key", "")]
    texts += [value for _, values in request.args.lists() for value in values]
    texts += [value for _, values in request.form.lists() for value in values]
    texts += [upload.filename or "" for _, uploads in request.files.lists() for upload in uploads]
    problem = None
    if request.is_json:
        try:
            texts.append(request.get_json(silent=True))
        except RecursionError:
            problem = "The JSON body is nested too deeply"
    if problem is None and _unstorable(texts):
        problem = "NUL characters and lone surrogates are not allowed"
    if problem is None and len(request.headers.get("Idempotency-Key", "")) > MAX_IDEMPOTENCY_KEY:
        problem = f"Idempotency-Key is longer than {MAX_IDEMPOTENCY_KEY} characters"
    if problem is None:
        return None
    if request.endpoint and request.endpoint.endswith("authorize"):
        return render_template("consent_error.html", error="La demande contient un caractère interdit."), 400
    return jsonify({"error": "invalid_request", "message": problem}), 400
