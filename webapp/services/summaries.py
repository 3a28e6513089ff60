"""Keeps 'Mes dossiers' lines (models.DossierSummary) true in the same transaction as every write.

One hook for every way the app writes: a session notes the dossiers whose integrations, lists or
documents it changed (objects flushed, and the UPDATE, INSERT and DELETE statements it executes on
those tables, bulk ones included), and rewrites their lines just before it commits, set-based, from
the one definition of the figures (services.portfolio.summary_select). 'Mes dossiers' also brings a
line up to date before reading it when its own session changed something not yet committed.

The same hook keeps each dossier's version (DossierSummary.version), a random token rewritten by any
write of what the dossier's pages show: the figures' tables above, and the items of its lists, its
rules and its events, which change only the version. The cached parts of its pages are found under
it (webapp.fragments). A list's merge, written by statements the hook does not read, says so itself
(`touch`).

On PostgreSQL two transactions changing the same dossier at once could each write a line computed
without the other's change: the lines are locked first (in id order), and the figures read after the
lock, by a statement that sees what the other committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter, ClauseElement

from webapp.models import Document, Dossier, DossierSummary, Event, Integration, ListItem, ListSync, User
from webapp.models.rules import CodingDefault, ItemChoice, PaymentRule, Rule, RuleTransfer

#: The tables whose rows a line depends on, with the column that leads to the dossier.
_DOSSIER_KEY = {
    Dossier.__table__: "id",
    Integration.__table__: "dossier_id",
    Document.__table__: "dossier_id",
}
_INTEGRATION_KEY = {ListSync.__table__: "integration_id"}
#: What a dossier's pages show besides the line's figures: a write changes only the version. Items of
#: lists are read from their objects only (a list's merge calls `touch`).
_VERSION_MODELS = (Event, Rule, PaymentRule, CodingDefault, ItemChoice, RuleTransfer)
_VERSION_TABLES = {model.__table__.name: model.__table__ for model in _VERSION_MODELS}
_TABLES = {table.name: table for table in (*_DOSSIER_KEY, *_INTEGRATION_KEY)}
_DOSSIERS = "summary_dossiers"
_INTEGRATIONS = "summary_integrations"
_NEW_DOSSIERS = "summary_new_dossiers"
_VERSION_DOSSIERS = "version_dossiers"
_VERSION_INTEGRATIONS = "version_integrations"
_VERSION_PEOPLE = "version_people"
_CHUNK = 500


def _note(session: Session, dossiers: Iterable = (), integrations: Iterable = ()) -> None:
    session.info.setdefault(_DOSSIERS, set()).update(i for i in dossiers if i is not None)
    session.info.setdefault(_INTEGRATIONS, set()).update(i for i in integrations if i is not None)


def touch(session: Session, dossiers: Iterable = (), integrations: Iterable = ()) -> None:
    """What these dossiers' (or integrations') pages show changed: their version is rewritten when
    the session commits."""
    session.info.setdefault(_VERSION_DOSSIERS, set()).update(i for i in dossiers if i is not None)
    session.info.setdefault(_VERSION_INTEGRATIONS, set()).update(i for i in integrations if i is not None)


def _history_values(obj, attribute: str) -> list:
    """The attribute's value now and, if the flush changed it, before."""
    from sqlalchemy import inspect

    history = inspect(obj).attrs[attribute].history
    return [getattr(obj, attribute), *(history.deleted or ())]


def _after_flush(session: Session, _context) -> None:
    dossiers: set = set()
    integrations: set = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Dossier):
            dossiers.add(obj.id)
        elif isinstance(obj, Integration) and obj in session.dirty and _only_tokens_changed(obj):
            continue  # a renewal of its tokens: nothing a page or a line shows
        elif isinstance(obj, (Integration, Document)):
            dossiers.update(_history_values(obj, "dossier_id"))
            if isinstance(obj, Document):
                integrations.update(_history_values(obj, "integration_id"))
        elif isinstance(obj, ListSync):
            integrations.update(_history_values(obj, "integration_id"))
        elif isinstance(obj, _VERSION_MODELS):
            touch(session, dossiers=_history_values(obj, "dossier_id"))
        elif isinstance(obj, ListItem):
            touch(session, integrations=_history_values(obj, "integration_id"))
        elif isinstance(obj, User) and obj in session.dirty and _renamed(obj):
            # The timelines say who did what by name.
            session.info.setdefault(_VERSION_PEOPLE, set()).add(obj.id)
    if dossiers or integrations:
        _note(session, dossiers, integrations)


