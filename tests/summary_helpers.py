"""'Mes dossiers' lines (models.DossierSummary) against the live figures they copy."""

from __future__ import annotations

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import Dossier, DossierSummary
from webapp.services.portfolio import summary_select


def live_summaries() -> dict[int, tuple]:
    ids = list(db.session.scalars(select(Dossier.id)))
    return {row.dossier_id: tuple(row) for row in db.session.execute(summary_select(ids))} if ids else {}


def stored_summaries() -> dict[int, tuple]:
    columns = [DossierSummary.__table__.c[c.name] for c in summary_select([0]).selected_columns]
    return {row.dossier_id: tuple(row) for row in db.session.execute(select(*columns))}


def assert_summaries_true() -> None:
    """Every dossier has its line, each line says what the live computation says, no line is left
    of a dossier gone. Call it after the writes are committed."""
    stored, live = stored_summaries(), live_summaries()
    wrong = {
        dossier_id: {"stored": stored.get(dossier_id), "live": live.get(dossier_id)}
        for dossier_id in stored.keys() | live.keys()
        if stored.get(dossier_id) != live.get(dossier_id)
    }
    assert not wrong, f"'Mes dossiers' lines out of step: {wrong}"
