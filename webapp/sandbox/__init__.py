"""'Compta Démo': a built-in accounting software, its own small Flask app mounted under /sandbox.

Raccord talks to it exactly as to a real software: over HTTP, through OAuth 2 (authorisation code
with PKCE, rotating refresh tokens, revocation) and a paged REST API. Its controls let tests and
support staff change token lifetimes, expire or revoke a grant, edit lists and inject faults.
"""

from __future__ import annotations

from flask import Flask

from webapp import ROOT


def create_sandbox_app(parent: Flask) -> Flask:
    from webapp.extensions import db
    from webapp.sandbox import api, controls, oauth
    from webapp.sandbox.csrf import sandbox_csrf

    app = Flask(
        "webapp.sandbox",
        template_folder=str(ROOT / "templates" / "sandbox"),
        static_folder=str(ROOT / "static"),
        static_url_path="/static",
    )
    for key in ("SQLALCHEMY_DATABASE_URI", "SQLALCHEMY_ENGINE_OPTIONS", "TESTING", "RACCORD_ENV"):
        app.config[key] = parent.config.get(key)
    app.config["SECRET_KEY"] = parent.config["SECRET_KEY"] + ":sandbox"
    app.config["SESSION_COOKIE_NAME"] = "sandbox_session"
    app.config["SESSION_COOKIE_PATH"] = "/sandbox"
    app.config["WTF_CSRF_TIME_LIMIT"] = None
    app.json.sort_keys = False  # answers keep the field order of the software they imitate
    db.init_app(app)
    sandbox_csrf.init_app(app)
    oauth.init_app(app)
    app.register_blueprint(oauth.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(controls.bp)
    app.register_blueprint(controls.api)
    from webapp.sandbox.dialects import pennylane, quickbooks, sage, xero

    for dialect in (xero, quickbooks, pennylane, sage):
        app.register_blueprint(dialect.bp)
        app.register_blueprint(dialect.api)

    from webapp.security import set_security_headers

    app.after_request(set_security_headers)
    return app
