"""Each dossier's line of 'Mes dossiers', kept in step with every write (webapp.services.summaries).

What the dashboard shows, filters and sorts on for a dossier (its shown integration, the lists in
failure or loading, the last successful load, the invoices in Échec and waiting) is stored here, so a
page of a cabinet of thousands of dossiers reads one row per dossier instead of working each figure
out again. The definition stays in webapp.services.portfolio (summary_select); this table is its copy,
rewritten in the same transaction as any change of a dossier's integrations, lists or documents.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import UTCDateTime
from webapp.models.integration import IntegrationStatus, _enum_values
from webapp.search import SORT_NAME_BYTES


class DossierSummary(db.Model):
    __tablename__ = "dossier_summary"
    __table_args__ = (
        # The counts at the top read a cabinet's lines from this index alone.
        Index(
            "ix_dossier_summary_organisation",
            "organisation_id",
            "integration_status",
            "consent_expires_at",
            "invoices_failed",
        ),
    )

    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), primary_key=True)
    organisation_id: Mapped[int] = mapped_column()
    # The dossier's name order (Dossier.sort_name), the tie-break of every sort.
    sort_name: Mapped[str] = mapped_column(String(SORT_NAME_BYTES), default="")
    # The integration the dossier's pages show (none: « Non connecté »), and what the page says of it.
    integration_id: Mapped[int | None] = mapped_column()
    software: Mapped[str | None] = mapped_column(String(40))
    company_name: Mapped[str | None] = mapped_column(String(200))
    integration_status: Mapped[IntegrationStatus | None] = mapped_column(
        Enum(IntegrationStatus, name="integration_status", native_enum=False, values_callable=_enum_values)
    )
    consent_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_loaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lists_failed: Mapped[int] = mapped_column(default=0)
    lists_running: Mapped[int] = mapped_column(default=0)
    invoices_failed: Mapped[int] = mapped_column(default=0)
    invoices_ready: Mapped[int] = mapped_column(default=0)
    invoices_to_review: Mapped[int] = mapped_column(default=0)
    # 'En cours': when none, 'Documents' need not look for publications whose worker died.
    publications_running: Mapped[int] = mapped_column(default=0, server_default="0")
    # Rewritten with a new random token by every write of what the dossier's pages show (its
    # integrations, lists, items, documents, rules, events): the cached parts of its pages are found
    # under it (webapp.fragments). Not a figure of the line: summary_select leaves it out.
    version: Mapped[str] = mapped_column(String(32), default="", server_default="")

    def __repr__(self) -> str:
        return f"<DossierSummary {self.dossier_id} {self.integration_status}>"


# « Factures en échec », the most first (« A besoin de moi » too): the page's 50 read in order from
# this index, the filters tested in it.
Index(
    "ix_dossier_summary_failed_first",
    DossierSummary.organisation_id,
    DossierSummary.invoices_failed.desc(),
    DossierSummary.sort_name,
    DossierSummary.dossier_id,
    DossierSummary.integration_status,
    DossierSummary.consent_expires_at,
    DossierSummary.lists_failed,
)
