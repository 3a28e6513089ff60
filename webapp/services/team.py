"""The cabinet's team (« Équipe »): roles, deactivation, and the dossiers a member is restricted to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import ceil

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, insert, select
from sqlalchemy.sql.elements import ColumnElement

from webapp.extensions import db
from webapp.models import Dossier, Organisation, Role, User, dossier_access
from webapp.search import matching_all, query_words
from webapp.services.sessions import EndReason, end_user_sessions

#: Dossiers shown per page of the restriction list (a cabinet can have thousands).
ACCESS_PAGE_SIZE = 50

LAST_ADMIN = _l("Le cabinet doit garder au moins un administrateur actif : nommez-en un autre d'abord.")
NOT_YOURSELF = _l("Vous ne pouvez pas désactiver votre propre compte.")
UNKNOWN_ROLE = _l("Choisissez le rôle « Administrateur » ou « Membre ».")


class TeamRefused(Exception):
    """A change the team page refuses, with the French reason shown to the admin."""


@dataclass(frozen=True)
class TeamMember:
    user: User
    #: How many dossiers a restricted member was given; None when they see them all.
    dossier_count: int | None


def team_of(organisation_id: int) -> list[TeamMember]:
    """The cabinet's users (support staff aside), active first, with their dossier counts."""
    users = db.session.scalars(
        select(User)
        .where(User.organisation_id == organisation_id, User.role != Role.STAFF)
        .order_by(User.is_active_account.desc(), User.full_name, User.email, User.id)
    ).all()
    counts = dict(
        db.session.execute(
            select(dossier_access.c.user_id, func.count())
            .where(dossier_access.c.user_id.in_([u.id for u in users if u.is_restricted]))
            .group_by(dossier_access.c.user_id)
        ).all()
    )
    return [TeamMember(u, counts.get(u.id, 0) if u.is_restricted else None) for u in users]


def member_of(organisation_id: int, user_id: int) -> User | None:
    """A user of the cabinet the team page may change (never the support's staff)."""
    user = db.session.get(User, user_id)
    if user is None or user.organisation_id != organisation_id or user.is_staff:
        return None
    return user


def _lock_team(organisation_id: int) -> None:
    """Two admins changing roles at once must not both remove the last other admin: the organisation's
    row is locked until commit (PostgreSQL; SQLite writes one at a time anyway)."""
    db.session.execute(select(Organisation.id).where(Organisation.id == organisation_id).with_for_update())


def _other_active_admins(user: User) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(User)
        .where(
            User.organisation_id == user.organisation_id,
            User.role == Role.ADMIN,
            User.is_active_account.is_(True),
            User.id != user.id,
        )
    )


def change_role(user: User, role_value: str) -> None:
    """Make `user` an admin or a member; the cabinet always keeps an active admin."""
    try:
        role = Role(role_value)
    except ValueError:
        raise TeamRefused(str(UNKNOWN_ROLE)) from None
    if role not in (Role.ADMIN, Role.MEMBER):
        raise TeamRefused(str(UNKNOWN_ROLE))
    _lock_team(user.organisation_id)
    db.session.refresh(user)
    if user.role is Role.ADMIN and role is Role.MEMBER and _other_active_admins(user) == 0:
        raise TeamRefused(str(LAST_ADMIN))
    user.role = role
    db.session.commit()


def set_active(actor: User, user: User, active: bool) -> int:
    """Deactivate (every session of the user ends at once) or reactivate an account; returns how many
    sessions were ended."""
    if active:
        user.is_active_account = True
        db.session.commit()
        return 0
    if user.id == actor.id:
        raise TeamRefused(str(NOT_YOURSELF))
    _lock_team(user.organisation_id)
    db.session.refresh(user)
    if user.role is Role.ADMIN and _other_active_admins(user) == 0:
        raise TeamRefused(str(LAST_ADMIN))
    user.is_active_account = False
    ended = end_user_sessions(user.id, EndReason.DEACTIVATED)
    db.session.commit()
    return ended


