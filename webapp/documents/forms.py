"""The invoice form; amounts are parsed and checked by webapp.services.documents."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import DateField, SelectChoice, SelectField, StringField
from wtforms.validators import Optional

from webapp.ids import ItemChoiceField
from webapp.rules.forms import CodingForm
from webapp.services.rules import CURRENCIES


class DocumentForm(FlaskForm):
    party_id = ItemChoiceField(_l("Tiers"))
    number = StringField(_l("Numéro de facture"))
    issue_date = DateField(_l("Date de facture"), validators=[Optional()])
    amount_ht = StringField(_l("Montant HT"))
    amount_tva = StringField(_l("Montant TVA"))
    amount_ttc = StringField(_l("Montant TTC"))
    currency = SelectField(
        _l("Devise"),
        choices=[SelectChoice(code, label) for code, label in CURRENCIES.items()],
        default="EUR",
        validate_choice=False,
    )
    pdf = FileField(_l("PDF de la facture (facultatif, 10 Mo au plus)"))
    payment_method_id = ItemChoiceField(_l("Moyen de paiement (facultatif)"))
    # A party the list does not hold: what the invoice says of it.
    party_name = StringField(_l("Nom (tel qu'il figure sur la facture)"))
    party_vat_number = StringField(_l("N° de TVA intracommunautaire (facultatif)"))
    party_siren = StringField(_l("SIREN (facultatif)"))


class DocumentCodingForm(CodingForm):
    """A waiting document's own coding; what the user sets here wins over every rule."""

    due_days = None
    party_id = ItemChoiceField(_l("Tiers"))
    due_date = DateField(_l("Date d'échéance"), validators=[Optional()])
