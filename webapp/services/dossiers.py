"""Who may see which dossier, and the dossier's own settings."""

from __future__ import annotations

from functools import cache

from flask import g, has_request_context, session
from sqlalchemy import Select, bindparam, exists, or_, select
from sqlalchemy.sql.elements import ColumnElement
from werkzeug.exceptions import NotFound

from webapp.extensions import db
from webapp.models import Dossier, Integration, Role, User, dossier_access

VIEW_AS_KEY = "view_as"


def viewed_as(user: User) -> dict | None:
    """The 'Voir comme l'utilisateur' session of a staff member: {dossier_id, user_id, ...} or None."""
    if not (has_request_context() and user.is_staff):
        return None
    return session.get(VIEW_AS_KEY)


def _granted(user_id: int) -> ColumnElement[bool]:
    """Whether the dossier is one the user was given (dossier_access)."""
    return exists().where(dossier_access.c.user_id == user_id, dossier_access.c.dossier_id == Dossier.id)


def own_dossiers_condition(user: User) -> ColumnElement[bool]:
    """The dossiers of the user's organisation that the user may see: all of them, but for a member
    an admin restricted to some (User.is_restricted)."""
    condition = Dossier.organisation_id == user.organisation_id
    if user.is_restricted:
        return condition & _granted(user.id)
    return condition


def visible_dossiers(user: User) -> Select[tuple[Dossier]]:
    """Everyone sees their organisation's dossiers (for staff: the support's reproductions), but for a
    restricted member, who sees only theirs; staff viewing a dossier as its user see that one too.
    Staff reach other dossiers through Support."""
    query = select(Dossier).order_by(Dossier.sort_name, Dossier.id)  # French order, accents ignored
    view_as = viewed_as(user)
    if view_as:
        return query.where(or_(own_dossiers_condition(user), Dossier.id == view_as["dossier_id"]))
    return query.where(own_dossiers_condition(user))


def may_see(user: User, dossier: Dossier) -> bool:
    """Whether `user` may see and act on their organisation's `dossier` (staff's 'Voir comme
    l'utilisateur' aside)."""
    if dossier.organisation_id != user.organisation_id or not user.is_active_account:
        return False
    if not user.is_restricted:
        return True
    return (
        db.session.scalar(
            select(dossier_access.c.dossier_id).where(
                dossier_access.c.user_id == user.id, dossier_access.c.dossier_id == dossier.id
            )
        )
        is not None
    )


def users_who_may_see(dossier: Dossier) -> list[User]:
    """The active non-staff users of the dossier's organisation who may see it: admins, members
    not restricted, and restricted members given this dossier."""
    return list(
        db.session.scalars(
            select(User)
            .where(
                User.organisation_id == dossier.organisation_id,
                User.is_active_account.is_(True),
                User.role != Role.STAFF,
                or_(
                    User.role != Role.MEMBER,
                    User.dossiers_restricted.is_(False),
                    exists().where(
                        dossier_access.c.user_id == User.id, dossier_access.c.dossier_id == dossier.id
                    ),
                ),
            )
            .order_by(User.full_name, User.email, User.id)
        )
    )


@cache
def _dossier_with_state_statement():
    """Asked on every page of a dossier: built once (making it costs as much as running it)."""
    from webapp.fragments import state_columns
    from webapp.models import DossierSummary

    return (
        select(Dossier, *state_columns())
        .outerjoin(DossierSummary, DossierSummary.dossier_id == Dossier.id)
        .where(Dossier.id == bindparam("dossier_id"))
    )


def _dossier_with_state(dossier_id: int) -> Dossier | None:
    """The dossier, and in the same query what its pages need to serve their kept parts
    (webapp.fragments.dossier_state then finds it in `g`)."""
    from webapp.fragments import remember_state

    row = None
    if has_request_context():
        # Read with the session when this request's page is the dossier's (services.sessions).
        prefetched = g.pop("_prefetched_dossier", None)
        if prefetched is not None and prefetched[0] == dossier_id:
            row = prefetched[1]
            if row.Dossier is None:
                return None
    if row is None:
        row = db.session.execute(_dossier_with_state_statement(), {"dossier_id": dossier_id}).first()
    if row is None:
        return None
    if has_request_context():
        remember_state(dossier_id, row)
    return row.Dossier


def get_dossier_for(user: User, dossier_id: int) -> Dossier:
    """The dossier if `user` may see it; otherwise 404, as for a dossier that does not exist.

    A restricted member sees only the dossiers they were given. Staff see another organisation's
    dossier only while viewing it as its user (read only)."""
    dossier = _dossier_with_state(dossier_id)
    if dossier is None:
        raise NotFound()
    if may_see(user, dossier):
        return dossier
    view_as = viewed_as(user)
    if view_as and view_as.get("dossier_id") == dossier.id:
        return dossier
    raise NotFound()


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
