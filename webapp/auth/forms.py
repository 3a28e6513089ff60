"""The login and password forms."""

from flask_babel import lazy_gettext
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectChoice, SelectField
from wtforms.validators import AnyOf, DataRequired, EqualTo, Length

from webapp.i18n import LOCALE_NAMES


class LoginForm(FlaskForm):
    email = EmailField(
        "Adresse e-mail",
        validators=[DataRequired("Saisissez votre adresse e-mail."), Length(max=320)],
        render_kw={"autocomplete": "username", "autofocus": True},
    )
    password = PasswordField(
        "Mot de passe",
        validators=[DataRequired("Saisissez votre mot de passe."), Length(max=200)],
        render_kw={"autocomplete": "current-password"},
    )


MIN_PASSWORD_LENGTH = 12  # as `flask create-user` asks


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(
        "Mot de passe actuel",
        validators=[DataRequired("Saisissez votre mot de passe actuel."), Length(max=200)],
        render_kw={"autocomplete": "current-password"},
    )
    new_password = PasswordField(
        "Nouveau mot de passe",
        description=f"Au moins {MIN_PASSWORD_LENGTH} caractères.",
        validators=[
            DataRequired("Saisissez le nouveau mot de passe."),
            Length(
                min=MIN_PASSWORD_LENGTH,
                max=200,
                message=f"Le mot de passe doit faire entre {MIN_PASSWORD_LENGTH} et 200 caractères.",
            ),
        ],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "Confirmez le nouveau mot de passe",
        validators=[
            DataRequired("Saisissez à nouveau le nouveau mot de passe."),
            EqualTo("new_password", "Les deux mots de passe ne sont pas identiques."),
        ],
        render_kw={"autocomplete": "new-password"},
    )


class LocaleForm(FlaskForm):
    """The interface's language, kept with the account."""

    locale = SelectField(
        lazy_gettext("Langue de l'interface"),
        choices=[SelectChoice(code, name) for code, name in LOCALE_NAMES.items()],
        validate_choice=False,  # AnyOf says it in French
        validators=[AnyOf(list(LOCALE_NAMES), message=lazy_gettext("Choisissez le français ou l'anglais."))],
    )
