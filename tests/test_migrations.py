"""The schema is made by Alembic migrations, and they match the models exactly, on both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from tests.conftest import make_app
from webapp.extensions import db
from webapp.models.lists import compared_in_schema_check


def _context(conn) -> MigrationContext:
    return MigrationContext.configure(conn, opts={"include_object": compared_in_schema_check})


def _fresh_app(database_url: str):
    app = make_app(database_url)
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    return app


def test_migrations_build_the_schema_of_the_models_and_come_back_down(database_url):
    app = _fresh_app(database_url)
    try:
        with app.app_context():
            upgrade(revision="heads")
            with db.engine.connect() as conn:
                diff = compare_metadata(_context(conn), db.metadata)
            assert diff == []
            indexes = {i["name"] for i in sa.inspect(db.engine).get_indexes("list_item")}
            # PostgreSQL searches lists through a trigram index; SQLite has no such thing.
            assert ("ix_list_item_trigram" in indexes) is (db.engine.dialect.name == "postgresql")
            downgrade(revision="base")
            assert sa.inspect(db.engine).get_table_names() == ["alembic_version"]
            upgrade(revision="heads")
    finally:
        with app.app_context():
            db.drop_all()
            with db.engine.begin() as conn:
                conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        # The next test's app recreates the tables with create_all.
        from tests import conftest

        conftest._schemas_made.discard(database_url)


def _row_for(table: sa.Table, model_table: sa.Table | None, ids: dict[str, int]) -> dict:
    """A row for `table` as it is at this revision: every NOT NULL column without a server default
    gets a value of its type; enums their first value (as the models know them), foreign keys the
    row already made in the table they point to."""
    values: dict = {}
    for column in table.columns:
        link_key = column.primary_key and column.foreign_keys and len(table.primary_key.columns) > 1
        if (column.primary_key and not link_key) or column.nullable or column.server_default is not None:
            continue
        foreign = next(iter(column.foreign_keys), None)
        model_column = model_table.columns.get(column.name) if model_table is not None else None
        kind = model_column.type if model_column is not None else column.type
        if foreign is not None:
            values[column.name] = ids[foreign.column.table.name]
        elif isinstance(kind, sa.Enum):
            values[column.name] = kind.enums[0]
        elif isinstance(column.type, sa.Boolean):
            values[column.name] = False
        elif isinstance(column.type, sa.Integer | sa.Float):
            values[column.name] = 1
        elif isinstance(column.type, sa.Numeric):
            values[column.name] = Decimal("12.50")
        elif isinstance(column.type, sa.DateTime):
            values[column.name] = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        elif isinstance(column.type, sa.Date):
            values[column.name] = date(2026, 1, 2)
        elif isinstance(column.type, sa.JSON):
            values[column.name] = {}
        elif isinstance(column.type, sa.LargeBinary):
            values[column.name] = b"%PDF"
        else:
            length = getattr(column.type, "length", None) or 40
            values[column.name] = f"{table.name[:20]}-1"[:length]
    for key in table.primary_key.columns:
        if isinstance(key.type, sa.String):
            values[key.name] = f"{table.name}-1"
    return values


#: Tables a migration fills from the rows before it: s0003 makes a Xero connection of each grant.
DERIVED_ROWS = {"sandbox_connection": 1}
#: Tables a migration fills whole from the rows before it, none added by hand: 0027 makes the line of
#: 'Mes dossiers' of each dossier.
FILLED_ROWS = {"dossier_summary": "dossier"}


def test_every_migration_upgrades_a_database_with_data_in_it(database_url):
    """From the first migration to the last, one step at a time, with a row in every table made so
    far: each step keeps the rows, and at the end the app reads every one of them."""
    from alembic.script import ScriptDirectory

    app = _fresh_app(database_url)
    try:
        with app.app_context():
            config = app.extensions["migrate"].migrate.get_config()
            script = ScriptDirectory.from_config(config)
            revisions = [r.revision for r in reversed(list(script.walk_revisions()))]
            assert len(revisions) >= 10
            ids: dict[str, str | int] = {}
            for revision in revisions:
                upgrade(revision=revision)
                reflected = sa.MetaData()
                reflected.reflect(db.engine)
                for model_table in db.metadata.sorted_tables:
                    table = reflected.tables.get(model_table.name)
                    if table is None or table.name in ids:
                        continue
                    if table.name in FILLED_ROWS:
                        with db.engine.connect() as conn:
                            keys = conn.scalars(sa.select(*table.primary_key.columns)).all()
                        assert keys == [ids[FILLED_ROWS[table.name]]], table.name
                        ids[table.name] = keys[0]
                        continue
                    with db.engine.begin() as conn:
                        row = _row_for(table, model_table, ids)
                        key_columns = list(table.primary_key.columns)  # one, or two for a link table
                        key = conn.execute(table.insert().values(**row).returning(*key_columns)).one()
                    ids[table.name] = key[0] if len(key_columns) == 1 else tuple(key)
            made = set(ids)
            assert {"dossier", "integration", "rule", "document", "list_item", "event", "job_run"} <= made
            with db.engine.connect() as conn:
                diff = compare_metadata(_context(conn), db.metadata)
            assert diff == []
            # Every row is still there, and the models read each one.
            for mapper in db.Model.registry.mappers:
                model = mapper.class_
                table_name = model.__table__.name
                if table_name in made:
                    rows = db.session.scalars(sa.select(model)).all()
                    (key_column,) = model.__table__.primary_key.columns
                    keys = [getattr(r, key_column.key) for r in rows]
                    if table_name in DERIVED_ROWS:  # rows a migration made from others, and ours
                        assert ids[table_name] in keys and len(keys) == 1 + DERIVED_ROWS[table_name]
                    else:
                        assert keys == [ids[table_name]], table_name
    finally:
        with app.app_context():
            db.session.remove()
            db.drop_all()
            with db.engine.begin() as conn:
                conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        from tests import conftest

        conftest._schemas_made.discard(database_url)


def test_the_earliest_active_user_of_each_cabinet_becomes_its_admin(database_url):
    """0025: each cabinet gets one admin, its earliest active user; staff, deactivated accounts and the
    others stay as they were, and nobody is restricted."""
    app = _fresh_app(database_url)
    try:
        with app.app_context():
            upgrade(revision="0024")
            when = [datetime(2026, 1, day, tzinfo=UTC) for day in range(1, 8)]
            with db.engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "INSERT INTO organisation (id, name, created_at, search_text) VALUES "
                        "(1, 'Lefèvre', :t, 'lefevre'), (2, 'Girard', :t, 'girard'), "
                        "(3, 'Vide', :t, 'vide')"
                    ),
                    {"t": when[0]},
                )
                users = [
                    (1, 1, "staff", True, when[0]),  # staff are never a cabinet's admin
                    (2, 1, "member", False, when[1]),  # deactivated
                    (3, 1, "member", True, when[3]),
                    (4, 1, "member", True, when[2]),  # the earliest active member
                    (5, 2, "member", True, when[4]),
                    (6, 2, "member", True, when[4]),
                ]
                for user_id, org, role, active, created in users:
                    conn.execute(
                        sa.text(
                            "INSERT INTO user_account (id, organisation_id, email, password_hash, full_name, "
                            "role, is_active_account, created_at) "
                            "VALUES (:id, :org, :email, 'x', '', :role, :active, :created)"
                        ),
                        {
                            "id": user_id,
                            "org": org,
                            "email": f"u{user_id}@test",
                            "role": role,
                            "active": active,
                            "created": created,
                        },
                    )
            upgrade(revision="0025")
            with db.engine.connect() as conn:
                roles = dict(conn.execute(sa.text("SELECT id, role FROM user_account")).all())
                restricted = conn.execute(
                    sa.text("SELECT count(*) FROM user_account WHERE dossiers_restricted")
                ).scalar()
            assert roles == {1: "staff", 2: "member", 3: "member", 4: "admin", 5: "admin", 6: "member"}
            assert restricted == 0
            downgrade(revision="0024")
            with db.engine.connect() as conn:
                assert set(conn.execute(sa.text("SELECT role FROM user_account")).scalars()) == {
                    "staff",
                    "member",
                }
    finally:
        with app.app_context():
            db.session.remove()
            db.drop_all()
            with db.engine.begin() as conn:
                conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        from tests import conftest

        conftest._schemas_made.discard(database_url)
