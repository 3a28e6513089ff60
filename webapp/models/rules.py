"""Supplier and customer rules: how a new document of that party is coded and whether it is published."""

from __future__ import annotations

import enum
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import JSON, Enum, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import BigId, UTCDateTime, utcnow
from webapp.models.coding import CodingItemsMixin, CodingMixin, Direction, direction_enum, item_review_reasons


class PartyKind(enum.StrEnum):
    SUPPLIER = "supplier"
    CUSTOMER = "customer"

    @property
    def label(self) -> str:
        return _("fournisseur") if self is PartyKind.SUPPLIER else _("client")


class Rule(CodingMixin, db.Model):
    __tablename__ = "rule"
    __table_args__ = (UniqueConstraint("integration_id", "party_kind", "party_id", name="uq_rule_party"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id"), index=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integration.id"), index=True)
    party_kind: Mapped[PartyKind] = mapped_column(
        Enum(PartyKind, name="party_kind", native_enum=False, values_callable=lambda e: [m.value for m in e])
    )
    due_days: Mapped[int | None] = mapped_column()
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    reverse_charge: Mapped[bool] = mapped_column(default=False)
    auto_publish: Mapped[bool] = mapped_column(default=False)
    # A rule written by 'Transférer les règles': the old software's rule it was made from.
    transferred_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("rule.id", ondelete="SET NULL"), index=True
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def review_reasons(self) -> list[str]:
        """Why the rule must be looked at again ('À revoir'): what it points to left the lists."""
        reasons = []
        if not self.party.active:
            if self.party_kind is PartyKind.SUPPLIER:
                reason = _(
                    "Le fournisseur « %(name)s » est inactif dans le logiciel comptable.",
                    name=self.party.name,
                )
            else:
                reason = _(
                    "Le client « %(name)s » est inactif dans le logiciel comptable.", name=self.party.name
                )
            reasons.append(reason)
        return reasons + item_review_reasons(self)


class PaymentRule(CodingItemsMixin, db.Model):
    """A payment-method rule: invoices paid this way get this coding, over the party's rule."""

    __tablename__ = "payment_rule"
    __table_args__ = (
        UniqueConstraint("integration_id", "direction", "payment_method_id", name="uq_payment_rule_method"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id"), index=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integration.id"), index=True)
    direction: Mapped[Direction] = mapped_column(direction_enum())
    due_days: Mapped[int | None] = mapped_column()
    # Written by 'Transférer les règles': the previous software's rule it was made from.
    transferred_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("payment_rule.id", ondelete="SET NULL"), index=True
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def review_reasons(self) -> list[str]:
        return item_review_reasons(self)


class CodingDefault(CodingItemsMixin, db.Model):
    """The dossier's default coding for its purchases or its sales: the first layer of every document."""

    __tablename__ = "coding_default"
    __table_args__ = (UniqueConstraint("integration_id", "direction", name="uq_coding_default_direction"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id"), index=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integration.id"), index=True)
    direction: Mapped[Direction] = mapped_column(direction_enum())
    due_days: Mapped[int | None] = mapped_column()
    # Written by 'Transférer les règles': the previous software's default it was made from.
    transferred_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("coding_default.id", ondelete="SET NULL"), index=True
    )
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def review_reasons(self) -> list[str]:
        return item_review_reasons(self)


class ItemChoice(db.Model):
    """A user's answer in the review of 'Transférer les règles': this old item is that new one, or is
    ignored. Kept, and reused by the next transfers to the same integration."""

    __tablename__ = "item_choice"
    __table_args__ = (UniqueConstraint("source_item_id", "target_integration_id", name="uq_item_choice"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id"), index=True)
    source_item_id: Mapped[int] = mapped_column(BigId, ForeignKey("list_item.id"))
    target_integration_id: Mapped[int] = mapped_column(ForeignKey("integration.id"))
    target_item_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("list_item.id"))
    chosen_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    chosen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RuleTransfer(db.Model):
    """One run of 'Transférer les règles': the items to review, then the report."""

    __tablename__ = "rule_transfer"

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id"), index=True)
    target_integration_id: Mapped[int] = mapped_column(ForeignKey("integration.id"))
    status: Mapped[str] = mapped_column(String(20), default="review")  # review, done
    to_review: Mapped[list] = mapped_column(JSON, default=list)
    report: Mapped[dict] = mapped_column(JSON, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The job writing the rules: when it fails (a worker killed, an error), the page says so and
    # offers to start again instead of waiting for ever.
    job_run_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("job_run.id", ondelete="SET NULL"))
