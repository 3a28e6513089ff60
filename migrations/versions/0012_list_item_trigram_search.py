"""PostgreSQL: a trigram index for searching lists by any part of a name, code, VAT number or SIREN

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25 11:45:00

"""
import logging

from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
INDEX = 'ix_list_item_trigram'  # webapp.models.lists.DATABASE_ONLY_INDEXES names it too


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != 'postgresql':
        return  # SQLite searches without it (LIKE, counted up to 1 000)
    try:
        with bind.begin_nested():
            bind.exec_driver_sql('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    except sa.exc.DBAPIError as error:
        log.warning("pg_trgm could not be installed (%s): list searches will read the whole list", error.orig)
        return
    schema = bind.exec_driver_sql(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'pg_trgm'"
    ).scalar_one()
    ops = f'"{schema}".gin_trgm_ops'
    bind.exec_driver_sql(
        f'CREATE INDEX {INDEX} ON list_item USING gin '
        f'(name {ops}, code {ops}, vat_number {ops}, siren {ops})'
    )


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f'DROP INDEX IF EXISTS {INDEX}')
