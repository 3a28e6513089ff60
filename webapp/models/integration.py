"""A dossier's connection to one company in one accounting software."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Enum, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow

if TYPE_CHECKING:
    from webapp.models.dossier import Dossier
    from webapp.models.people import User


class IntegrationStatus(enum.StrEnum):
    CONNECTED = "connected"
    EXPIRED = "expired"
    DISCONNECTED = "disconnected"

    @property
    def label(self) -> str:
        return str(_STATUS_LABELS[self])


_STATUS_LABELS = {
    IntegrationStatus.CONNECTED: _l("Connectée"),
    IntegrationStatus.EXPIRED: _l("Expirée"),
    IntegrationStatus.DISCONNECTED: _l("Déconnectée"),
}


class ListKind(enum.StrEnum):
    """The lists documents are coded against, in the order the screens show them."""

    ACCOUNTS = "accounts"
    SUPPLIERS = "suppliers"
    CUSTOMERS = "customers"
    TAX_RATES = "tax_rates"
    TRACKING_CATEGORIES = "tracking_categories"
    PAYMENT_METHODS = "payment_methods"

    @property
    def label(self) -> str:
        return str(_LIST_LABELS[self])


_LIST_LABELS = {
    ListKind.ACCOUNTS: _l("Plan comptable"),
    ListKind.SUPPLIERS: _l("Fournisseurs"),
    ListKind.CUSTOMERS: _l("Clients"),
    ListKind.TAX_RATES: _l("Taux de TVA"),
    ListKind.TRACKING_CATEGORIES: _l("Catégories analytiques"),
    ListKind.PAYMENT_METHODS: _l("Moyens de paiement"),
}


def _enum_values(enum_class: type[enum.Enum]) -> list[str]:
    return [member.value for member in enum_class]


class Integration(db.Model):
    __tablename__ = "integration"
    __table_args__ = (
        # A dossier's integrations from the newest, with their status: the one in use (the newest not
        # disconnected), or the last one, read from the index alone ('Mes dossiers', 0026).
        Index("ix_integration_dossier_created", "dossier_id", "created_at", "id", "status"),
        # The hourly token pass finds the connected integrations idle for a day in this index alone,
        # one range per branch of its condition (renewed before the cutoff; never renewed, created
        # before it): nothing read when none is due, whatever the number of dossiers (0029).
        Index("ix_integration_tokens_due", "status", "tokens_refreshed_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id"), index=True)
    software: Mapped[str] = mapped_column(String(40))
    company_id: Mapped[str] = mapped_column(String(120))
    company_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[IntegrationStatus] = mapped_column(
        Enum(IntegrationStatus, name="integration_status", native_enum=False, values_callable=_enum_values),
        default=IntegrationStatus.CONNECTED,
    )
    status_since: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    connected_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The OAuth tokens, encrypted (webapp.crypto); never shown, never logged.
    token_ciphertext: Mapped[str | None] = mapped_column(Text)
    access_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    tokens_refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status_reason: Mapped[str] = mapped_column(Text, default="")
    # When the access ends unless the user gives it again, as the software says with its tokens
    # (QuickBooks' x_refresh_token_expires_in); and the end already announced in the timeline.
    consent_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    consent_announced_for: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # How often the lists refresh by themselves where the software sends no webhooks (Pennylane,
    # Sage): 'nightly' (the changes-only refresh of the night) or 'hourly' (also every hour).
    refresh_frequency: Mapped[str] = mapped_column(String(10), default="nightly", server_default="nightly")
    # When the software last announced a change of this company's lists (a signed webhook accepted).
    last_webhook_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    dossier: Mapped[Dossier] = relationship(back_populates="integrations")
    connected_by: Mapped[User | None] = relationship()

    def __repr__(self) -> str:  # never the tokens
        return f"<Integration {self.id} {self.software} {self.status}>"

    @property
    def is_connected(self) -> bool:
        return self.status is IntegrationStatus.CONNECTED

    def consent_ends_within(self, days: int) -> bool:
        """Connected, and the software's access ends within `days` unless given again."""
        if not self.is_connected or self.consent_expires_at is None:
            return False
        return self.consent_expires_at - utcnow() <= timedelta(days=days)

    @property
    def software_name(self) -> str:
        from webapp.connectors.catalogue import software_name

        return software_name(self.software)


#: The choices of « Actualisation automatique des listes ».
REFRESH_FREQUENCIES = ("nightly", "hourly")

#: The software that tells Raccord of each change as it happens (webapp.webhooks).
SOFTWARE_WITH_WEBHOOKS = ("xero", "quickbooks")


class PendingConsent(db.Model):
    """A consent the software gave, waiting for the user to say which company is the dossier's (one
    consent may cover several) or to confirm one already connected to another dossier. Its tokens
    are encrypted like an integration's; the row goes when the user decides, or after 15 minutes."""

    __tablename__ = "pending_consent"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)  # in the choice page's address
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), index=True)
    software: Mapped[str] = mapped_column(String(40))
    # {"reconnect": id} or {"replace": id}, or {} for a first connection.
    purpose: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    token_ciphertext: Mapped[str] = mapped_column(Text)
    # The companies the consent covers, as the software names them: [{"id", "name", "extra"}].
    companies: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:  # never the tokens
        return f"<PendingConsent {self.id} {self.software} dossier={self.dossier_id}>"
