"""64-bit ids on PostgreSQL for the tables that grow with every full reload (list items and their
staging, events, job runs) and the columns that point to them

SQLite's INTEGER PRIMARY KEY is 64-bit already: nothing changes there.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 14:00:00

"""
from alembic import op


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

GROWING = ('list_item', 'list_item_staging', 'event', 'job_run')
POINTING = {
    'job_run': ['retry_of_id'],
    'event': ['job_run_id'],
    'list_sync': ['job_run_id'],
    'rule_transfer': ['job_run_id'],
    'coding_default': ['account_id', 'tax_rate_id', 'payment_method_id', 'tracking_id'],
    'payment_rule': ['account_id', 'tax_rate_id', 'payment_method_id', 'tracking_id'],
    'rule': ['party_id', 'account_id', 'tax_rate_id', 'payment_method_id', 'tracking_id'],
    'document': ['party_id', 'job_run_id', 'account_id', 'tax_rate_id', 'payment_method_id', 'tracking_id'],
    'item_choice': ['source_item_id', 'target_item_id'],
}


def _retype(kind: str) -> None:
    for table in GROWING:
        op.execute(f'ALTER TABLE "{table}" ALTER COLUMN id TYPE {kind}')
        sequence = f"pg_get_serial_sequence('\"{table}\"', 'id')"
        op.execute(
            f"DO $$ BEGIN EXECUTE format('ALTER SEQUENCE %s AS {kind}', {sequence}); END $$"
        )
    for table, columns in POINTING.items():
        for column in columns:
            op.execute(f'ALTER TABLE "{table}" ALTER COLUMN {column} TYPE {kind}')


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        _retype('BIGINT')


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        _retype('INTEGER')
