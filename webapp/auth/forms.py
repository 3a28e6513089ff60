"""The login form."""

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length


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
