"""The rule form: typed fields; what each may point to is checked by webapp.services.rules."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectChoice, SelectField, TextAreaField
from wtforms.validators import NumberRange, Optional

from webapp.ids import ItemChoiceField
from webapp.models import ListKind
from webapp.services.rules import CURRENCIES, MAX_DUE_DAYS, CodingInput, choices


class CodingForm(FlaskForm):
    """The coding fields shared by rules, payment-method rules and the dossier's defaults."""

    account_id = ItemChoiceField(_l("Compte"))
    tax_rate_id = ItemChoiceField(_l("Taux de TVA"))
    payment_method_id = ItemChoiceField(_l("Moyen de paiement"))
    tracking_id = ItemChoiceField(_l("Axe analytique"))
    due_days = IntegerField(
        _l("Date d'échéance (jours après la date de facture)"),
        validators=[
            Optional(),
            NumberRange(
                0,
                MAX_DUE_DAYS,
                _l("L'échéance doit être comprise entre 0 et %(max)d jours.", max=MAX_DUE_DAYS),
            ),
        ],
    )
    paid = SelectField(
        _l("Statut payé / non payé"),
        choices=[
            SelectChoice("", _l("Non précisé")),
            SelectChoice("paid", _l("Payé")),
            SelectChoice("unpaid", _l("Non payé")),
        ],
        validate_choice=False,  # anything else reads as 'Non précisé'
    )
    description = TextAreaField(_l("Description"), validators=[Optional()])

    @property
    def paid_value(self) -> bool | None:
        return {"paid": True, "unpaid": False}.get(self.paid.data or "")

    def load(self, source) -> None:
        """Show a stored rule or default (on GET)."""
        for name in (
            "account_id",
            "tax_rate_id",
            "payment_method_id",
            "tracking_id",
            "due_days",
            "description",
        ):
            if getattr(self, name, None) is not None and hasattr(source, name):
                getattr(self, name).data = getattr(source, name)
        self.paid.data = {True: "paid", False: "unpaid"}.get(source.paid, "")

    def fill_choices(self, integration, *, account_label: str) -> None:
        """Only active items, and visible accounts, can be chosen."""
        empty = [SelectChoice("", "—")]
        self.account_id.label.text = account_label
        self.account_id.choices = empty + [
            SelectChoice(str(i.id), f"{i.code} {i.name}") for i in choices(integration, ListKind.ACCOUNTS)
        ]
        for field, kind in (
            (self.tax_rate_id, ListKind.TAX_RATES),
            (self.payment_method_id, ListKind.PAYMENT_METHODS),
            (self.tracking_id, ListKind.TRACKING_CATEGORIES),
        ):
            field.choices = empty + [SelectChoice(str(i.id), i.name) for i in choices(integration, kind)]

    def coding_input(self, cls=CodingInput, **extra):
        return cls(
            account_id=self.account_id.data,
            tax_rate_id=self.tax_rate_id.data,
            payment_method_id=self.payment_method_id.data,
            tracking_id=self.tracking_id.data,
            due_days=self.due_days.data if self.due_days is not None else None,
            paid=self.paid_value,
            description=self.description.data or "",
            **extra,
        )


class RuleForm(CodingForm):
    party_id = ItemChoiceField(_l("Tiers"))
    currency = SelectField(
        _l("Devise"),
        choices=[SelectChoice(code, label) for code, label in CURRENCIES.items()],
        default="EUR",
        validate_choice=False,  # webapp.services.rules says what is wrong, in its words
    )
    reverse_charge = BooleanField(_l("Autoliquidation de la TVA"))
    auto_publish = BooleanField(_l("Publication automatique"))


class PaymentRuleForm(CodingForm):
    direction = SelectField(
        _l("S'applique aux"),
        choices=[SelectChoice("purchase", _l("Achats")), SelectChoice("sale", _l("Ventes"))],
        default="purchase",
        validate_choice=False,
    )
