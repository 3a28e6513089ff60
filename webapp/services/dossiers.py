"""Who may see which dossier, and the dossier's own settings."""

from __future__ import annotations

from flask import has_request_context, session
from sqlalchemy import Select, or_, select
from werkzeug.exceptions import NotFound

from webapp.extensions import db
from webapp.models import Dossier, Integration, Role, User

VIEW_AS_KEY = "view_as"


def viewed_as(user: User) -> dict | None:
    """The 'Voir comme l'utilisateur' session of a staff member: {dossier_id, user_id, ...} or None."""
    if not (has_request_context() and user.is_staff):
        return None
    return session.get(VIEW_AS_KEY)


def visible_dossiers(user: User) -> Select[tuple[Dossier]]:
    """Everyone sees their organisation's dossiers (for staff: the support's reproductions); staff
    viewing a dossier as its user see that one too. Staff reach other dossiers through Support."""
    query = select(Dossier).order_by(Dossier.sort_name, Dossier.id)  # French order, accents ignored
    view_as = viewed_as(user)
    if view_as:
        return query.where(
            or_(Dossier.organisation_id == user.organisation_id, Dossier.id == view_as["dossier_id"])
        )
    return query.where(Dossier.organisation_id == user.organisation_id)


def get_dossier_for(user: User, dossier_id: int) -> Dossier:
    """The dossier if `user` may see it; otherwise 404, as for a dossier that does not exist.

    Staff see another organisation's dossier only while viewing it as its user (read only)."""
    dossier = db.session.get(Dossier, dossier_id)
    if dossier is None:
        raise NotFound()
    if dossier.organisation_id == user.organisation_id:
        return dossier
    view_as = viewed_as(user)
    if view_as and view_as.get("dossier_id") == dossier.id:
        return dossier
    raise NotFound()


def users_who_may_see(dossier: Dossier) -> list[User]:
    """The people told of what happens to the dossier: today the active members of its cabinet
    (staff reach dossiers through Support and are not told)."""
    return list(
        db.session.scalars(
            select(User)
            .where(
                User.organisation_id == dossier.organisation_id,
                User.is_active_account.is_(True),
                User.role != Role.STAFF,
            )
            .order_by(User.id)
        )
    )


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
