"""The rule form: typed fields; what each may point to is checked by webapp.services.rules."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectChoice, SelectField, TextAreaField
from wtforms.validators import NumberRange, Optional

from webapp.services.rules import CURRENCIES, MAX_DUE_DAYS


def _int_or_none(value):
    if value in (None, "", "None"):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1  # never an item id: the service answers "choisissez … dans la liste"


class RuleForm(FlaskForm):
    party_id = SelectField("Tiers", coerce=_int_or_none, validate_choice=False)
    account_id = SelectField("Compte", coerce=_int_or_none, validate_choice=False)
    tax_rate_id = SelectField("Taux de TVA", coerce=_int_or_none, validate_choice=False)
    payment_method_id = SelectField("Moyen de paiement", coerce=_int_or_none, validate_choice=False)
    tracking_id = SelectField("Axe analytique", coerce=_int_or_none, validate_choice=False)
    due_days = IntegerField(
        "Date d'échéance (jours après la date de facture)",
        validators=[
            Optional(),
            NumberRange(0, MAX_DUE_DAYS, f"L'échéance doit être comprise entre 0 et {MAX_DUE_DAYS} jours."),
        ],
    )
    paid = SelectField(
        "Statut payé / non payé",
        choices=[
            SelectChoice("", "Non précisé"),
            SelectChoice("paid", "Payé"),
            SelectChoice("unpaid", "Non payé"),
        ],
    )
    currency = SelectField(
        "Devise",
        choices=[SelectChoice(code, label) for code, label in CURRENCIES.items()],
        default="EUR",
        validate_choice=False,  # webapp.services.rules says what is wrong, in its words
    )
    description = TextAreaField("Description", validators=[Optional()])
    reverse_charge = BooleanField("Autoliquidation de la TVA")
    auto_publish = BooleanField("Publication automatique")

    @property
    def paid_value(self) -> bool | None:
        return {"paid": True, "unpaid": False}.get(self.paid.data or "")
