"""The coding a rule gives and a document carries: party, account, tax rate, payment, axe analytique."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Text
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from webapp.models.lists import ListItem

CODING_ITEMS = ("account", "tax_rate", "payment_method", "tracking")


def _item(column: str):
    def relation(cls) -> Mapped[ListItem | None]:
        return relationship(ListItem, foreign_keys=f"{cls.__name__}.{column}", lazy="joined")

    return declared_attr(relation)


class CodingMixin:
    party_id: Mapped[int] = mapped_column(ForeignKey("list_item.id"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("list_item.id"))
    tax_rate_id: Mapped[int | None] = mapped_column(ForeignKey("list_item.id"))
    payment_method_id: Mapped[int | None] = mapped_column(ForeignKey("list_item.id"))
    tracking_id: Mapped[int | None] = mapped_column(ForeignKey("list_item.id"))
    paid: Mapped[bool | None] = mapped_column()
    description: Mapped[str] = mapped_column(Text, default="")

    party = _item("party_id")
    account = _item("account_id")
    tax_rate = _item("tax_rate_id")
    payment_method = _item("payment_method_id")
    tracking = _item("tracking_id")


def usable_for_coding(field: str, item: ListItem | None) -> bool:
    """An item can code a document when it is active, and, for an account, visible."""
    return item is not None and item.active and (field != "account" or item.visible)