#: What an integration's tokens change when renewed: no page and no line of 'Mes dossiers' shows them.
_TOKEN_COLUMNS = frozenset({"token_ciphertext", "access_expires_at", "tokens_refreshed_at"})


def _only_tokens_changed(integration: Integration) -> bool:
    from sqlalchemy import inspect

    changed = {attr.key for attr in inspect(integration).attrs if attr.history.has_changes()}
    return bool(changed) and changed <= _TOKEN_COLUMNS


def _renamed(user: User) -> bool:
    from sqlalchemy import inspect

    attrs = inspect(user).attrs
    return attrs.full_name.history.has_changes() or attrs.email.history.has_changes()


def _do_orm_execute(state) -> None:
    """An UPDATE, INSERT or DELETE statement on a table a line depends on: the dossiers it touches,
    read before it runs (a DELETE's rows are gone after) from its WHERE or its rows' primary keys,
    and the ones its values name (an INSERT's rows, a row moved to another integration)."""
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    statement = state.statement
    # The statement's table, or an annotated copy of it (an ORM entity's).
    name = getattr(getattr(statement, "table", None), "name", None)
    table = _TABLES.get(name)
    version_only = table is None and name in _VERSION_TABLES
    if version_only:
        table = _VERSION_TABLES[name]
    if table is None:
        return
    session = state.session
    by_dossier = version_only or table in _DOSSIER_KEY
    key = table.c[
        "dossier_id" if version_only else _DOSSIER_KEY[table] if by_dossier else _INTEGRATION_KEY[table]
    ]
    parameters = state.parameters
    rows = parameters if isinstance(parameters, list) else [parameters] if parameters else []

    def note(values) -> None:
        if version_only:
            touch(session, dossiers=values)
        elif by_dossier:
            _note(session, dossiers=values)
        else:
            _note(session, integrations=values)

    # What the statement's values say (an INSERT's rows, a bulk UPDATE by primary key, .values()).
    fixed = getattr(statement, "_values", None) or {}
    for column, value in fixed.items():
        if getattr(column, "key", column) == key.key:
            if isinstance(value, BindParameter):
                note([value.value])
            elif not isinstance(value, ClauseElement):
                note([value])
    note(row.get(key.key) for row in rows if isinstance(row, dict))
    if state.is_insert and table is Dossier.__table__:
        if not all(isinstance(row, dict) and row.get("id") for row in rows) or not rows:
            # Dossiers whose ids are not known before: each dossier without a line gets one.
            session.info[_NEW_DOSSIERS] = True
        return
    if state.is_insert:
        select_rows = getattr(statement, "select", None)
        if select_rows is None:
            return
        # INSERT … SELECT: the rows it made are not known before; all of the table's keys after
        # would be too many, so this is refused rather than silently left stale.
        raise RuntimeError(f"INSERT … SELECT into {table.name} does not keep 'Mes dossiers' lines true")
    ids = [row["id"] for row in rows if isinstance(row, dict) and "id" in row]
    if ids:
        note(session.scalars(select(key).where(table.c.id.in_(ids))))
    if statement.whereclause is not None:
        note(session.scalars(select(key).where(statement.whereclause)))
    elif not ids:
        note(session.scalars(select(key).distinct()))


def pending(session: Session) -> bool:
    info = session.info
    return bool(
        info.get(_DOSSIERS)
        or info.get(_INTEGRATIONS)
        or info.get(_NEW_DOSSIERS)
        or info.get(_VERSION_DOSSIERS)
        or info.get(_VERSION_INTEGRATIONS)
        or info.get(_VERSION_PEOPLE)
    )


def _dossiers_of(session: Session, integrations: Iterable) -> set[int]:
    found: set[int] = set()
    integrations = sorted(integrations)
    for start in range(0, len(integrations), _CHUNK):
        chunk = integrations[start : start + _CHUNK]
        found.update(session.scalars(select(Integration.dossier_id).where(Integration.id.in_(chunk))))
    return found


