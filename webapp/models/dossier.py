"""A dossier: one client company's file, owned by an organisation."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow
from webapp.search import (
    SEARCH_TEXT_BYTES,
    SORT_NAME_BYTES,
    combined,
    compact,
    keep_search_columns,
    search_column,
    searchable,
    sort_key,
)

if TYPE_CHECKING:
    from webapp.models.integration import Integration
    from webapp.models.people import Organisation


def _dossier_search_text(get) -> str:
    return combined(compact(get("siren")), searchable(get("name")))


def _dossier_sort_name(get) -> str:
    return sort_key(get("name"))


class Dossier(db.Model):
    __tablename__ = "dossier"
    __table_args__ = (
        # 'Mes dossiers' in name order, a page at a time, without sorting the cabinet's dossiers (0026).
        Index("ix_dossier_organisation_sort", "organisation_id", "sort_name", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    siren: Mapped[str | None] = mapped_column(String(9), index=True)
    # 'M'avertir avant de créer un fournisseur': a supplier missing upstream waits for the user.
    warn_before_creating_supplier: Mapped[bool] = mapped_column(default=False)
    # A copy made by 'Reproduire dans le bac à sable': the dossier it reproduces.
    reproduced_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("dossier.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Normalised copies for 'Mes dossiers' and the support's search (webapp.search).
    search_text: Mapped[str] = search_column(_dossier_search_text, SEARCH_TEXT_BYTES)
    sort_name: Mapped[str] = search_column(_dossier_sort_name, SORT_NAME_BYTES)

    organisation: Mapped[Organisation] = relationship(back_populates="dossiers")
    integrations: Mapped[list[Integration]] = relationship(
        back_populates="dossier", order_by="Integration.created_at.desc()"
    )

    @property
    def current_integration(self) -> Integration | None:
        """The integration in use: the newest one that is not disconnected."""
        from webapp.models.integration import IntegrationStatus

        for integration in self.integrations:
            if integration.status is not IntegrationStatus.DISCONNECTED:
                return integration
        return None

    @property
    def siren_display(self) -> str:
        """'732 829 320', its groups held together by narrow no-break spaces."""
        from webapp.typography import siren_grouped

        return siren_grouped(self.siren or "")


keep_search_columns(
    Dossier, ("name", "siren"), {"search_text": _dossier_search_text, "sort_name": _dossier_sort_name}
)
