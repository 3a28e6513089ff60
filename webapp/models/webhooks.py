"""What the accounting software pushed to Raccord: one row per webhook delivery, never edited.

Kept for support and for refusing a delivery sent twice (a replay): the body itself is never kept,
only its SHA-256, the companies it named and what Raccord did with it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import BigId, UTCDateTime, utcnow

#: What became of a delivery.
OUTCOMES = ("accepted", "intent", "forged", "unsigned", "replayed", "malformed", "unknown_company")


class WebhookDelivery(db.Model):
    __tablename__ = "webhook_delivery"
    __table_args__ = (
        # A replay is looked up by its body's digest among recent accepted deliveries.
        Index("ix_webhook_delivery_digest", "body_sha256", "received_at"),
        # 'The last webhook of an integration' (support): the JSON list is read, the vendor narrows.
        Index("ix_webhook_delivery_vendor_received", "vendor", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    vendor: Mapped[str] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    outcome: Mapped[str] = mapped_column(String(20))
    body_sha256: Mapped[str] = mapped_column(String(64))
    # What the body named and what Raccord did: company ids (tenantId, realmId), the integrations
    # whose lists were asked for again, and those lists.
    company_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    integration_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    lists: Mapped[list[str]] = mapped_column(JSON, default=list)
    detail: Mapped[str] = mapped_column(String(300), default="")

    def as_dict(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "received_at": self.received_at.isoformat() if self.received_at else None,
            "outcome": self.outcome,
            "company_ids": self.company_ids,
            "integration_ids": self.integration_ids,
            "lists": self.lists,
            "detail": self.detail,
        }
