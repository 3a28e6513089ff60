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
from webapp.auth.forms import (
    ForgotPasswordForm,
    LocaleForm,
    LoginForm,
    NewPasswordForm,
    NotificationForm,
    PasswordChangeForm,
)
from webapp.extensions import db
from webapp.models.base import utcnow
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


# --- « Mot de passe oublié ? » -------------------------------------------------------------


@bp.route("/mot-de-passe-oublie", methods=["GET", "POST"])
def forgot_password():
    from webapp.services.passwords import RESET_MINUTES, request_reset

    form = ForgotPasswordForm()
    if form.validate_on_submit():
        email, address = (form.email.data or "").strip().lower(), get_remote_address()
        config = current_app.config
        reservation = reserve(
            [
                (Kind.RESET_ACCOUNT_AND_ADDRESS, config["LOGIN_RATE_LIMIT"], (email, address)),
                (Kind.RESET_ADDRESS, config["LOGIN_IP_RATE_LIMIT"], (address,)),
            ]
        )
        if reservation.refused:
            form.email.errors = [
                _("Trop de demandes en peu de temps. Patientez quelques minutes avant de réessayer.")
            ]
            return render_template("auth/forgot.html", form=form, sent=False), 429
        request_reset(email)
        return render_template("auth/forgot.html", form=form, sent=True, minutes=RESET_MINUTES)
    return render_template("auth/forgot.html", form=form, sent=False), 422 if form.errors else 200


def _reset_link_refused(state):
    from webapp.services.passwords import LinkState

    if state == LinkState.EXPIRED:
        title, message = (
            _("Ce lien a expiré"),
            _("Un lien pour choisir un mot de passe est valable 30 minutes."),
        )
    elif state == LinkState.USED:
        title = _("Ce lien a déjà servi")
        message = _("Le mot de passe a été changé depuis l'envoi de ce lien : il ne peut plus servir.")
    else:
        title, message = _("Ce lien n'est pas valable"), _("Le lien est incomplet ou n'est plus valable.")
    return (
        render_template(
            "auth/link_refused.html",
            title=title,
            message=message,
            action_url=url_for("auth.forgot_password"),
            action_label=_("Demander un nouveau lien"),
        ),
        410 if state != LinkState.INVALID else 404,
    )


@bp.route("/mot-de-passe/nouveau", methods=["GET", "POST"])
def reset_password():
    """The link of the mail (its token in the query string, masked in access logs)."""
    from webapp.services.passwords import LinkState, user_for_reset
    from webapp.services.passwords import reset_password as set_new_password

    token = (request.form.get("token") if request.method == "POST" else request.args.get("token")) or ""
    user, state = user_for_reset(token[:1000])
    if state != LinkState.VALID:
        return _reset_link_refused(state)
    form = NewPasswordForm()
    if form.validate_on_submit():
        set_new_password(user, form.new_password.data)
        if current_user.is_authenticated:
            logout_user()
        session.clear()
        flash(_("Votre mot de passe est enregistré. Connectez-vous avec le nouveau."), "success")
        return redirect(url_for("auth.login"))
    status = 422 if form.errors else 200
    return render_template("auth/reset.html", form=form, user=user, token=token), status


# --- an invitation to join a cabinet ------------------------------------------------------------


def _invitation_refused(state, invitation):
    from webapp.services.invitations import InvitationState

    if state == InvitationState.ACCEPTED:
        title = _("Cette invitation a déjà servi")
        message = _("Le compte a été créé avec cette invitation : connectez-vous.")
    elif state == InvitationState.REVOKED:
        title = _("Cette invitation a été annulée")
        message = _("Un administrateur du cabinet l'a annulée. Demandez-lui une nouvelle invitation.")
    elif state == InvitationState.EXPIRED:
        title = _("Cette invitation a expiré")
        message = _(
            "Une invitation est valable 7 jours. Demandez à l'administrateur du cabinet de vous la renvoyer."
        )
    else:
        title = _("Ce lien n'est pas valable")
        message = _(
            "Le lien est incomplet, ou l'invitation a été renvoyée depuis : "
            "ouvrez le lien du dernier e-mail reçu."
        )
    page = render_template("auth/link_refused.html", title=title, message=message, action_url=None)
    return page, 404 if state == InvitationState.INVALID else 410


@bp.route("/invitation", methods=["GET", "POST"])
def accept_invitation():
    """The link of the invitation mail (its token in the query string, masked in access logs)."""
    from webapp.auth.forms import InvitationForm
    from webapp.services.invitations import (
        HAS_ACCOUNT,
        InvitationState,
        accept,
        has_account,
        invitation_for_token,
    )
    from webapp.services.team import TeamRefused

    token = (request.form.get("token") if request.method == "POST" else request.args.get("token")) or ""
    invitation, state = invitation_for_token(token[:1000])
    if state != InvitationState.VALID:
        return _invitation_refused(state, invitation)
    if has_account(invitation.email):
        page = render_template(
            "auth/link_refused.html", title=_("Invitation"), message=str(HAS_ACCOUNT), action_url=None
        )
        return page, 409
    form = InvitationForm()
    if form.validate_on_submit():
        try:
            user = accept(invitation, form.full_name.data or "", form.new_password.data)
        except TeamRefused as refused:
            form.full_name.errors = [str(refused)]
            return render_template("auth/invitation.html", form=form, invitation=invitation, token=token), 409
        if current_user.is_authenticated:
            end_current_session(EndReason.LOGOUT)
            logout_user()
        session.clear()
        open_session(user)
        login_user(user)
        user.last_login_at = utcnow()  # signed in by accepting: « Équipe » shows it
        session.permanent = True
        db.session.commit()
        flash(_("Bienvenue dans « %(cabinet)s » !", cabinet=invitation.organisation.name), "success")
        return redirect(url_for("dossiers.index"))
    status = 422 if form.errors else 200
    return render_template("auth/invitation.html", form=form, invitation=invitation, token=token), status


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
