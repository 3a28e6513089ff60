"""Who may see which dossier, and the dossier's own settings."""

from __future__ import annotations

from sqlalchemy import Select, select
from werkzeug.exceptions import NotFound

from webapp.extensions import db
from webapp.models import Dossier, Integration, User


def visible_dossiers(user: User) -> Select[tuple[Dossier]]:
    """Staff see every dossier; a member sees their organisation's."""
    query = select(Dossier).order_by(Dossier.name)
    if not user.is_staff:
        query = query.where(Dossier.organisation_id == user.organisation_id)
    return query


def get_dossier_for(user: User, dossier_id: int) -> Dossier:
    """The dossier if `user` may see it; otherwise 404, as for a dossier that does not exist."""
    dossier = db.session.get(Dossier, dossier_id)
    if dossier is None or not (user.is_staff or dossier.organisation_id == user.organisation_id):
        raise NotFound()
    return dossier


def get_integration_for(dossier: Dossier, integration_id: int) -> Integration:
    integration = db.session.get(Integration, integration_id)
    if integration is None or integration.dossier_id != dossier.id:
        raise NotFound()
    return integration


def siren_is_valid(siren: str) -> bool:
    """A SIREN is nine digits whose Luhn checksum holds."""
    if len(siren) != 9 or not siren.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(siren)):
        digit = int(char)
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def update_dossier(
    dossier: Dossier, *, name: str, siren: str | None, warn_before_creating_supplier: bool | None = None
) -> None:
    dossier.name = name.strip()
    dossier.siren = siren or None
    if warn_before_creating_supplier is not None:
        dossier.warn_before_creating_supplier = warn_before_creating_supplier
    db.session.commit()