def set_restricted(user: User, restricted: bool) -> None:
    """« Tous les dossiers » or « Seulement les dossiers cochés » (the ticks are kept either way)."""
    user.dossiers_restricted = restricted
    db.session.commit()


def granted_ids(user_id: int, dossier_ids: list[int] | None = None) -> set[int]:
    query = select(dossier_access.c.dossier_id).where(dossier_access.c.user_id == user_id)
    if dossier_ids is not None:
        query = query.where(dossier_access.c.dossier_id.in_(dossier_ids))
    return set(db.session.scalars(query))


def grant(user_id: int, dossier_ids: list[int]) -> None:
    """Give the user these dossiers (ids already checked to be the user's cabinet's)."""
    new = set(dossier_ids) - granted_ids(user_id, list(dossier_ids))
    if new:
        db.session.execute(
            insert(dossier_access), [{"user_id": user_id, "dossier_id": d} for d in sorted(new)]
        )


def update_access(user: User, shown: list[int], ticked: list[int]) -> tuple[int, int]:
    """The restriction list as it was shown (one page of it): each dossier shown is given if ticked and
    taken back if not; dossiers not shown are left as they are. Ids that are not the cabinet's are
    ignored. Returns (given, taken back)."""
    valid = set(
        db.session.scalars(
            select(Dossier.id).where(Dossier.organisation_id == user.organisation_id, Dossier.id.in_(shown))
        )
    )
    wanted = valid & set(ticked)
    had = granted_ids(user.id, list(valid))
    to_grant, to_remove = wanted - had, (valid - wanted) & had
    if to_grant:
        grant(user.id, list(to_grant))
    if to_remove:
        db.session.execute(
            delete(dossier_access).where(
                dossier_access.c.user_id == user.id, dossier_access.c.dossier_id.in_(to_remove)
            )
        )
    db.session.commit()
    return len(to_grant), len(to_remove)


@dataclass(frozen=True)
class AccessPage:
    rows: list[tuple[Dossier, bool]]
    total: int
    page: int
    pages: int


def access_page(
    organisation_id: int,
    ticked_condition: ColumnElement[bool],
    ticked_of: Callable[[list[int]], set[int]],
    *,
    query: str = "",
    only_ticked: bool = False,
    page: int = 1,
) -> AccessPage:
    """One page of the cabinet's dossiers, each with whether it is ticked: searched like 'Mes
    dossiers' (every word, accents ignored), and only the ticked ones if asked."""
    condition = [Dossier.organisation_id == organisation_id]
    condition += matching_all(Dossier.search_text, query_words(query))
    if only_ticked:
        condition.append(ticked_condition)
    total = db.session.scalar(select(func.count()).select_from(Dossier).where(*condition)) or 0
    pages = max(1, ceil(total / ACCESS_PAGE_SIZE))
    page = min(page, pages)
    dossiers = db.session.scalars(
        select(Dossier)
        .where(*condition)
        .order_by(Dossier.sort_name, Dossier.id)
        .limit(ACCESS_PAGE_SIZE)
        .offset((page - 1) * ACCESS_PAGE_SIZE)
    ).all()
    ticked = ticked_of([d.id for d in dossiers])
    return AccessPage([(d, d.id in ticked) for d in dossiers], total, page, pages)


def user_access_page(user: User, **options) -> AccessPage:
    """The dossiers a member was given, page by page."""
    mine = Dossier.id.in_(select(dossier_access.c.dossier_id).where(dossier_access.c.user_id == user.id))
    return access_page(user.organisation_id, mine, lambda ids: granted_ids(user.id, ids), **options)


def organisation_dossier_ids(organisation_id: int, ids: list[int]) -> list[int]:
    """Those of `ids` that are dossiers of the organisation, in order, each once."""
    valid = set(
        db.session.scalars(
            select(Dossier.id).where(Dossier.organisation_id == organisation_id, Dossier.id.in_(ids))
        )
    )
    return sorted(valid)