def bring_up_to_date(session: Session) -> None:
    """Rewrite the lines of the dossiers this session changed (flushing first what is not yet), and
    the version of every dossier whose pages it changed."""
    if session.new or session.dirty or session.deleted:
        session.flush()
    dossiers = set(session.info.pop(_DOSSIERS, ()) or ())
    dossiers |= _dossiers_of(session, session.info.pop(_INTEGRATIONS, ()) or ())
    if session.info.pop(_NEW_DOSSIERS, False):
        has_line = select(DossierSummary.dossier_id).where(DossierSummary.dossier_id == Dossier.id).exists()
        dossiers.update(session.scalars(select(Dossier.id).where(~has_line)))
    versions = set(session.info.pop(_VERSION_DOSSIERS, ()) or ())
    versions |= _dossiers_of(session, session.info.pop(_VERSION_INTEGRATIONS, ()) or ())
    people = sorted(session.info.pop(_VERSION_PEOPLE, ()) or ())
    if people:
        # A person renamed: the dossiers of their cabinet, and those where they acted (support).
        cabinets = select(User.organisation_id).where(User.id.in_(people))
        versions.update(session.scalars(select(Dossier.id).where(Dossier.organisation_id.in_(cabinets))))
        versions.update(
            session.scalars(select(Event.dossier_id).where(Event.actor_id.in_(people)).distinct())
        )
    versions -= dossiers
    if not dossiers and not versions:
        return
    _forget_versions_read()
    token = uuid.uuid4().hex[:16]
    if session.get_bind().dialect.name == "postgresql":
        _lock(session, sorted(dossiers | versions))
    if dossiers:
        recompute(session, sorted(dossiers), version=token, locked=True)
    ordered = sorted(versions)
    for start in range(0, len(ordered), _CHUNK):
        session.execute(
            update(DossierSummary)
            .where(DossierSummary.dossier_id.in_(ordered[start : start + _CHUNK]))
            .values(version=token)
            .execution_options(synchronize_session=False)
        )


def _forget_versions_read() -> None:
    """A request that writes reads the versions again after (webapp.fragments.dossier_version)."""
    from flask import g, has_app_context

    if has_app_context():
        g.pop("_dossier_states", None)


def _lock(session: Session, dossier_ids: list[int]) -> None:
    """The lines of these dossiers, locked in id order (PostgreSQL) until the transaction ends."""
    for start in range(0, len(dossier_ids), _CHUNK):
        session.execute(
            select(DossierSummary.dossier_id)
            .where(DossierSummary.dossier_id.in_(dossier_ids[start : start + _CHUNK]))
            .order_by(DossierSummary.dossier_id)
            .with_for_update()
        )


def recompute(
    session: Session, dossier_ids: list[int], *, version: str | None = None, locked: bool = False
) -> None:
    """Each of these dossiers' lines, rewritten from the live figures (a dossier gone: its line too),
    with a new version."""
    from sqlalchemy import delete, literal

    from webapp.services.portfolio import summary_select

    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    version = version or uuid.uuid4().hex[:16]
    for start in range(0, len(dossier_ids), _CHUNK):
        chunk = dossier_ids[start : start + _CHUNK]
        if dialect == "postgresql" and not locked:
            _lock(session, chunk)
        live = summary_select(chunk)
        live = live.add_columns(literal(version).label("version"))
        columns = [column.name for column in live.selected_columns]
        upsert = insert(DossierSummary.__table__).from_select(columns, live)
        upsert = upsert.on_conflict_do_update(
            index_elements=["dossier_id"],
            set_={name: upsert.excluded[name] for name in columns if name != "dossier_id"},
        )
        session.execute(upsert)
        existing = select(Dossier.id).where(Dossier.id.in_(chunk))
        session.execute(
            delete(DossierSummary).where(
                DossierSummary.dossier_id.in_(chunk), DossierSummary.dossier_id.not_in(existing)
            )
        )


def _before_commit(session: Session) -> None:
    if pending(session) or session.new or session.dirty or session.deleted:
        session.flush()
    if pending(session):
        bring_up_to_date(session)


_installed = False


def install() -> None:
    """Listen to every session (the app's, the workers', the tests')."""
    global _installed
    if _installed:
        return
    event.listen(Session, "after_flush", _after_flush)
    event.listen(Session, "do_orm_execute", _do_orm_execute)
    event.listen(Session, "before_commit", _before_commit)
    _installed = True
