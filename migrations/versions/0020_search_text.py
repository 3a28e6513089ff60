"""Searches that ignore case, accents and word order: a normalised copy of what is searched

list_item (and its staging area), dossier and organisation get search_text (and a sort key, sort_name,
for the French order of names), filled here in batches for the rows already there, computed the
way webapp.search computes them on this day. The list search index walks the lists in that order,
and PostgreSQL's trigram index now covers search_text alone.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 09:00:00

"""
import logging
import re
import unicodedata

import sqlalchemy as sa
from alembic import op


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
TRIGRAM = 'ix_list_item_trigram'  # webapp.models.lists.DATABASE_ONLY_INDEXES names it too
BATCH = 5000
SEARCH_TEXT_BYTES = 1200
SORT_NAME_BYTES = 200

_LETTERS = {
    "œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss", "ẞ": "ss", "ø": "o", "Ø": "o", "đ": "d", "Đ": "d",
    "ł": "l", "Ł": "l", "ı": "i", "þ": "th", "Þ": "th", "ð": "d", "Ð": "d",
}
_PLAIN = str.maketrans(
    _LETTERS | {chr(code): None for code in range(0x300, 0x20000) if unicodedata.combining(chr(code))}
)
_NOT_ALNUM = re.compile(r"[\W_]+")
_JOINERS = ".'’`´-/"
_JOINED = re.compile(r"\w+(?:[.'’`´\-/]\w+)+")


def _normalise(text):
    if not text:
        return ""
    if text.isascii():
        text = text.lower()
    else:
        text = unicodedata.normalize("NFKD", text).translate(_PLAIN).casefold()
    return " ".join(_NOT_ALNUM.split(text)).strip()


def _cut(text, limit):
    data = text.encode()
    return text if len(data) <= limit else data[:limit].decode(errors="ignore").rstrip()


def _searchable(text):
    words = _normalise(text)
    if not text or not any(char in text for char in _JOINERS):
        return words
    joined = [_normalise(m.group()).replace(" ", "") for m in _JOINED.finditer(text)]
    return " ".join([words, *joined]) if joined else words


def _compact(text):
    return _normalise(text).replace(" ", "")


def _combined(*parts):
    return _cut(" ".join(p for p in parts if p), SEARCH_TEXT_BYTES)


def _sort_key(name):
    return _cut(_normalise(name), SORT_NAME_BYTES)


FILLED = {
    'list_item': (
        ('name', 'code', 'vat_number', 'siren'),
        lambda r: {
            'search_text': _combined(
                _compact(r.vat_number), _compact(r.siren), _searchable(r.code), _searchable(r.name)
            ),
            'sort_name': _sort_key(r.name),
        },
    ),
    'dossier': (
        ('name', 'siren'),
        lambda r: {'search_text': _combined(_compact(r.siren), _searchable(r.name)), 'sort_name': _sort_key(r.name)},
    ),
    'organisation': (('name',), lambda r: {'search_text': _combined(_searchable(r.name))}),
}


def _fill(bind, table, columns, compute):
    """Every row, BATCH at a time in id order: the memory used stays that of one batch."""
    last = None
    while True:
        after = 'WHERE id > :last ' if last is not None else ''
        rows = bind.execute(
            sa.text(f"SELECT id, {', '.join(columns)} FROM {table} {after}ORDER BY id LIMIT :batch"),
            {'last': last, 'batch': BATCH} if last is not None else {'batch': BATCH},
        ).all()
        if not rows:
            return
        updates = [{'row_id': r.id, **compute(r)} for r in rows]
        assignments = ', '.join(f'{column} = :{column}' for column in updates[0] if column != 'row_id')
        bind.execute(sa.text(f"UPDATE {table} SET {assignments} WHERE id = :row_id"), updates)
        last = rows[-1].id


def _copy_columns(sort):
    columns = [sa.Column('search_text', sa.String(length=SEARCH_TEXT_BYTES), server_default='', nullable=False)]
    if sort:
        columns.append(sa.Column('sort_name', sa.String(length=SORT_NAME_BYTES), server_default='', nullable=False))
    return columns


def upgrade():
    bind = op.get_bind()
    postgresql = bind.dialect.name == 'postgresql'
    # The old indexes go first: the rows are filled without keeping them up to date.
    op.drop_index('ix_list_item_search', table_name='list_item')
    if postgresql:
        op.execute(f'DROP INDEX IF EXISTS {TRIGRAM}')
    for table, sort in (('list_item', True), ('list_item_staging', True), ('dossier', True), ('organisation', False)):
        for column in _copy_columns(sort):
            op.add_column(table, column)
    for table, (columns, compute) in FILLED.items():
        _fill(bind, table, columns, compute)
    op.create_index(
        'ix_list_item_search', 'list_item', ['integration_id', 'kind', 'sort_name', 'id', 'active', 'search_text']
    )
    if postgresql:
        _trigram_index(bind)


def _trigram_index(bind):
    schema = bind.exec_driver_sql(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'pg_trgm'"
    ).scalar()
    if schema is None:
        log.warning("pg_trgm is not installed (see 0012): list searches will read the whole list")
        return
    bind.exec_driver_sql(f'CREATE INDEX {TRIGRAM} ON list_item USING gin (search_text "{schema}".gin_trgm_ops)')


def downgrade():
    bind = op.get_bind()
    postgresql = bind.dialect.name == 'postgresql'
    if postgresql:
        op.execute(f'DROP INDEX IF EXISTS {TRIGRAM}')
    op.drop_index('ix_list_item_search', table_name='list_item')
    for table, sort in (('organisation', False), ('dossier', True), ('list_item_staging', True), ('list_item', True)):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in reversed(_copy_columns(sort)):
                batch_op.drop_column(column.name)
    op.create_index(
        'ix_list_item_search',
        'list_item',
        ['integration_id', 'kind', 'name', 'id', 'active', 'code', 'vat_number', 'siren'],
    )
    if postgresql:
        schema = bind.exec_driver_sql(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
            " WHERE e.extname = 'pg_trgm'"
        ).scalar()
        if schema is not None:
            ops = f'"{schema}".gin_trgm_ops'
            bind.exec_driver_sql(
                f'CREATE INDEX {TRIGRAM} ON list_item USING gin '
                f'(name {ops}, code {ops}, vat_number {ops}, siren {ops})'
            )
