"""The login and password forms."""

from flask_babel import lazy_gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import AnyOf, DataRequired, EqualTo, Length

from webapp.i18n import LOCALE_NAMES


class LoginForm(FlaskForm):
    email = EmailField(
        _l("Adresse e-mail"),
        validators=[DataRequired(_l("Saisissez votre adresse e-mail.")), Length(max=320)],
        render_kw={"autocomplete": "username", "autofocus": True},
    )
    password = PasswordField(
        _l("Mot de passe"),
        validators=[DataRequired(_l("Saisissez votre mot de passe.")), Length(max=200)],
        render_kw={"autocomplete": "current-password"},
    )


MIN_PASSWORD_LENGTH = 12  # as `flask create-user` asks


class NewPasswordForm(FlaskForm):
    """A new password typed twice: the profile's change, a reset, an invitation (the same rules)."""

    new_password = PasswordField(
        _l("Nouveau mot de passe"),
        description=_l("Au moins %(num)d caractères.", num=MIN_PASSWORD_LENGTH),
        validators=[
            DataRequired(_l("Saisissez le nouveau mot de passe.")),
            Length(
                min=MIN_PASSWORD_LENGTH,
                max=200,
                message=_l(
                    "Le mot de passe doit faire entre %(min)d et %(max)d caractères.",
                    min=MIN_PASSWORD_LENGTH,
                    max=200,
                ),
            ),
        ],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        _l("Confirmez le nouveau mot de passe"),
        validators=[
            DataRequired(_l("Saisissez à nouveau le nouveau mot de passe.")),
            EqualTo("new_password", _l("Les deux mots de passe ne sont pas identiques.")),
        ],
        render_kw={"autocomplete": "new-password"},
    )


class PasswordChangeForm(NewPasswordForm):
    current_password = PasswordField(
        _l("Mot de passe actuel"),
        validators=[DataRequired(_l("Saisissez votre mot de passe actuel.")), Length(max=200)],
        render_kw={"autocomplete": "current-password"},
    )


class ForgotPasswordForm(FlaskForm):
    email = EmailField(
        _l("Adresse e-mail"),
        validators=[DataRequired(_l("Saisissez votre adresse e-mail.")), Length(max=320)],
        render_kw={"autocomplete": "username", "autofocus": True},
    )


class InvitationForm(NewPasswordForm):
    """Accepting an invitation: one's name, and a password."""

    full_name = StringField(
        _l("Votre nom"),
        validators=[DataRequired(_l("Saisissez votre nom.")), Length(max=200)],
        render_kw={"autocomplete": "name", "autofocus": True},
    )


class LocaleForm(FlaskForm):
    """The interface's language, kept with the account."""

    locale = SelectField(
        lazy_gettext("Langue de l'interface"),
        choices=[SelectChoice(code, name) for code, name in LOCALE_NAMES.items()],
        validate_choice=False,  # AnyOf says it in French
        validators=[AnyOf(list(LOCALE_NAMES), message=lazy_gettext("Choisissez le français ou l'anglais."))],
    )


class NotificationForm(FlaskForm):
    """« Notifications par e-mail »: one checkbox per kind (webapp.services.notifications.KINDS), and
    the « résumé quotidien » instead of one mail per event."""

    integration_expired = BooleanField(lazy_gettext("Une intégration a expiré"))
    consent_ending = BooleanField(lazy_gettext("L'accès à un logiciel comptable prend fin bientôt"))
    list_failing = BooleanField(lazy_gettext("Une liste ne se charge plus depuis 24 heures"))
    documents_failed = BooleanField(lazy_gettext("Des factures sont en échec"))
    digest = BooleanField(
        lazy_gettext("Recevoir un résumé quotidien plutôt qu'un e-mail par événement"),
        description=lazy_gettext("Un seul e-mail par jour, qui liste les événements de la journée."),
    )

    @classmethod
    def for_user(cls, user) -> "NotificationForm":
        from webapp.services.notifications import KINDS, wants

        return cls(
            formdata=None,
            digest=user.notification_digest,
            **{kind: wants(user, kind) for kind in KINDS},
        )
