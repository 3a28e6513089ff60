"""The coding a rule, a default or a document carries: account, tax rate, payment, axe analytique, party."""

from __future__ import annotations

import enum

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Enum, ForeignKey, Text
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from webapp.models.base import BigId
from webapp.models.lists import ListItem

CODING_ITEMS = ("account", "tax_rate", "payment_method", "tracking")


class Direction(enum.StrEnum):
    PURCHASE = "purchase"
    SALE = "sale"

    @property
    def label(self) -> str:
        return _("Facture d'achat") if self is Direction.PURCHASE else _("Facture de vente")

    @property
    def short_label(self) -> str:
        return _("Achats") if self is Direction.PURCHASE else _("Ventes")


def _values(enum_class) -> list[str]:
    return [member.value for member in enum_class]


def direction_enum() -> Enum:
    return Enum(
        Direction,
        name="document_direction",
        native_enum=False,
        values_callable=lambda e: [m.value for m in e],
    )


def item_relationship(column: str):
    def relation(cls) -> Mapped[ListItem | None]:
        return relationship(ListItem, foreign_keys=f"{cls.__name__}.{column}", lazy="joined")

    return declared_attr(relation)


class CodingItemsMixin:
    """What codes an invoice, without its party: shared by defaults, rules and documents."""

    account_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("list_item.id"))
    tax_rate_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("list_item.id"))
    payment_method_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("list_item.id"))
    tracking_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("list_item.id"))
    paid: Mapped[bool | None] = mapped_column()
    description: Mapped[str] = mapped_column(Text, default="")

    account = item_relationship("account_id")
    tax_rate = item_relationship("tax_rate_id")
    payment_method = item_relationship("payment_method_id")
    tracking = item_relationship("tracking_id")


class CodingMixin(CodingItemsMixin):
    """A party rule's coding: always about one supplier or customer of the list."""

    party_id: Mapped[int] = mapped_column(BigId, ForeignKey("list_item.id"))
    party = item_relationship("party_id")


def usable_for_coding(field: str, item: ListItem | None) -> bool:
    """An item can code a document when it is active, and, for an account, visible."""
    return item is not None and item.active and (field != "account" or item.visible)


def item_label(field: str, item: ListItem) -> str:
    return f"{item.code} {item.name}".strip() if field == "account" else item.name


ITEM_WHAT = {
    "account": _l("Le compte"),
    "tax_rate": _l("Le taux de TVA"),
    "payment_method": _l("Le moyen de paiement"),
    "tracking": _l("La catégorie analytique"),
}


def item_review_reasons(source: CodingItemsMixin, fields=CODING_ITEMS) -> list[str]:
    """Why a rule or default must be looked at again: an item it points to left the choices."""
    reasons = []
    for field in fields:
        item = getattr(source, field)
        if item is None:
            continue
        label = item_label(field, item)
        if not item.active:
            reasons.append(
                _(
                    "%(what)s « %(label)s » est inactif dans le logiciel comptable.",
                    what=ITEM_WHAT[field],
                    label=label,
                )
            )
        elif not item.visible:
            reasons.append(
                _(
                    "%(what)s « %(label)s » est masqué des choix de codage.",
                    what=ITEM_WHAT[field],
                    label=label,
                )
            )
    return reasons
