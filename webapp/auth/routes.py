"""Login and logout pages."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext, ngettext, refresh
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required, login_user, logout_user

from webapp.auth import bp
from webapp.auth.attempts import Kind, reserve
from webapp.auth.devices import known_device, remember_device
from webapp.auth.forms import LocaleForm, LoginForm, NotificationForm, PasswordChangeForm
from webapp.extensions import db
from webapp.services.accounts import authenticate
from webapp.services.sessions import (
    EndReason,
    current_session,
    end_current_session,
    end_user_sessions,
    lifetime_limit,
    open_session,
    open_sessions,
    rotate_session,
)

WRONG_CREDENTIALS = _l("Adresse e-mail ou mot de passe incorrect.")
TOO_MANY_ATTEMPTS = _l(
    "Trop de tentatives de connexion échouées. Patientez quelques minutes avant de réessayer."
)
ACCOUNT_PROTECTED = _l(
    "Trop de tentatives de connexion échouées. Ce compte est protégé pendant une heure au plus : "
    "connectez-vous depuis un navigateur où vous vous êtes déjà connecté, ou réessayez plus tard."
)
PASSWORD_TRIES = _l("Trop d'essais du mot de passe actuel. Patientez quelques minutes avant de réessayer.")


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


def _login_limits(email: str) -> list[tuple[str, str, tuple[str, ...]]]:
    config, account, address = current_app.config, email.strip().lower(), get_remote_address()
    limits = [
        (Kind.ACCOUNT_AND_ADDRESS, config["LOGIN_RATE_LIMIT"], (account, address)),
        (Kind.ADDRESS, config["LOGIN_IP_RATE_LIMIT"], (address,)),
    ]
    if not known_device():  # the user's own browser is never locked out by someone else's guesses
        limits.append((Kind.ACCOUNT, config["LOGIN_ACCOUNT_RATE_LIMIT"], (account,)))
    return limits


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("dossiers.index"))
    form = LoginForm()
    if form.validate_on_submit():
        reservation = reserve(_login_limits(form.email.data or ""))
        if reservation.refused:
            return rate_limited_login(reservation.refused)
        user = authenticate(form.email.data or "", form.password.data or "")
        if user is None:
            # A short pause makes guessing slow, on top of the limits (the attempt keeps its places).
            time.sleep(current_app.config["LOGIN_FAILURE_DELAY"])
            form.password.errors = [str(WRONG_CREDENTIALS)]
        else:
            reservation.give_back()
            next_url = safe_next_url(request.args.get("next"))
            # A new session on login: nothing set before it (a fixed session id) carries over.
            session.clear()
            open_session(user)
            login_user(user)
            session.permanent = True
            db.session.commit()
            response = redirect(next_url or url_for("dossiers.index"))
            remember_device(response, user)
            return response
    return render_template("auth/login.html", form=form)


def rate_limited_login(kind: str):
    form = LoginForm()
    form.password.errors = [str(ACCOUNT_PROTECTED if kind == Kind.ACCOUNT else TOO_MANY_ATTEMPTS)]
    return render_template("auth/login.html", form=form), 429


@bp.post("/logout")
@login_required
def logout():
    end_current_session(EndReason.LOGOUT)
    logout_user()
    session.clear()
    flash(_("Vous êtes déconnecté de Raccord."), "info")
    return redirect(url_for("auth.login"))


# --- 'Mon profil': password and open sessions ----------------------------------------------


def _others_closed(count: int) -> str:
    return ngettext("%(num)d autre session a été fermée.", "%(num)d autres sessions ont été fermées.", count)


def _profile_page(
    form: PasswordChangeForm,
    status: int = 200,
    locale_form: LocaleForm | None = None,
    notification_form: NotificationForm | None = None,
):
    return (
        render_template(
            "auth/profile.html",
            form=form,
            locale_form=locale_form or LocaleForm(locale=current_user.locale),
            notification_form=notification_form or NotificationForm.for_user(current_user),
            sessions=open_sessions(current_user),
            idle_minutes=current_app.config["SESSION_IDLE_MINUTES"],
            lifetime_hours=round(lifetime_limit().total_seconds() / 3600),
        ),
        status,
    )


@bp.get("/profil")
@login_required
def profile():
    return _profile_page(PasswordChangeForm())


@bp.post("/profil/mot-de-passe")
@login_required
def change_password():
    form = PasswordChangeForm()
    if not form.validate_on_submit():
        return _profile_page(form, 422)
    user = current_user._get_current_object()
    # A stolen session must not be a way to guess the password: tries counted as logins are.
    reservation = reserve([(Kind.PASSWORD_CHANGE, current_app.config["LOGIN_RATE_LIMIT"], (str(user.id),))])
    if reservation.refused:
        form.current_password.errors = [str(PASSWORD_TRIES)]
        return _profile_page(form, 429)
    if not user.check_password(form.current_password.data or ""):
        time.sleep(current_app.config["LOGIN_FAILURE_DELAY"])
        form.current_password.errors = ["Le mot de passe actuel n'est pas le bon."]
        return _profile_page(form, 422)
    reservation.give_back()
    user.set_password(form.new_password.data)
    ended = end_user_sessions(user.id, EndReason.PASSWORD_CHANGED, keep=current_session())
    rotate_session(user)
    db.session.commit()
    changed = _("Votre mot de passe a été changé.")
    flash(f"{changed} {_others_closed(ended)}" if ended else changed, "success")
    return redirect(url_for("auth.profile"))


@bp.post("/profil/sessions/fermer-les-autres")
@login_required
def close_other_sessions():
    ended = end_user_sessions(current_user.id, EndReason.CLOSED_ELSEWHERE, keep=current_session())
    db.session.commit()
    flash(
        _others_closed(ended) if ended else _("Aucune autre session n'était ouverte."),
        "success",
    )
    return redirect(url_for("auth.profile"))


@bp.post("/profil/langue")
@login_required
def change_locale():
    form = LocaleForm()
    if not form.validate_on_submit():
        return _profile_page(PasswordChangeForm(formdata=None), 422, locale_form=form)
    user = current_user._get_current_object()
    user.locale = form.locale.data
    db.session.commit()
    refresh()  # the message below is already in the chosen language
    flash(gettext("La langue de l'interface est enregistrée."), "success")
    return redirect(url_for("auth.profile"))


@bp.post("/profil/notifications")
@login_required
def change_notifications():
    from webapp.services.notifications import KINDS, save_preferences

    form = NotificationForm()
    if not form.validate_on_submit():
        return _profile_page(PasswordChangeForm(formdata=None), 422, notification_form=form)
    save_preferences(
        current_user._get_current_object(),
        {kind: bool(form[kind].data) for kind in KINDS},
        bool(form.digest.data),
    )
    flash(_("Vos préférences de notification sont enregistrées."), "success")
    return redirect(url_for("auth.profile") + "#notifications")
