"""The rule form: typed fields; what each may point to is checked by webapp.services.rules."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectChoice, SelectField, TextAreaField
from wtforms.validators import NumberRange, Optional

from webapp.ids import ItemChoiceField
from webapp.models import Direction, ListKind, PartyKind
from webapp.services.rules import CURRENCIES, MAX_DUE_DAYS, CodingInput, choices

#: The class of the accounts a purchase or a sale goes to (plan comptable général).
ACCOUNT_CLASS = {Direction.PURCHASE: "6", Direction.SALE: "7"}


def account_choices(
    accounts, *, direction: Direction | None, usual=(), party_kind: PartyKind | None = None
) -> list[SelectChoice]:
    """The accounts of a coding form, grouped: usual ones, then the direction's class, then the others."""

    def choice(account, group=None):
        return SelectChoice(str(account.id), f"{account.code} {account.name}", optgroup=group)

    if direction is None:
        return [choice(a) for a in accounts]
    by_id = {a.id: a for a in accounts}
    first = [by_id[i] for i in usual if i in by_id]
    prefix = ACCOUNT_CLASS[direction]
    in_class = [a for a in accounts if a.id not in usual and (a.code or "").startswith(prefix)]
    others = [a for a in accounts if a.id not in usual and not (a.code or "").startswith(prefix)]
    if party_kind is PartyKind.CUSTOMER:
        usual_label = _("Comptes habituels de ce client")
    else:
        usual_label = _("Comptes habituels de ce fournisseur")
    if direction is Direction.PURCHASE:
        class_label = _("Comptes de charge (classe 6)")
    else:
        class_label = _("Comptes de produit (classe 7)")
    return (
        [choice(a, usual_label) for a in first]
        + [choice(a, class_label) for a in in_class]
        + [choice(a, _("Autres comptes")) for a in others]
    )


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

    def fill_choices(
        self,
        integration,
        *,
        account_label: str,
        direction: Direction | None = None,
        usual: list[int] | tuple[int, ...] = (),
        party_kind: PartyKind | None = None,
    ) -> None:
        """Only active items, and visible accounts, can be chosen. For a purchase (a sale) the accounts
        it can go to come first: the party's usual ones, then class 6 (class 7); the others follow
        under « Autres comptes »."""
        empty = [SelectChoice("", "—")]
        self.account_id.label.text = account_label
        self.account_id.choices = empty + account_choices(
            choices(integration, ListKind.ACCOUNTS), direction=direction, usual=usual, party_kind=party_kind
        )
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
