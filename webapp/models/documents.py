"""Purchase and sales invoices waiting to be published to the accounting software."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from decimal import Decimal

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Date, Enum, ForeignKey, Index, LargeBinary, Numeric, String, Text, and_
from sqlalchemy.orm import Mapped, deferred, mapped_column

from webapp.extensions import db
from webapp.models.base import BigId, UTCDateTime, utcnow
from webapp.models.coding import CodingItemsMixin, Direction, direction_enum, item_relationship


class DocumentStatus(enum.StrEnum):
    TO_REVIEW = "to_review"
    READY = "ready"
    IN_PROGRESS = "in_progress"
    PUBLISHED = "published"
    FAILED = "failed"

    @property
    def label(self) -> str:
        return str(_STATUS_LABELS[self])


_STATUS_LABELS = {
    DocumentStatus.TO_REVIEW: _l("À réviser"),
    DocumentStatus.READY: _l("Prêt"),
    DocumentStatus.IN_PROGRESS: _l("En cours"),
    DocumentStatus.PUBLISHED: _l("Publié"),
    DocumentStatus.FAILED: _l("Échec"),
}


def _values(e):
    return [m.value for m in e]


class Document(CodingItemsMixin, db.Model):
    __tablename__ = "document"
    __table_args__ = (
        # The 'Documents' page: newest first, all of them or one status at a time, and the tab counts.
        Index("ix_document_integration_created", "integration_id", "created_at", "id"),
        Index("ix_document_integration_status", "integration_id", "status", "created_at"),
        # 'Republier les factures en échec' on the Intégration page: those failed for an expiry.
        Index("ix_document_integration_failure", "integration_id", "status", "failure_reason"),
        # Each visit of 'Documents': the invoices being published by a job (release_if_crashed).
        Index("ix_document_awaiting_job", "integration_id", "status", "job_run_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id"), index=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integration.id"), index=True)
    direction: Mapped[Direction] = mapped_column(direction_enum())
    # The supplier or customer: an item of the list, or, when the invoice names one the list does
    # not hold (yet), what the invoice says of it, looked for and created upstream at publication.
    party_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("list_item.id"))
    party = item_relationship("party_id")
    party_name: Mapped[str] = mapped_column(String(300), default="")
    party_vat_number: Mapped[str | None] = mapped_column(String(40))
    party_siren: Mapped[str | None] = mapped_column(String(9))
    party_creation_approved: Mapped[bool] = mapped_column(default=False)
    # Why a document that lacks nothing still waits for the user (e.g. a supplier to create).
    hold_reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[DocumentStatus] = mapped_column(
        Enum(DocumentStatus, name="document_status", native_enum=False, values_callable=_values),
        default=DocumentStatus.TO_REVIEW,
        index=True,
    )
    number: Mapped[str] = mapped_column(String(60))
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date | None] = mapped_column(Date)
    amount_ht: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    amount_tva: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    amount_ttc: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("rule.id", ondelete="SET NULL"))
    payment_rule_id: Mapped[int | None] = mapped_column(ForeignKey("payment_rule.id", ondelete="SET NULL"))
    pdf_name: Mapped[str | None] = mapped_column(String(200))  # as the user's file was named, shown
    # The name the PDF is sent to the software and served under (services.documents.attachment_name).
    pdf_filename: Mapped[str | None] = mapped_column(String(120))
    pdf_data: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    # Sent with the invoice so the software creates it once, whatever the retries.
    idempotency_key: Mapped[str] = mapped_column(String(64), default=lambda: uuid.uuid4().hex, unique=True)
    upstream_id: Mapped[str | None] = mapped_column(String(120))
    failure_reason: Mapped[str] = mapped_column(Text, default="")
    failure_detail: Mapped[str] = mapped_column(Text, default="")
    # The last publication job: a document left 'En cours' by a dead worker is released by it.
    job_run_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("job_run.id", ondelete="SET NULL"))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Carried over by 'Transférer les règles' from the previous software's integration; the fields
    # it could not place there, each with why ({"field": "compte", "why": "…"}), until the user
    # saves the coding.
    moved_from_integration_id: Mapped[int | None] = mapped_column(ForeignKey("integration.id"))
    transfer_notes: Mapped[list | None] = mapped_column(JSON)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)

    @classmethod
    def publication_running(cls):
        """Invoices 'En cours' with their publication's job: those whose worker may have died
        (services.publishing.release_if_crashed), and what the dossier's line counts of them."""
        return and_(cls.status == DocumentStatus.IN_PROGRESS, cls.job_run_id.is_not(None))

    @property
    def missing_coding(self) -> list[str]:
        """What is missing before the document can be published (empty: 'Prêt')."""
        missing = []
        if self.account_id is None:
            missing.append(_("compte"))
        if self.tax_rate_id is None:
            missing.append(_("taux de TVA"))
        return missing

    @property
    def party_display(self) -> str:
        return self.party.name if self.party is not None else self.party_name

    @property
    def party_is_new(self) -> bool:
        """The invoice names a party the list does not hold: it is looked for upstream, then created."""
        return self.party_id is None
