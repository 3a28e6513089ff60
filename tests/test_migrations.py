"""The schema is made by Alembic migrations, and they match the models exactly, on both databases."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from tests.conftest import make_app
from webapp.extensions import db


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
            upgrade()
            with db.engine.connect() as conn:
                diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
            assert diff == []
            downgrade(revision="base")
            assert sa.inspect(db.engine).get_table_names() == ["alembic_version"]
            upgrade()
    finally:
        with app.app_context():
            db.drop_all()
            with db.engine.begin() as conn:
                conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        # The next test's app recreates the tables with create_all.
        from tests import conftest

        conftest._schemas_made.discard(database_url)
