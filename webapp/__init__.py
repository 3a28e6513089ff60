"""Raccord: the app factory. Nothing here runs at import time."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from the environment, then apply `config` (tests pass overrides here)."""
    app = Flask(
        __name__,
        instance_path=os.environ.get("RACCORD_INSTANCE_PATH") or str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )

    from webapp.config import derived_settings, load_config

    app.config.update(load_config(os.environ, Path(app.instance_path)))
    if config:
        app.config.update(config)
    app.config.update(derived_settings(app.config))
    _tune_database(app)

    from webapp import ids

    ids.init_app(app)  # before the routes: `<int:…>` is bounded to what the columns hold
    _init_extensions(app)
    _register_blueprints(app)
    from webapp.services import summaries

    summaries.install()  # 'Mes dossiers' lines kept true by every session

    from webapp import cli, errors, security, templating

    security.init_app(app)
    templating.init_app(app)
    errors.init_app(app)
    cli.init_app(app)

    from webapp.services.jobs import init_job_backend

    init_job_backend(app)

    from webapp.services import notifications

    notifications.init_app()  # the mails' send-time links, known to the web and to the workers

    if app.config["SANDBOX_ENABLED"]:
        from webapp.sandbox_host import mount_sandbox

        mount_sandbox(app)

    if app.config["RACCORD_ENV"] == "production":
        from webapp.services.demo import refuse_demo_accounts

        refuse_demo_accounts(app)

    if not app.debug and not app.testing:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Authlib writes whole tokens in its DEBUG records ('Issue token {...} to <client>', 'Fetch request
    # token'): its logger stops at INFO whatever the root level, so no token reaches a log.
    logging.getLogger("authlib").setLevel(logging.INFO)
    from webapp.access_log import install_werkzeug_filter

    install_werkzeug_filter()  # the OAuth callback's code and state stay out of the access log
    return app


def _tune_database(app: Flask) -> None:
    uri: str = app.config["SQLALCHEMY_DATABASE_URI"]
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    if uri.startswith("sqlite"):
        # The web threads and the job worker share the file: wait for a lock rather than fail.
        options.setdefault("connect_args", {"timeout": 30})
        _private_sqlite_file(uri)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


def _private_sqlite_file(uri: str) -> None:
    """The SQLite file holds the tokens (encrypted) and everything of every dossier: readable by its
    owner only, like the key files. Made so before SQLite creates it (its journals take the file's
    mode), and tightened if an older start left it readable by others."""
    from sqlalchemy.engine import make_url

    database = make_url(uri).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)


def _init_extensions(app: Flask) -> None:
    from flask_babel import lazy_gettext
    from sqlalchemy import event

    from webapp import pool
    from webapp.extensions import babel, csrf, db, htmx, limiter, login_manager, mail, migrate

    pool.install()
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    from webapp import i18n

    i18n.init_app(app)  # before Babel: the default locale, time zone and catalogues' folder
    babel.init_app(app, locale_selector=i18n.select_locale, timezone_selector=lambda: "Europe/Paris")
    htmx.init_app(app)
    limiter.init_app(app)
    mail.init_app(app)  # settings read at each send (webapp.services.mail)

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = lazy_gettext("Connectez-vous pour accéder à cette page.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"

    @login_manager.unauthorized_handler
    def unauthorized():
        from flask import flash, redirect, request, session, url_for
        from htmx_flask import make_response

        from webapp.services.sessions import SESSION_KEY, ended_message

        next_path = request.full_path.rstrip("?") if request.method == "GET" else None
        target = url_for("auth.login", next=next_path)
        message = ended_message() or login_manager.login_message
        if SESSION_KEY in session:
            session.clear()  # a dead session id: the browser forgets it
        # Said once: each open tab's requests (its check for changes every few seconds) land here too.
        if ["info", str(message)] not in [list(each) for each in session.get("_flashes", [])]:
            flash(str(message), "info")
        if request.headers.get("HX-Request") == "true":
            # htmx would swap a login page into a fragment; ask it to load the page instead.
            return make_response("", 401, redirect=target)
        return redirect(target)

    @login_manager.user_loader
    def load_user(user_id: str):
        """The user of the live server-side session the cookie names, never the cookie's word alone."""
        from webapp.models import User
        from webapp.services.sessions import current_session

        row = current_session()
        if row is None or not user_id.isdigit() or row.user_id != int(user_id):
            return None
        user = db.session.get(User, row.user_id)
        return user if user is not None and user.is_active_account else None

    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        with app.app_context():

            @event.listens_for(db.engine, "connect")
            def _sqlite_pragmas(dbapi_connection, _record):
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.execute("PRAGMA journal_mode=WAL")
                # Safe with WAL (no corruption on a crash, at worst the last commits lost on power
                # loss) and spares an fsync per commit.
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.close()


def _register_blueprints(app: Flask) -> None:
    from webapp.auth import bp as auth_bp
    from webapp.connections import bp as connections_bp
    from webapp.documents import bp as documents_bp
    from webapp.dossiers import bp as dossiers_bp
    from webapp.health import bp as health_bp
    from webapp.jobstatus import bp as jobstatus_bp
    from webapp.lists import bp as lists_bp
    from webapp.rules import bp as rules_bp
    from webapp.settings import bp as settings_bp
    from webapp.support import bp as support_bp
    from webapp.team import bp as team_bp
    from webapp.webhooks import bp as webhooks_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(dossiers_bp)
    app.register_blueprint(settings_bp)
    app.register_blueprint(jobstatus_bp)
    app.register_blueprint(connections_bp)
    app.register_blueprint(lists_bp)
    app.register_blueprint(rules_bp)
    app.register_blueprint(documents_bp)
    app.register_blueprint(support_bp)
    app.register_blueprint(team_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(webhooks_bp)
