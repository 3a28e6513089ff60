"""Login and logout pages."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from webapp.auth import bp
from webapp.auth.forms import LoginForm
from webapp.extensions import limiter, login_email_key
from webapp.services.accounts import authenticate

WRONG_CREDENTIALS = "Adresse e-mail ou mot de passe incorrect."
TOO_MANY_ATTEMPTS = "Trop de tentatives de connexion échouées. Patientez quelques minutes avant de réessayer."


def _login_failed() -> bool:
    return bool(g.get("login_failed"))


def safe_next_url(target: str | None) -> str | None:
    """Only a path on this site: never an open redirect to another host."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target:
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_RATE_LIMIT"],
    key_func=login_email_key,
    methods=["POST"],
    deduct_when=lambda _response: _login_failed(),
)
@limiter.limit(
    lambda: current_app.config["LOGIN_IP_RATE_LIMIT"],
    methods=["POST"],
    deduct_when=lambda _r: _login_failed(),
)
def login():
    if current_user.is_authenticated:
        return redirect(url_for("dossiers.index"))
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate(form.email.data or "", form.password.data or "")
        if user is None:
            g.login_failed = True
            # A short pause makes guessing slow, on top of the rate limit.
            time.sleep(current_app.config["LOGIN_FAILURE_DELAY"])
            form.password.errors = [WRONG_CREDENTIALS]
        else:
            next_url = safe_next_url(request.args.get("next"))
            # A new session on login: nothing set before it (a fixed session id) carries over.
            session.clear()
            login_user(user)
            session.permanent = True
            return redirect(next_url or url_for("dossiers.index"))
    return render_template("auth/login.html", form=form)


def rate_limited_login():
    form = LoginForm()
    form.password.errors = [TOO_MANY_ATTEMPTS]
    return render_template("auth/login.html", form=form), 429


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    session.clear()
    flash("Vous êtes déconnecté de Raccord.", "info")
    return redirect(url_for("auth.login"))
