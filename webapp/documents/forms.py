"""The invoice form; amounts are parsed and checked by webapp.services.documents."""

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import DateField, SelectChoice, SelectField, StringField
from wtforms.validators import Optional

from webapp.ids import ItemChoiceField
from webapp.rules.forms import CodingForm
from webapp.services.rules import CURRENCIES


class DocumentForm(FlaskForm):
    party_id = ItemChoiceField("Tiers")
    number = StringField("Numéro de facture")
    issue_date = DateField("Date de facture", validators=[Optional()])
    amount_ht = StringField("Montant HT")
    amount_tva = StringField("Montant TVA")
    amount_ttc = StringField("Montant TTC")
    currency = SelectField(
        "Devise",
        choices=[SelectChoice(code, label) for code, label in CURRENCIES.items()],
        default="EUR",
        validate_choice=False,
    )
    pdf = FileField("PDF de la facture (facultatif, 10 Mo au plus)")
    payment_method_id = ItemChoiceField("Moyen de paiement (facultatif)")
    # A party the list does not hold: what the invoice says of it.
    party_name = StringField("Nom (tel qu'il figure sur la facture)")
    party_vat_number = StringField("N° de TVA intracommunautaire (facultatif)")
    party_siren = StringField("SIREN (facultatif)")


class DocumentCodingForm(CodingForm):
    """A waiting document's own coding; what the user sets here wins over every rule."""

    due_days = None
    party_id = ItemChoiceField("Tiers")
    due_date = DateField("Date d'échéance", validators=[Optional()])
