"""Forms of 'Paramètres du dossier'."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, Length, ValidationError

from webapp.services.dossiers import siren_is_valid


class DossierForm(FlaskForm):
    name = StringField(
        _l("Nom du dossier"),
        validators=[
            DataRequired(_l("Le nom du dossier est obligatoire.")),
            Length(max=200, message=_l("Le nom ne peut dépasser 200 caractères.")),
        ],
    )
    siren = StringField(_l("SIREN"), description=_l("9 chiffres, espaces permis."))
    warn_before_creating_supplier = BooleanField(
        _l("M'avertir avant de créer un fournisseur"),
        description=_l(
            "Une facture dont le fournisseur n'existe pas dans le logiciel comptable attend votre "
            "accord au lieu de le créer à la publication."
        ),
    )

    def validate_siren(self, field: StringField) -> None:
        value = (field.data or "").replace(" ", "").replace("\u00a0", "")
        if not value:
            field.data = None
            return
        if len(value) != 9 or not value.isdigit():
            raise ValidationError(_l("Le SIREN doit compter 9 chiffres."))
        if not siren_is_valid(value):
            raise ValidationError(_l("Ce SIREN n'est pas valide : vérifiez les chiffres saisis."))
        field.data = value
